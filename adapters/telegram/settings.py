"""Telegram settings, read once in the composition root."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class TelegramSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    # Decimal megabytes, as Telegram counts them (DESIGN.md section 10).
    telegram_upload_limit_mb: int = Field(default=50, ge=1, le=2000)
    # Seconds to wait for the Bot API's answer to a call (uploads wait at least 300).
    telegram_timeout_s: float = Field(default=60.0, gt=0)

    @property
    def upload_limit_bytes(self) -> int:
        return self.telegram_upload_limit_mb * 1_000_000
