"""Core outcomes to Discord replies: through the interaction if there is one, else the message.

An interaction from where the bot is not (a command the invoker installed to their account, used
in another server or a group DM) is answered through the interaction alone: its origin says so
(`InteractionOrigin.in_channel`), and no channel route, reaction or embed edit is tried.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TypeVar, cast

import aiohttp
import discord

from adapters.discord.inbound import InteractionOrigin, MessageOrigin
from bot.caption import make_caption
from bot.model import Album, CachedMedia, FetchError, Media, Origin, Reason, StaleHandle
from bot.retry import Retrying, Unavailable, Unconfirmed

log = logging.getLogger(__name__)

CAPTION_LIMIT = 1000
ATTACHMENTS_MAX = 10
FAILED_REACTION = "⚠️"
# Webhook routes name the interaction's first response "@original"; discord.py types ids as int.
ORIGINAL_RESPONSE = cast(int, "@original")
REASON_TEXTS = {Reason.TOO_LARGE: "This video is too large for this server's upload limit."}
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

    def __init__(self, client: discord.Client, retry: Retrying) -> None:
        self._client = client
        self._retry = retry

    async def _call(self, send: Callable[[], Awaitable[T]], what: str) -> T:
        """One REST call under the core's retry policy; `send` opens its files itself, as each
        attempt uploads them anew."""
        return await self._retry.run(send, what, core_error)

    async def working(self, origin: Origin) -> None:
        if isinstance(origin, MessageOrigin):
            await self._client.get_partial_messageable(origin.channel_id).typing()
        # An interaction already shows "thinking…" from its deferred response.

    async def deliver(self, origin: Origin, media: Media) -> str | None:
        """Upload the video; Discord has no handle to send it again, so None."""
        name = f"{media.info.clip_id or 'video'}.mp4"
        caption = make_caption(media.info, limit=CAPTION_LIMIT)
        await self._send(origin, caption, [(media.path, name)])
        if isinstance(origin, MessageOrigin):
            await self._suppress_their_preview(origin)
        return None

    async def resend(self, origin: Origin, cached: CachedMedia) -> None:
        raise StaleHandle("Discord takes uploads only: the core keeps files for it")

    async def _send(self, origin: Origin, content: str, paths: Sequence[tuple[Path, str]]) -> None:
        """Through the interaction when there is one (in its channel once its token is gone),
        else as a reply; 413 is a reason."""
        if isinstance(origin, InteractionOrigin):
            webhook = self._webhook(origin)
            try:
                await self._call(
                    lambda: self._upload(
                        webhook.send, content, paths, wait=True, ephemeral=origin.ephemeral
                    ),
                    "interaction followup",
                )
            except discord.HTTPException as err:
                if not _token_gone(err):
                    raise
                await self._in_their_channel(origin, content, paths, err)
            return
        where = _message(origin)
        channel = self._channel(where)
        await self._call(
            lambda: self._upload(
                channel.send, content, paths, reference=_reference(where), mention_author=False
            ),
            "channel message",
        )

    async def _in_their_channel(
        self,
        origin: InteractionOrigin,
        content: str,
        paths: Sequence[tuple[Path, str]],
        err: discord.HTTPException,
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
            lambda: self._upload(channel.send, content, paths, allowed_mentions=mentions),
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

    async def deliver_album(self, origin: Origin, album: Album) -> None:
        """The photos as attachments, ten to a message (caption on the first), then the music;
        each message is retried on its own, so a retry never repeats one already sent."""
        caption = make_caption(album.info, limit=CAPTION_LIMIT)
        groups: list[list[Path]] = [
            list(album.images[start : start + ATTACHMENTS_MAX])
            for start in range(0, len(album.images), ATTACHMENTS_MAX)
        ]
        if album.audio is not None:
            groups.append([album.audio])
        for n, group in enumerate(groups):
            await self._send(origin, caption if n == 0 else "", [(p, p.name) for p in group])

    async def fail(self, origin: Origin, reason: Reason) -> None:
        if isinstance(origin, InteractionOrigin):
            await self.tell_privately(origin, reason_text(reason))
            return
        where = _message(origin)
        channel = self._channel(where)
        if reason is Reason.RESTARTING:
            # A reaction cannot ask for the link again.
            await channel.send(
                reason_text(reason), reference=_reference(where), mention_author=False
            )
        else:
            message = channel.get_partial_message(where.message_id)
            await self._call(lambda: message.add_reaction(FAILED_REACTION), "reaction")

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
