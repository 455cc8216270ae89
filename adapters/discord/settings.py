"""Discord settings, read once in the composition root."""

from __future__ import annotations

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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
