"""Core outcomes to Telegram replies."""

from __future__ import annotations

import contextlib
import json

from telegram import Bot, InputMediaPhoto, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import BadRequest, NetworkError

from adapters.telegram.inbound import TelegramOrigin
from bot.cache import CachedMedia
from bot.caption import make_caption
from bot.model import Album, ClipInfo, FetchError, Media, Origin, Reason, StaleHandle

CAPTION_LIMIT = 1024
UPLOAD_TIMEOUT_S = 300.0
MEDIA_GROUP_MAX = 10


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

    async def deliver(self, origin: Origin, media: Media) -> str | None:
        """Upload the video; its file_id lets the same bot send it again without an upload."""
        where = _telegram(origin)
        with contextlib.ExitStack() as files:
            video = files.enter_context(media.path.open("rb"))
            thumbnail = files.enter_context(media.thumbnail.open("rb")) if media.thumbnail else None
            try:
                sent = await self._bot.send_video(
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
        return sent.video.file_id if sent.video else None

    async def resend(self, origin: Origin, cached: CachedMedia) -> None:
        where = _telegram(origin)
        info = ClipInfo(**json.loads(cached.caption))
        try:
            await self._bot.send_video(
                where.chat_id,
                cached.handle,
                width=cached.width,
                height=cached.height,
                duration=max(1, round(cached.duration)),
                supports_streaming=True,
                caption=make_caption(info, limit=CAPTION_LIMIT),
                reply_parameters=_quote(where),
            )
        except BadRequest as err:
            if "file" in str(err).lower():
                raise StaleHandle(str(err)) from None
            raise

    async def deliver_album(self, origin: Origin, album: Album) -> None:
        """The photos as media groups of at most ten (caption on the first), then the music."""
        where = _telegram(origin)
        caption = make_caption(album.info, limit=CAPTION_LIMIT)
        for start in range(0, len(album.images), MEDIA_GROUP_MAX):
            chunk = album.images[start : start + MEDIA_GROUP_MAX]
            first_caption = caption if start == 0 else None
            with contextlib.ExitStack() as files:
                photos = [files.enter_context(image.open("rb")) for image in chunk]
                if len(photos) == 1:
                    await self._bot.send_photo(
                        where.chat_id,
                        photos[0],
                        caption=first_caption,
                        reply_parameters=_quote(where),
                        write_timeout=UPLOAD_TIMEOUT_S,
                    )
                    continue
                group = [
                    InputMediaPhoto(photo, caption=first_caption if n == 0 else None)
                    for n, photo in enumerate(photos)
                ]
                await self._bot.send_media_group(
                    where.chat_id,
                    group,
                    reply_parameters=_quote(where),
                    write_timeout=UPLOAD_TIMEOUT_S,
                )
        if album.audio is not None:
            with album.audio.open("rb") as music:
                await self._bot.send_audio(
                    where.chat_id,
                    music,
                    filename=f"{album.info.clip_id or 'music'}{album.audio.suffix}",
                    reply_parameters=_quote(where),
                    write_timeout=UPLOAD_TIMEOUT_S,
                )

    async def fail(self, origin: Origin, reason: Reason) -> None:
        where = _telegram(origin)
        await self._bot.send_message(where.chat_id, reason.message, reply_parameters=_quote(where))
