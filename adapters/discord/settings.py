"""Discord settings, read once in the composition root."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# What a bot may upload in a server without boosts (DESIGN.md section 7): the canaries' budget.
DEFAULT_UPLOAD_BYTES = 10 * 1024 * 1024


class DiscordSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    discord_bot_token: SecretStr | None = None
    # Includes the version path; rate-limit proxies and the test stand-in go here.
    discord_api_url: str = "https://discord.com/api/v10"
    # The gateway websocket root; empty means Discord's own.
    discord_gateway_url: str | None = None
    # Auto-detect links in ordinary messages (needs the privileged Message Content intent).
    discord_message_content: bool = False
    # Sync the commands to this one guild (instant updates while testing) instead of globally.
    discord_command_guild_id: int | None = None
    # Sharding: the total, and this process's shards ("0-3" or "0,2"); unset, discord.py's
    # AutoShardedClient asks Discord how many it needs and runs them all.
    discord_shard_count: int | None = Field(default=None, ge=1)
    discord_shard_ids: Annotated[tuple[int, ...] | None, NoDecode] = None

    # A channel where the bot tells its operator that fetching broke and how to fix it.
    operator_discord_channel_id: int | None = None

    @field_validator("discord_shard_ids", mode="before")
    @classmethod
    def _shard_ranges(cls, value: object) -> object:
        if not isinstance(value, str):
            return value
        ids: list[int] = []
        for part in value.split(","):
            first, _, last = part.strip().partition("-")
            ids.extend(range(int(first), int(last or first) + 1))
        return tuple(ids)

    @model_validator(mode="after")
    def _shards_known(self) -> DiscordSettings:
        if self.discord_shard_ids is not None:
            if self.discord_shard_count is None:
                raise ValueError("DISCORD_SHARD_IDS needs DISCORD_SHARD_COUNT")
            if any(not 0 <= n < self.discord_shard_count for n in self.discord_shard_ids):
                raise ValueError("DISCORD_SHARD_IDS must lie in 0..DISCORD_SHARD_COUNT-1")
        return self
