"""Core outcomes to Telegram replies."""

from __future__ import annotations

import contextlib
import datetime as dtm
import functools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
from telegram import Bot, InputMediaPhoto, InputMediaVideo, Message, ReplyParameters
from telegram.constants import ChatAction
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut

from adapters.telegram.inbound import InlineOrigin, TelegramOrigin
from bot.caption import make_caption
from bot.model import (
    Album,
    CachedMedia,
    ClipInfo,
    FetchError,
    Media,
    Origin,
    PlatformFile,
    Reason,
    StaleHandle,
)
from bot.retry import Retrying, Unavailable, Unconfirmed

CAPTION_LIMIT = 1024
# Uploads may take long on a slow link; the answer to one is waited for, never sent again.
UPLOAD_TIMEOUT_S = 300.0
MEDIA_GROUP_MAX = 10
T = TypeVar("T")
# httpx errors raised before the request went out whole: the Bot API cannot have acted on it.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.WriteError,
    httpx.WriteTimeout,
)


def _telegram(origin: Origin) -> TelegramOrigin:
    if not isinstance(origin, TelegramOrigin):
        raise TypeError(f"not a Telegram origin: {origin!r}")
    return origin


def _quote(origin: TelegramOrigin) -> ReplyParameters:
    return ReplyParameters(message_id=origin.message_id, allow_sending_without_reply=True)


def _too_large(err: Exception) -> bool:
    text = str(err).lower()
    return "too large" in text or "too big" in text


def retry_after_s(err: RetryAfter) -> float:
    """Telegram's wait in seconds (PTB gives a timedelta or, without PTB_TIMEDELTA, an int)."""
    after = err.retry_after
    return after.total_seconds() if isinstance(after, dtm.timedelta) else float(after)


def core_error(err: Exception) -> Exception:
    """PTB's error as the core's: which calls may be sent again is decided in bot.retry.

    RetryAfter and error answers (5xx) arrive before anything was done; a timeout or a dropped
    connection after the request went out may have been acted on. Other errors stay as they are.
    """
    if not isinstance(err, TelegramError):
        return err
    if isinstance(err, RetryAfter):
        return Unavailable(str(err), retry_after=retry_after_s(err))
    if _too_large(err):
        return FetchError(Reason.TOO_LARGE, str(err))
    if isinstance(err, NetworkError) and not isinstance(err, BadRequest):
        cause = err.__cause__
        # An answer that is no JSON (a front end's HTML 502) was still an answer: nothing done.
        answered = isinstance(cause, TelegramError)
        if (
            answered
            or isinstance(cause, _NOT_SENT)
            or (cause is None and not isinstance(err, TimedOut))
        ):
            return Unavailable(str(err))
        return Unconfirmed(str(err))
    return err


class TelegramReplier:
    """Sends videos as replies that play inline, and reasons as short plain replies."""

    def __init__(self, bot: Bot, retry: Retrying, storage_chat_id: int | None = None) -> None:
        """`storage_chat_id` takes the uploads of clips sent inline (an inline message takes
        a file id, never a new upload)."""
        self._bot = bot
        self._retry = retry
        self._storage_chat_id = storage_chat_id

    async def _call(self, send: Callable[[], Awaitable[T]], what: str) -> T:
        """One Bot API call under the core's retry policy; `send` opens its files itself, as
        each attempt uploads them anew."""
        return await self._retry.run(send, what, core_error)

    async def working(self, origin: Origin) -> None:
        if isinstance(origin, InlineOrigin):
            return  # the placeholder says it already: there is no chat to show an action in
        await self._bot.send_chat_action(_telegram(origin).chat_id, ChatAction.UPLOAD_VIDEO)

    async def deliver(self, origin: Origin, media: Media) -> str | None:
        """Upload the video; its file_id lets the same bot send it again without an upload."""
        if isinstance(origin, InlineOrigin):
            return await self._deliver_inline(origin, media)
        where = _telegram(origin)
        sent = await self._upload_video(where.chat_id, media, "sendVideo", _quote(where))
        return sent.video.file_id if sent.video else None

    async def _upload_video(
        self, chat_id: int, media: Media, what: str, quote: ReplyParameters | None
    ) -> Message:
        """Upload the video to a chat (quoting a message, or silently to the storage chat)."""

        async def send() -> Message:
            with contextlib.ExitStack() as files:
                video = files.enter_context(media.path.open("rb"))
                thumbnail = (
                    files.enter_context(media.thumbnail.open("rb")) if media.thumbnail else None
                )
                return await self._bot.send_video(
                    chat_id,
                    video,
                    width=media.width,
                    height=media.height,
                    duration=max(1, round(media.duration)),
                    supports_streaming=True,
                    thumbnail=thumbnail,
                    caption=make_caption(media.info, limit=CAPTION_LIMIT),
                    filename=f"{media.info.clip_id or 'video'}.mp4",
                    reply_parameters=quote,
                    disable_notification=True if quote is None else None,
                    write_timeout=UPLOAD_TIMEOUT_S,
                    read_timeout=UPLOAD_TIMEOUT_S,
                )

        return await self._call(send, what)

    async def _deliver_inline(self, origin: InlineOrigin, media: Media) -> str:
        """Upload to the storage chat, then edit the sent inline message into the video by the
        file id that upload got."""
        storage = self._storage_chat_id
        if storage is None:
            raise FetchError(Reason.FAILED, "no TELEGRAM_STORAGE_CHAT_ID for inline uploads")
        stored = await self._upload_video(storage, media, "sendVideo to storage", None)
        if stored.video is None:
            raise FetchError(Reason.FAILED, "the storage chat kept no video")
        file_id = stored.video.file_id
        await self._edit_inline_video(
            origin, file_id, media.width, media.height, media.duration, media.info
        )
        return file_id

    async def _edit_inline_video(
        self,
        origin: InlineOrigin,
        file_id: str,
        width: int,
        height: int,
        duration: float,
        info: ClipInfo,
    ) -> None:
        video = InputMediaVideo(
            file_id,
            caption=make_caption(info, limit=CAPTION_LIMIT),
            width=width,
            height=height,
            duration=max(1, round(duration)),
            supports_streaming=True,
        )
        await self._call(
            lambda: self._bot.edit_message_media(video, inline_message_id=origin.inline_message_id),
            "editMessageMedia",
        )

    async def resend(self, origin: Origin, cached: CachedMedia) -> None:
        handle = cached.handle
        if not isinstance(handle, PlatformFile):
            raise StaleHandle(f"Telegram sends again by file_id only, not by {handle!r}")
        if isinstance(origin, InlineOrigin):
            try:
                await self._edit_inline_video(
                    origin,
                    handle.file_id,
                    cached.width,
                    cached.height,
                    cached.duration,
                    cached.info,
                )
            except BadRequest as err:
                if "file" in str(err).lower():
                    raise StaleHandle(str(err)) from None
                raise
            return
        where = _telegram(origin)
        info = cached.info
        try:
            await self._call(
                lambda: self._bot.send_video(
                    where.chat_id,
                    handle.file_id,
                    width=cached.width,
                    height=cached.height,
                    duration=max(1, round(cached.duration)),
                    supports_streaming=True,
                    caption=make_caption(info, limit=CAPTION_LIMIT),
                    reply_parameters=_quote(where),
                ),
                "sendVideo by file_id",
            )
        except BadRequest as err:
            if "file" in str(err).lower():
                raise StaleHandle(str(err)) from None
            raise

    async def deliver_album(self, origin: Origin, album: Album) -> None:
        """The photos as media groups of at most ten (caption on the first), then the music;
        each message is retried on its own, so a retry never repeats one already sent."""
        if isinstance(origin, InlineOrigin):
            await self._deliver_inline_album(origin, album)
            return
        where = _telegram(origin)
        caption = make_caption(album.info, limit=CAPTION_LIMIT)
        for start in range(0, len(album.images), MEDIA_GROUP_MAX):
            chunk = album.images[start : start + MEDIA_GROUP_MAX]
            first_caption = caption if start == 0 else None
            if len(chunk) == 1:
                send = functools.partial(self._send_photo, where, chunk[0], first_caption)
                await self._call(send, "sendPhoto")
            else:
                send = functools.partial(self._send_group, where, chunk, first_caption)
                await self._call(send, "sendMediaGroup")
        if album.audio is not None:
            send_audio = functools.partial(self._send_audio, where, album.audio, album.info)
            await self._call(send_audio, "sendAudio")

    async def _deliver_inline_album(self, origin: InlineOrigin, album: Album) -> None:
        """An inline message holds one medium: the first photo, captioned with the link to the
        whole post, by the file id its upload to the storage chat got."""
        storage = self._storage_chat_id
        if storage is None:
            raise FetchError(Reason.FAILED, "no TELEGRAM_STORAGE_CHAT_ID for inline uploads")
        caption = make_caption(album.info, limit=CAPTION_LIMIT)

        async def upload() -> Message:
            with album.images[0].open("rb") as photo:
                return await self._bot.send_photo(
                    storage,
                    photo,
                    disable_notification=True,
                    write_timeout=UPLOAD_TIMEOUT_S,
                    read_timeout=UPLOAD_TIMEOUT_S,
                )

        stored = await self._call(upload, "sendPhoto to storage")
        if not stored.photo:
            raise FetchError(Reason.FAILED, "the storage chat kept no photo")
        photo = InputMediaPhoto(stored.photo[-1].file_id, caption=caption)
        await self._call(
            lambda: self._bot.edit_message_media(photo, inline_message_id=origin.inline_message_id),
            "editMessageMedia",
        )

    async def _send_photo(self, where: TelegramOrigin, image: Path, caption: str | None) -> None:
        with image.open("rb") as photo:
            await self._bot.send_photo(
                where.chat_id,
                photo,
                caption=caption,
                reply_parameters=_quote(where),
                write_timeout=UPLOAD_TIMEOUT_S,
                read_timeout=UPLOAD_TIMEOUT_S,
            )

    async def _send_group(
        self, where: TelegramOrigin, images: tuple[Path, ...], caption: str | None
    ) -> None:
        with contextlib.ExitStack() as files:
            group = [
                InputMediaPhoto(
                    files.enter_context(image.open("rb")), caption=caption if n == 0 else None
                )
                for n, image in enumerate(images)
            ]
            await self._bot.send_media_group(
                where.chat_id,
                group,
                reply_parameters=_quote(where),
                write_timeout=UPLOAD_TIMEOUT_S,
                read_timeout=UPLOAD_TIMEOUT_S,
            )

    async def _send_audio(self, where: TelegramOrigin, audio: Path, info: ClipInfo) -> None:
        with audio.open("rb") as music:
            await self._bot.send_audio(
                where.chat_id,
                music,
                filename=f"{info.clip_id or 'music'}{audio.suffix}",
                reply_parameters=_quote(where),
                write_timeout=UPLOAD_TIMEOUT_S,
                read_timeout=UPLOAD_TIMEOUT_S,
            )

    async def fail(self, origin: Origin, reason: Reason) -> None:
        if isinstance(origin, InlineOrigin):
            await self.tell_inline(origin, reason.message)
            return
        where = _telegram(origin)
        await self._call(
            lambda: self._bot.send_message(
                where.chat_id, reason.message, reply_parameters=_quote(where)
            ),
            "sendMessage",
        )

    async def tell_inline(self, origin: InlineOrigin, text: str) -> None:
        """Edit the sent inline placeholder into a line of text (no keyboard left)."""
        await self._call(
            lambda: self._bot.edit_message_text(text, inline_message_id=origin.inline_message_id),
            "editMessageText",
        )


class TelegramOperatorChannel:
    """Implements `OperatorChannel`: plain messages to OPERATOR_CHAT_ID."""

    def __init__(self, bot: Bot, chat_id: int, retry: Retrying) -> None:
        self._bot = bot
        self._chat_id = chat_id
        self._retry = retry

    async def tell_operator(self, text: str) -> None:
        await self._retry.run(
            lambda: self._bot.send_message(self._chat_id, text[:4096]), "operator", core_error
        )
