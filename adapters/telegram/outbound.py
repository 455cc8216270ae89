"""Core outcomes to Telegram replies."""

from __future__ import annotations

import contextlib

from telegram import Bot, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import BadRequest, NetworkError

from adapters.telegram.inbound import TelegramOrigin
from bot.caption import make_caption
from bot.model import FetchError, Media, Origin, Reason

CAPTION_LIMIT = 1024
UPLOAD_TIMEOUT_S = 300.0


def _telegram(origin: Origin) -> TelegramOrigin:
    if not isinstance(origin, TelegramOrigin):
        raise TypeError(f"not a Telegram origin: {origin!r}")
    return origin


def _quote(origin: TelegramOrigin) -> ReplyParameters:
    return ReplyParameters(message_id=origin.message_id, allow_sending_without_reply=True)


def _too_large(err: Exception) -> bool:
    text = str(err).lower()
    return "too large" in text or "too big" in text


class TelegramReplier:
    """Sends videos as replies that play inline, and reasons as short plain replies."""

    def __init__(self, bot: Bot) -> None:
        self._bot = bot

    async def working(self, origin: Origin) -> None:
        await self._bot.send_chat_action(_telegram(origin).chat_id, ChatAction.UPLOAD_VIDEO)

    async def deliver(self, origin: Origin, media: Media) -> None:
        where = _telegram(origin)
        with contextlib.ExitStack() as files:
            video = files.enter_context(media.path.open("rb"))
            thumbnail = files.enter_context(media.thumbnail.open("rb")) if media.thumbnail else None
            try:
                await self._bot.send_video(
                    where.chat_id,
                    video,
                    width=media.width,
                    height=media.height,
                    duration=max(1, round(media.duration)),
                    supports_streaming=True,
                    thumbnail=thumbnail,
                    caption=make_caption(media.info, limit=CAPTION_LIMIT),
                    filename=f"{media.info.clip_id or 'video'}.mp4",
                    reply_parameters=_quote(where),
                    write_timeout=UPLOAD_TIMEOUT_S,
                    read_timeout=UPLOAD_TIMEOUT_S,
                )
            except (BadRequest, NetworkError) as err:
                if _too_large(err):
                    raise FetchError(Reason.TOO_LARGE, str(err)) from None
                raise

    async def fail(self, origin: Origin, reason: Reason) -> None:
        where = _telegram(origin)
        await self._bot.send_message(where.chat_id, reason.message, reply_parameters=_quote(where))
