"""Core outcomes to Discord replies: through the interaction if there is one, else the message."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import cast

import discord

from adapters.discord.inbound import InteractionOrigin, MessageOrigin
from bot.cache import CachedMedia
from bot.caption import make_caption
from bot.model import Album, FetchError, Media, Origin, Reason, StaleHandle

log = logging.getLogger(__name__)

CAPTION_LIMIT = 1000
ATTACHMENTS_MAX = 10
FAILED_REACTION = "⚠️"
# Webhook routes name the interaction's first response "@original"; discord.py types ids as int.
ORIGINAL_RESPONSE = cast(int, "@original")
REASON_TEXTS = {Reason.TOO_LARGE: "This video is too large for this server's upload limit."}


def reason_text(reason: Reason) -> str:
    return REASON_TEXTS.get(reason, reason.message)


def _too_large(err: discord.HTTPException) -> bool:
    return err.status == 413 or err.code == 40005


class DiscordReplier:
    """Sends videos with embeds suppressed; failures stay ephemeral or become a reaction."""

    def __init__(self, client: discord.Client) -> None:
        self._client = client

    async def working(self, origin: Origin) -> None:
        if isinstance(origin, MessageOrigin):
            await self._client.get_partial_messageable(origin.channel_id).typing()
        # An interaction already shows "thinking…" from its deferred response.

    async def deliver(self, origin: Origin, media: Media) -> str | None:
        """Upload the video; Discord has no handle to send it again, so None."""
        name = f"{media.info.clip_id or 'video'}.mp4"
        with media.path.open("rb") as video:
            caption = make_caption(media.info, limit=CAPTION_LIMIT)
            await self._send(origin, caption, [discord.File(video, filename=name)])
        if isinstance(origin, MessageOrigin):
            await self._suppress_their_preview(origin)
        return None

    async def resend(self, origin: Origin, cached: CachedMedia) -> None:
        raise StaleHandle("Discord takes uploads only: the core keeps files for it")

    async def _send(self, origin: Origin, content: str, files: list[discord.File]) -> None:
        """Through the interaction when there is one, else as a reply; 413 is a reason."""
        try:
            if isinstance(origin, InteractionOrigin):
                await self._webhook(origin).send(
                    content, files=files, suppress_embeds=True, wait=True
                )
            elif isinstance(origin, MessageOrigin):
                await self._channel(origin).send(
                    content,
                    files=files,
                    reference=_reference(origin),
                    mention_author=False,
                    suppress_embeds=True,
                )
        except discord.HTTPException as err:
            if _too_large(err):
                raise FetchError(Reason.TOO_LARGE, str(err)) from None
            raise

    async def deliver_album(self, origin: Origin, album: Album) -> None:
        """The photos as attachments, ten to a message (caption on the first), then the music."""
        caption = make_caption(album.info, limit=CAPTION_LIMIT)
        groups: list[list[Path]] = [
            list(album.images[start : start + ATTACHMENTS_MAX])
            for start in range(0, len(album.images), ATTACHMENTS_MAX)
        ]
        if album.audio is not None:
            groups.append([album.audio])
        for n, group in enumerate(groups):
            with contextlib.ExitStack() as opened:
                files = [
                    discord.File(opened.enter_context(path.open("rb")), filename=path.name)
                    for path in group
                ]
                await self._send(origin, caption if n == 0 else "", files)

    async def fail(self, origin: Origin, reason: Reason) -> None:
        if isinstance(origin, InteractionOrigin):
            await self.tell_privately(origin, reason_text(reason))
        elif reason is Reason.RESTARTING and isinstance(origin, MessageOrigin):
            # A reaction cannot ask for the link again.
            await self._channel(origin).send(
                reason_text(reason), reference=_reference(origin), mention_author=False
            )
        else:
            message = self._channel(origin).get_partial_message(_message_id(origin))
            await message.add_reaction(FAILED_REACTION)

    async def tell_privately(self, origin: InteractionOrigin, text: str) -> None:
        """Replace the public "thinking…" with a note only the invoker sees."""
        webhook = self._webhook(origin)
        with contextlib.suppress(discord.NotFound):
            await webhook.delete_message(ORIGINAL_RESPONSE)
        await webhook.send(text, ephemeral=True)

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

    def _webhook(self, origin: InteractionOrigin) -> discord.Webhook:
        """The interaction's webhook from plain ids, as a worker without the live event has them."""
        webhook = discord.Webhook.partial(origin.application_id, origin.token, client=self._client)
        # An interaction's webhook is an application webhook: only those send ephemeral messages.
        webhook.type = discord.WebhookType.application
        return webhook

    def _channel(self, origin: Origin) -> discord.PartialMessageable:
        if not isinstance(origin, MessageOrigin):
            raise TypeError(f"not a Discord message origin: {origin!r}")
        return self._client.get_partial_messageable(origin.channel_id, guild_id=origin.guild_id)


def _message_id(origin: Origin) -> int:
    if not isinstance(origin, MessageOrigin):
        raise TypeError(f"not a Discord message origin: {origin!r}")
    return origin.message_id


def _reference(origin: MessageOrigin) -> discord.MessageReference:
    return discord.MessageReference(
        message_id=origin.message_id,
        channel_id=origin.channel_id,
        guild_id=origin.guild_id,
        fail_if_not_exists=False,
    )
