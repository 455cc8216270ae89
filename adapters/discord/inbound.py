"""Discord interactions and messages to core requests."""

from __future__ import annotations

from dataclasses import dataclass

import discord

from bot.codec import DataclassCodec

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


@dataclass(frozen=True, slots=True)
class MessageOrigin:
    """An answer to an ordinary message that held links (auto-detect)."""

    channel_id: int
    message_id: int
    guild_id: int | None
    platform: str = "discord"


def interaction_origin(interaction: discord.Interaction) -> InteractionOrigin:
    return InteractionOrigin(
        application_id=interaction.application_id,
        token=interaction.token,
        channel_id=interaction.channel_id,
        user_id=interaction.user.id,
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
