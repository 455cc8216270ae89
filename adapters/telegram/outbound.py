"""Core outcomes to Telegram replies."""

from __future__ import annotations

import contextlib
import datetime as dtm
import functools
import logging
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

from telegram import (
    Bot,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    InputMediaPhoto,
    InputMediaVideo,
    Message,
    ReplyParameters,
)
from telegram.constants import ChatAction
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut

from adapters.telegram.inbound import InlineOrigin, TelegramOrigin
from adapters.telegram.request import PIECE_BYTES, NotSent
from bot.caption import caption_for, make_caption
from bot.chat_settings import FailureStyle, OriginalMessage
from bot.i18n import Catalogues
from bot.media import audio_suffix
from bot.model import (
    Album,
    Audio,
    CachedMedia,
    ClipInfo,
    FetchError,
    Manner,
    Media,
    Origin,
    PlatformFile,
    Reason,
    StaleHandle,
)
from bot.progress import Progress, status_text
from bot.retry import Retrying, Unavailable, Unconfirmed, remove_idempotently
from bot.sound import SOUND_BUTTON_TEXT, sound_button_data

log = logging.getLogger(__name__)

CAPTION_LIMIT = 1024
# Uploads may take long on a slow link; the answer to one is waited for, never sent again.
UPLOAD_TIMEOUT_S = 300.0
MEDIA_GROUP_MAX = 10
# A status call gives up sooner than an answer: a late status is worth nothing.
STATUS_TIMEOUT_S = 10.0
# The reaction of a chat that chose reactions over replies for failures (one Telegram allows).
FAILED_REACTION = "🤷"
T = TypeVar("T")


def _telegram(origin: Origin) -> TelegramOrigin:
    if not isinstance(origin, TelegramOrigin):
        raise TypeError(f"not a Telegram origin: {origin!r}")
    return origin


def _file_id(cached: CachedMedia) -> str:
    handle = cached.handle
    if not isinstance(handle, PlatformFile):
        raise StaleHandle(f"Telegram sends again by file_id only, not by {handle!r}")
    return handle.file_id


@contextlib.contextmanager
def _stale_when_file_refused() -> Iterator[None]:
    """A send by file id that Telegram refuses for its file: the kept handle is stale."""
    try:
        yield
    except BadRequest as err:
        if "file" in str(err).lower():
            raise StaleHandle(str(err)) from None
        raise


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
            or isinstance(cause, NotSent)
            or (cause is None and not isinstance(err, TimedOut))
        ):
            return Unavailable(str(err))
        return Unconfirmed(str(err))
    return err


class TelegramReplier:
    """Sends videos as replies that play inline, and reasons as short plain replies."""

    def __init__(
        self,
        bot: Bot,
        retry: Retrying,
        texts: Catalogues,
        storage_chat_id: int | None = None,
    ) -> None:
        """`storage_chat_id` takes the uploads of clips sent inline (an inline message takes
        a file id, never a new upload)."""
        self._bot = bot
        self._retry = retry
        self._texts = texts
        self._storage_chat_id = storage_chat_id
        # The status message of each request that has one, by its origin.
        self._statuses: dict[TelegramOrigin, int] = {}

    async def _call(self, send: Callable[[], Awaitable[T]], what: str) -> T:
        """One Bot API call under the core's retry policy; `send` opens its files itself, as
        each attempt uploads them anew."""
        return await self._retry.run(send, what, core_error)

    async def working(self, origin: Origin) -> None:
        if isinstance(origin, InlineOrigin):
            return  # the placeholder says it already: there is no chat to show an action in
        await self._bot.send_chat_action(_telegram(origin).chat_id, ChatAction.UPLOAD_VIDEO)

    async def status(self, origin: Origin, progress: Progress, manner: Manner) -> None:
        """One message replying to the link, sent silently the first time and edited after.
        Called straight, not through the retry loop: a 429 or any error skips this one (the
        flood limiter still holds each call until there is room)."""
        if isinstance(origin, InlineOrigin):
            return  # the placeholder is the only message, and it becomes the video
        where = _telegram(origin)
        text = status_text(progress, self._texts, manner.language)
        message_id = self._statuses.get(where)
        try:
            if message_id is None:
                sent = await self._bot.send_message(
                    where.chat_id,
                    text,
                    reply_parameters=_quote(where),
                    disable_notification=True,
                    read_timeout=STATUS_TIMEOUT_S,
                    write_timeout=STATUS_TIMEOUT_S,
                )
                self._statuses[where] = sent.message_id
            else:
                await self._bot.edit_message_text(
                    text,
                    chat_id=where.chat_id,
                    message_id=message_id,
                    read_timeout=STATUS_TIMEOUT_S,
                    write_timeout=STATUS_TIMEOUT_S,
                )
        except TelegramError as err:
            log.info("status in chat %s skipped: %r", where.chat_id, err)

    async def clear_status(self, origin: Origin, *, earlier: bool = False) -> None:
        if not isinstance(origin, TelegramOrigin):
            return
        message_id = self._statuses.pop(origin, None)
        if message_id is None:
            return
        await remove_idempotently(
            lambda: self._bot.delete_message(origin.chat_id, message_id),
            f"status message {message_id}",
            final=(BadRequest,),
        )

    async def deliver(self, origin: Origin, media: Media, manner: Manner) -> str | None:
        """Upload the video; its file_id lets the same bot send it again without an upload."""
        if isinstance(origin, InlineOrigin):
            return await self._deliver_inline(origin, media)
        where = _telegram(origin)
        caption = caption_for(media.info, manner.caption, limit=CAPTION_LIMIT)
        sent = await self._upload_video(
            where.chat_id,
            media,
            "sendVideo",
            _quote(where),
            caption,
            self._sound_button(media.info, manner),
        )
        await self._tidy(where, manner)
        return sent.video.file_id if sent.video else None

    def _sound_button(self, info: ClipInfo, manner: Manner) -> InlineKeyboardMarkup | None:
        """The "🎵 Sound" button under a video in a chat (bot.sound); none for a clip whose
        link does not fit in its data."""
        data = sound_button_data(info)
        if data is None:
            return None
        text = self._texts.text(manner.language, SOUND_BUTTON_TEXT)
        return InlineKeyboardMarkup([[InlineKeyboardButton(text, callback_data=data)]])

    async def _upload_video(
        self,
        chat_id: int,
        media: Media,
        what: str,
        quote: ReplyParameters | None,
        caption: str | None = None,
        keyboard: InlineKeyboardMarkup | None = None,
    ) -> Message:
        """Upload the video to a chat (quoting a message, or silently to the storage chat)."""

        async def send() -> Message:
            with contextlib.ExitStack() as files:
                # Read while it is sent, not into memory first: a burst of uploads would
                # otherwise hold every clip in memory at once. Read a piece at a time (request.py),
                # through a buffer of one piece: one system call each.
                video = InputFile(
                    files.enter_context(media.path.open("rb", buffering=PIECE_BYTES)),
                    filename=f"{media.info.clip_id or 'video'}.mp4",
                    read_file_handle=False,
                )
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
                    caption=make_caption(media.info, limit=CAPTION_LIMIT)
                    if caption is None
                    else caption or None,
                    reply_parameters=quote,
                    reply_markup=keyboard,
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

    async def resend(self, origin: Origin, cached: CachedMedia, manner: Manner) -> None:
        file_id = _file_id(cached)
        if isinstance(origin, InlineOrigin):
            with _stale_when_file_refused():
                await self._edit_inline_video(
                    origin,
                    file_id,
                    cached.width,
                    cached.height,
                    cached.duration,
                    cached.info,
                )
            return
        where = _telegram(origin)
        caption = caption_for(cached.info, manner.caption, limit=CAPTION_LIMIT)
        keyboard = self._sound_button(cached.info, manner)
        with _stale_when_file_refused():
            await self._call(
                lambda: self._bot.send_video(
                    where.chat_id,
                    file_id,
                    width=cached.width,
                    height=cached.height,
                    duration=max(1, round(cached.duration)),
                    supports_streaming=True,
                    caption=caption or None,
                    reply_parameters=_quote(where),
                    reply_markup=keyboard,
                ),
                "sendVideo by file_id",
            )
        await self._tidy(where, manner)

    async def deliver_audio(self, origin: Origin, audio: Audio, manner: Manner) -> str | None:
        """Upload the sound as an audio file, titled from the post's music, replying to the
        video (or the command) that asked; its file_id sends it again without an upload."""
        where = _telegram(origin)
        info = audio.info

        async def send() -> Message:
            with audio.path.open("rb") as sound:
                return await self._bot.send_audio(
                    where.chat_id,
                    sound,
                    duration=max(1, round(audio.duration)),
                    title=info.music_title or None,
                    performer=info.music_author or None,
                    filename=f"{info.clip_id or 'sound'}{audio_suffix(audio.path)}",
                    reply_parameters=_quote(where),
                    write_timeout=UPLOAD_TIMEOUT_S,
                    read_timeout=UPLOAD_TIMEOUT_S,
                )

        sent = await self._call(send, "sendAudio")
        return sent.audio.file_id if sent.audio else None

    async def resend_audio(self, origin: Origin, cached: CachedMedia, manner: Manner) -> None:
        file_id = _file_id(cached)
        where = _telegram(origin)
        info = cached.info
        with _stale_when_file_refused():
            await self._call(
                lambda: self._bot.send_audio(
                    where.chat_id,
                    file_id,
                    duration=max(1, round(cached.duration)),
                    title=info.music_title or None,
                    performer=info.music_author or None,
                    reply_parameters=_quote(where),
                ),
                "sendAudio by file_id",
            )

    async def deliver_album(self, origin: Origin, album: Album, manner: Manner) -> None:
        """The photos as media groups of at most ten (caption on the first), then the music;
        each message is retried on its own, so a retry never repeats one already sent."""
        if isinstance(origin, InlineOrigin):
            await self._deliver_inline_album(origin, album)
            return
        where = _telegram(origin)
        caption = caption_for(album.info, manner.caption, limit=CAPTION_LIMIT)
        for start in range(0, len(album.images), MEDIA_GROUP_MAX):
            chunk = album.images[start : start + MEDIA_GROUP_MAX]
            first_caption = caption or None if start == 0 else None
            if len(chunk) == 1:
                send = functools.partial(self._send_photo, where, chunk[0], first_caption)
                await self._call(send, "sendPhoto")
            else:
                send = functools.partial(self._send_group, where, chunk, first_caption)
                await self._call(send, "sendMediaGroup")
        if album.audio is not None:
            send_audio = functools.partial(self._send_audio, where, album.audio, album.info)
            await self._call(send_audio, "sendAudio")
        await self._tidy(where, manner)

    async def _tidy(self, where: TelegramOrigin, manner: Manner) -> None:
        """After the answer, the link's message as the chat chose: deleted when it held only
        the link and the bot may delete it; else left (the answer stands either way)."""
        if manner.original is not OriginalMessage.DELETE or not manner.link_only:
            return
        try:
            await self._bot.delete_message(where.chat_id, where.message_id)
        except Exception as err:
            log.info("link message %s left in place: %r", where.message_id, err)

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
                title=info.music_title or None,
                performer=info.music_author or None,
                reply_parameters=_quote(where),
                write_timeout=UPLOAD_TIMEOUT_S,
                read_timeout=UPLOAD_TIMEOUT_S,
            )

    async def fail(self, origin: Origin, reason: Reason, manner: Manner) -> None:
        if isinstance(origin, InlineOrigin):
            await self.tell_inline(origin, self._texts.text(manner.language, reason.message))
            return
        where = _telegram(origin)
        style = manner.failures or FailureStyle.REPLY
        if style is FailureStyle.SILENT:
            log.info("failure in chat %s left unsaid, as it chose: %s", where.chat_id, reason.name)
            return
        if style is FailureStyle.REACTION and reason is not Reason.RESTARTING:
            # A reaction cannot ask for the link again: a restart is said in words.
            await self._call(
                lambda: self._bot.set_message_reaction(
                    where.chat_id, where.message_id, FAILED_REACTION
                ),
                "setMessageReaction",
            )
            return
        text = self._texts.text(manner.language, reason.message)
        await self._call(
            lambda: self._bot.send_message(where.chat_id, text, reply_parameters=_quote(where)),
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
