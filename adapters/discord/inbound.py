"""Discord interactions and messages to core requests."""

from __future__ import annotations

from dataclasses import dataclass

import discord

from bot.codec import DataclassCodec
from bot.model import Sender

# What Discord allows a bot to upload where the server has no boost (DESIGN.md section 7).
DEFAULT_UPLOAD_LIMIT = discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
# An interaction token takes followups for 15 minutes; a request older than this is not taken
# up again after a restart (a minute kept for the job itself).
INTERACTION_REPLAY_S = 14 * 60.0


@dataclass(frozen=True, slots=True)
class InteractionOrigin:
    """An answer through the interaction's webhook: plain ids, so any worker can send it."""

    application_id: int
    token: str
    # Where to answer once the token no longer works, and whom to name there.
    channel_id: int | None = None
    user_id: int | None = None
    platform: str = "discord"
    # Whether the bot is in that channel, so channel routes (a message there once the token is
    # gone) work; not where only the invoker installed the app. Journal entries written before
    # this field were all from where the bot is.
    in_channel: bool = True
    # The invoker asked that only they see the answer (chosen when deferring).
    ephemeral: bool = False

    @property
    def answerable_in_channel(self) -> bool:
        """Whether a message in the channel, naming the invoker, may stand in for the
        interaction once its token is gone: the bot is there and the answer is not private."""
        return self.in_channel and not self.ephemeral and self.channel_id is not None


@dataclass(frozen=True, slots=True)
class MessageOrigin:
    """An answer to an ordinary message that held links (auto-detect)."""

    channel_id: int
    message_id: int
    guild_id: int | None
    platform: str = "discord"


def interaction_origin(
    interaction: discord.Interaction, *, ephemeral: bool = False
) -> InteractionOrigin:
    return InteractionOrigin(
        application_id=interaction.application_id,
        token=interaction.token,
        channel_id=interaction.channel_id,
        user_id=interaction.user.id,
        in_channel=bot_in_channel(interaction),
        ephemeral=ephemeral,
    )


def bot_in_channel(interaction: discord.Interaction) -> bool:
    """Whether the bot itself is where the interaction came from: its DM, or a guild that
    installed the app and that the bot is in. A command the invoker installed to their account
    also works in other guilds and in group DMs, where only the interaction answers (DESIGN.md
    section 7)."""
    if interaction.context.private_channel or isinstance(interaction.channel, discord.GroupChannel):
        return False
    if interaction.guild_id is None:
        return True
    # The install key says the guild installed the app; the cache (GUILDS intent), that the bot
    # came with it (an install of applications.commands alone brings no bot user).
    return (
        interaction.is_guild_integration()
        and interaction.client.get_guild(interaction.guild_id) is not None
    )


def message_origin(message: discord.Message) -> MessageOrigin:
    return MessageOrigin(
        channel_id=message.channel.id,
        message_id=message.id,
        guild_id=message.guild.id if message.guild else None,
    )


def texts_of(message: discord.Message) -> list[str]:
    """The message's text, then the links of its embeds (a link may only show as a preview)."""
    return [message.content, *(embed.url for embed in message.embeds if embed.url)]


def message_budget(message: discord.Message) -> int:
    return message.guild.filesize_limit if message.guild else DEFAULT_UPLOAD_LIMIT


def origin_codec() -> DataclassCodec:
    """How the request journal stores Discord origins; expired interactions are dropped."""
    return DataclassCodec(
        InteractionOrigin, MessageOrigin, max_age_s={InteractionOrigin: INTERACTION_REPLAY_S}
    )


def message_sender(message: discord.Message) -> Sender:
    """Who sent a message and where; a message tells no one's locale, so the server's own is
    the best guess at their language."""
    guild = message.guild
    return Sender(
        user=message.author.id,
        chat=message.channel.id,
        server=guild.id if guild else None,
        language=str(guild.preferred_locale) if guild else None,
    )


def interaction_sender(interaction: discord.Interaction) -> Sender:
    """Who ran a command or pressed a button, and where; the server counts only where the bot
    is a member (another server's settings are not the installer's to apply)."""
    return Sender(
        user=interaction.user.id,
        chat=interaction.channel_id or interaction.user.id,
        server=interaction.guild_id if interaction.is_guild_integration() else None,
        language=str(interaction.locale),
    )
