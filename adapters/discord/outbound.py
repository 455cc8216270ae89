"""Core outcomes to Discord replies: through the interaction if there is one, else the message.

An interaction from where the bot is not (a command the invoker installed to their account, used
in another server or a group DM) is answered through the interaction alone: its origin says so
(`InteractionOrigin.in_channel`), and no channel route, reaction or embed edit is tried.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar, cast

import aiohttp
import discord

from adapters.discord.inbound import InteractionOrigin, MessageOrigin
from bot.caption import caption_for
from bot.chat_settings import FailureStyle, OriginalMessage
from bot.i18n import N_, Catalogues
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
    Reason,
    StaleHandle,
)
from bot.progress import Progress, status_text
from bot.retry import Retrying, Unavailable, Unconfirmed, remove_idempotently
from bot.sound import SOUND_BUTTON_TEXT, sound_button_data

log = logging.getLogger(__name__)

CAPTION_LIMIT = 1000
ATTACHMENTS_MAX = 10
FAILED_REACTION = "⚠️"
# Webhook routes name the interaction's first response "@original"; discord.py types ids as int.
ORIGINAL_RESPONSE = cast(int, "@original")
REASON_TEXTS = {Reason.TOO_LARGE: N_("This video is too large for this server's upload limit.")}
# The interaction's token no longer works: not acknowledged in 3 s (10062, then 10015 on its
# webhook), or past its 15 minutes (50027).
TOKEN_GONE_CODES = frozenset({10062, 10015, 50027})
T = TypeVar("T")


def reason_text(reason: Reason) -> str:
    return REASON_TEXTS.get(reason, reason.message)


def _too_large(err: discord.HTTPException) -> bool:
    return err.status == 413 or err.code == 40005


def core_error(err: Exception) -> Exception:
    """discord.py's error as the core's: which calls may be sent again is decided in bot.retry.

    discord.py itself waits out 429s (route and global) and retries 5xx answers (on bot routes
    500/502/504/524 only; on webhooks any) up to five tries, 1+3+5+7 s apart, so what it raises
    after that is not retried again. It does not retry a failed
    connection (Linux's ECONNRESET is not among the errnos it checks) or a timeout: one that
    never connected is safe to send again, one that dropped after sending may have arrived.
    """
    if isinstance(err, discord.HTTPException):
        return FetchError(Reason.TOO_LARGE, str(err)) if _too_large(err) else err
    if isinstance(err, aiohttp.ClientConnectorError):
        return Unavailable(str(err))
    if isinstance(err, aiohttp.ClientError | asyncio.TimeoutError):
        return Unconfirmed(f"{type(err).__name__}: {err}")
    return err


def _token_gone(err: discord.HTTPException) -> bool:
    return err.code in TOKEN_GONE_CODES


class DiscordReplier:
    """Sends videos with embeds suppressed; failures stay ephemeral or become a reaction.

    Channel routes serve message origins (the bot read the message, so it is there) and
    interactions only when their origin is `answerable_in_channel`."""

    def __init__(self, client: discord.Client, retry: Retrying, texts: Catalogues) -> None:
        self._client = client
        self._retry = retry
        self._texts = texts
        # Each interaction request's status, from its first status or answer to clear_status.
        self._statuses: dict[InteractionOrigin, _InteractionStatus] = {}

    async def _call(self, send: Callable[[], Awaitable[T]], what: str) -> T:
        """One REST call under the core's retry policy; `send` opens its files itself, as each
        attempt uploads them anew."""
        return await self._retry.run(send, what, core_error)

    async def working(self, origin: Origin) -> None:
        if isinstance(origin, MessageOrigin):
            await self._client.get_partial_messageable(origin.channel_id).typing()
        # An interaction already shows "thinking…" from its deferred response.

    async def status(self, origin: Origin, progress: Progress, manner: Manner) -> None:
        """In the interaction's original response (its "thinking…" until then); never while an
        answer goes out, nor once an answer took that message's place. A message's link keeps
        the typing indicator alone."""
        if not isinstance(origin, InteractionOrigin):
            return
        state = self._statuses.setdefault(origin, _InteractionStatus())
        if state.lock.locked() or (state.answered and not state.shown):
            return
        text = status_text(progress, self._texts, manner.language)
        webhook = self._webhook(origin)
        async with state.lock:
            try:
                await webhook.edit_message(ORIGINAL_RESPONSE, content=text)
                state.shown = True
            except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as err:
                log.info("status of an interaction skipped: %r", err)

    async def clear_status(self, origin: Origin, *, earlier: bool = False) -> None:
        """Delete the original response where it shows a status (the answers are followups);
        `earlier`: where one a dead run showed may be left, found by reading the response."""
        if not isinstance(origin, InteractionOrigin):
            return
        state = self._statuses.pop(origin, None)
        webhook = self._webhook(origin)
        if earlier and state is None:
            if not await self._shows_a_status(webhook):
                return
        elif state is None or not state.shown:
            return
        await remove_idempotently(
            lambda: webhook.delete_message(ORIGINAL_RESPONSE),
            "an interaction's status",
            final=(discord.NotFound, discord.Forbidden),
        )

    @staticmethod
    async def _shows_a_status(webhook: discord.Webhook) -> bool:
        """Whether the original response holds a status line: text alone, no longer "thinking…"
        (an answer there carries files or components; a reason goes in a followup)."""
        try:
            original = await webhook.fetch_message(ORIGINAL_RESPONSE)
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as err:
            log.info("could not read an interaction's response: %r", err)
            return False
        return bool(
            original.content
            and not original.flags.loading
            and not original.attachments
            and not original.components
        )

    @contextlib.asynccontextmanager
    async def _answering(self, origin: InteractionOrigin) -> AsyncIterator[None]:
        """Around an answer through the interaction: no status edit overlaps it, and none
        follows it unless the original response showed a status before (else the answer
        took that message's place)."""
        state = self._statuses.setdefault(origin, _InteractionStatus())
        async with state.lock:
            try:
                yield
            finally:
                state.answered = True

    async def deliver(self, origin: Origin, media: Media, manner: Manner) -> str | None:
        """Upload the video; Discord has no handle to send it again, so None."""
        name = f"{media.info.clip_id or 'video'}.mp4"
        caption = caption_for(media.info, manner.caption, limit=CAPTION_LIMIT)
        await self._send(
            origin, caption, [(media.path, name)], self._sound_view(media.info, manner)
        )
        await self._tidy(origin, manner)
        return None

    def _sound_view(self, info: ClipInfo, manner: Manner) -> discord.ui.View | None:
        """The "🎵 Sound" button under a video (bot.sound); none for a clip whose link does not
        fit in its custom id."""
        custom_id = sound_button_data(info)
        if custom_id is None:
            return None
        view = discord.ui.View(timeout=None)
        label = self._texts.text(manner.language, SOUND_BUTTON_TEXT)
        view.add_item(
            discord.ui.Button(style=discord.ButtonStyle.secondary, label=label, custom_id=custom_id)
        )
        # Stopped: the library keeps no view waiting for the click. The adapter routes it by its
        # custom id, in whichever process receives it, after a restart too.
        view.stop()
        return view

    async def deliver_audio(self, origin: Origin, audio: Audio, manner: Manner) -> str | None:
        """Upload the sound (an .m4a, a photo post's music as it is) with its title and artist
        above it; Discord has no handle to send it again, so None."""
        info = audio.info
        name = f"{info.clip_id or 'sound'}{audio_suffix(audio.path)}"
        await self._send(origin, _sound_line(info), [(audio.path, name)])
        return None

    async def resend_audio(self, origin: Origin, cached: CachedMedia, manner: Manner) -> None:
        raise StaleHandle("Discord takes uploads only: the core keeps files for it")

    async def _tidy(self, origin: Origin, manner: Manner) -> None:
        """After the answer, the link's message as the chat chose: its broken preview hidden
        (the default), left as it is, or deleted when it held only the link (its preview
        hidden instead where the bot may not delete it)."""
        if not isinstance(origin, MessageOrigin) or manner.original is OriginalMessage.KEEP:
            return
        if manner.original is OriginalMessage.DELETE and manner.link_only:
            try:
                await self._client.http.delete_message(origin.channel_id, origin.message_id)
                return
            except discord.Forbidden:
                log.info("no Manage Messages in channel %s: link kept", origin.channel_id)
            except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as err:
                log.info("link message %s not deleted: %r", origin.message_id, err)
        await self._suppress_their_preview(origin)

    async def resend(self, origin: Origin, cached: CachedMedia, manner: Manner) -> None:
        raise StaleHandle("Discord takes uploads only: the core keeps files for it")

    async def _send(
        self,
        origin: Origin,
        content: str,
        paths: Sequence[tuple[Path, str]],
        view: discord.ui.View | None = None,
    ) -> None:
        """Through the interaction when there is one (in its channel once its token is gone),
        else as a reply, with the `view`'s components; 413 is a reason."""
        extra: dict[str, object] = {"view": view} if view is not None else {}
        if isinstance(origin, InteractionOrigin):
            webhook = self._webhook(origin)
            async with self._answering(origin):
                try:
                    await self._call(
                        lambda: self._upload(
                            webhook.send,
                            content,
                            paths,
                            wait=True,
                            ephemeral=origin.ephemeral,
                            **extra,
                        ),
                        "interaction followup",
                    )
                except discord.HTTPException as err:
                    if not _token_gone(err):
                        raise
                    await self._in_their_channel(origin, content, paths, err, **extra)
            return
        where = _message(origin)
        channel = self._channel(where)
        await self._call(
            lambda: self._upload(
                channel.send,
                content,
                paths,
                reference=_reference(where),
                mention_author=False,
                **extra,
            ),
            "channel message",
        )

    async def _in_their_channel(
        self,
        origin: InteractionOrigin,
        content: str,
        paths: Sequence[tuple[Path, str]],
        err: discord.HTTPException,
        **extra: object,
    ) -> None:
        """The interaction's token is gone: answer in its channel, naming the requester, where
        the bot is there and the answer is not private; else `err` stands."""
        if origin.channel_id is None or not origin.answerable_in_channel:
            log.warning("interaction token gone (%s) and no channel to answer in", err.code)
            raise err
        log.info("interaction token gone (%s): answering in its channel", err.code)
        channel = self._client.get_partial_messageable(origin.channel_id)
        if origin.user_id is not None:
            content = f"<@{origin.user_id}> {content}".strip()
        mentions = discord.AllowedMentions(everyone=False, roles=False, users=True)
        await self._call(
            lambda: self._upload(channel.send, content, paths, allowed_mentions=mentions, **extra),
            "channel message for a gone interaction",
        )

    @staticmethod
    async def _upload(
        send: Callable[..., Awaitable[object]],
        content: str,
        paths: Sequence[tuple[Path, str]],
        **options: object,
    ) -> None:
        """One attempt: the files opened afresh (discord.py closes them after a request)."""
        with contextlib.ExitStack() as opened:
            files = [
                discord.File(opened.enter_context(path.open("rb")), filename=name)
                for path, name in paths
            ]
            await send(content, files=files, suppress_embeds=True, **options)

    async def deliver_album(self, origin: Origin, album: Album, manner: Manner) -> None:
        """The photos as attachments, ten to a message (caption on the first), then the music;
        each message is retried on its own, so a retry never repeats one already sent."""
        caption = caption_for(album.info, manner.caption, limit=CAPTION_LIMIT)
        groups: list[list[Path]] = [
            list(album.images[start : start + ATTACHMENTS_MAX])
            for start in range(0, len(album.images), ATTACHMENTS_MAX)
        ]
        if album.audio is not None:
            groups.append([album.audio])
        for n, group in enumerate(groups):
            await self._send(origin, caption if n == 0 else "", [(p, p.name) for p in group])
        await self._tidy(origin, manner)

    async def fail(self, origin: Origin, reason: Reason, manner: Manner) -> None:
        if isinstance(origin, InteractionOrigin):
            await self.tell_privately(origin, self._reason_text(reason, manner))
            return
        where = _message(origin)
        channel = self._channel(where)
        style = manner.failures or FailureStyle.REACTION
        if style is FailureStyle.SILENT:
            log.info("failure in channel %s left unsaid, as chosen: %s", where.channel_id, reason)
            return
        if style is FailureStyle.REPLY or reason is Reason.RESTARTING:
            # A reaction cannot ask for the link again.
            await self._call(
                lambda: channel.send(
                    self._reason_text(reason, manner),
                    reference=_reference(where),
                    mention_author=False,
                ),
                "channel reply",
            )
        else:
            message = channel.get_partial_message(where.message_id)
            await self._call(lambda: message.add_reaction(FAILED_REACTION), "reaction")

    def _reason_text(self, reason: Reason, manner: Manner) -> str:
        return self._texts.text(manner.language, reason_text(reason))

    async def tell_privately(self, origin: InteractionOrigin, text: str) -> None:
        """Replace the "thinking…" with a note only the invoker sees (in the channel, naming
        them, once the interaction's token is gone, where the bot may post there)."""
        webhook = self._webhook(origin)
        try:
            with contextlib.suppress(discord.NotFound):
                await self._call(
                    lambda: webhook.delete_message(ORIGINAL_RESPONSE), "delete thinking"
                )
            await self._call(lambda: webhook.send(text, ephemeral=True), "ephemeral followup")
        except discord.HTTPException as err:
            if not _token_gone(err):
                raise
            if not origin.answerable_in_channel:
                # Nothing else may reach them: the interaction was the only way.
                log.warning("interaction token gone (%s): the reason is not told", err.code)
                return
            await self._in_their_channel(origin, text, [], err)

    async def _suppress_their_preview(self, origin: MessageOrigin) -> None:
        """The video is in the channel now; hide the link's broken preview if allowed to."""
        flags_only = discord.http.handle_message_parameters(
            flags=discord.MessageFlags(suppress_embeds=True)
        )
        try:
            await self._client.http.edit_message(
                origin.channel_id, origin.message_id, params=flags_only
            )
        except discord.Forbidden:
            log.debug("no Manage Messages in channel %s: preview left", origin.channel_id)
        except (discord.HTTPException, aiohttp.ClientError, TimeoutError) as err:
            # The video is sent: a preview left in place must not turn it into a failure.
            log.info("preview of message %s left: %r", origin.message_id, err)

    def _webhook(self, origin: InteractionOrigin) -> discord.Webhook:
        """The interaction's webhook from plain ids, as a worker without the live event has them."""
        webhook = discord.Webhook.partial(origin.application_id, origin.token, client=self._client)
        # An interaction's webhook is an application webhook: only those send ephemeral messages.
        webhook.type = discord.WebhookType.application
        return webhook

    def _channel(self, origin: MessageOrigin) -> discord.PartialMessageable:
        return self._client.get_partial_messageable(origin.channel_id, guild_id=origin.guild_id)


@dataclasses.dataclass(slots=True)
class _InteractionStatus:
    """An interaction request's status: `shown` once its original response shows one;
    `answered` once an answer went out through the interaction."""

    lock: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    shown: bool = False
    answered: bool = False


def _sound_line(info: ClipInfo) -> str:
    """The sound's title and artist as a line of text ("🎵 title — artist"), or nothing."""
    parts = [
        discord.utils.escape_mentions(discord.utils.escape_markdown(part))
        for part in (info.music_title, info.music_author)
        if part
    ]
    return f"🎵 {' — '.join(parts)}" if parts else ""


def _message(origin: Origin) -> MessageOrigin:
    if not isinstance(origin, MessageOrigin):
        raise TypeError(f"not a Discord origin: {origin!r}")
    return origin


def _reference(origin: MessageOrigin) -> discord.MessageReference:
    return discord.MessageReference(
        message_id=origin.message_id,
        channel_id=origin.channel_id,
        guild_id=origin.guild_id,
        fail_if_not_exists=False,
    )


class DiscordOperatorChannel:
    """Implements `OperatorChannel`: plain messages to OPERATOR_DISCORD_CHANNEL_ID."""

    def __init__(self, client: discord.Client, channel_id: int, retry: Retrying) -> None:
        self._client = client
        self._channel_id = channel_id
        self._retry = retry

    async def tell_operator(self, text: str) -> None:
        channel = self._client.get_partial_messageable(self._channel_id)
        await self._retry.run(lambda: channel.send(text[:2000]), "operator", core_error)
