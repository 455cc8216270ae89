"""Telegram settings, read once in the composition root."""

from __future__ import annotations

import re

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}")


class TelegramSettings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    telegram_bot_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    # Decimal megabytes, as Telegram counts them (DESIGN.md section 10).
    telegram_upload_limit_mb: int = Field(default=50, ge=1, le=2000)
    # Seconds to wait for the Bot API's answer to a call (uploads wait at least 300).
    telegram_timeout_s: float = Field(default=60.0, gt=0)
    # Set: updates come by webhook to this public URL (the receiver serves its path on HOST and
    # PORT); unset: long polling.
    telegram_webhook_url: str | None = None
    # Telegram sends it back in X-Telegram-Bot-Api-Secret-Token; required with the URL.
    telegram_webhook_secret: SecretStr | None = None

    # A private channel (or group) where the bot may post: new clips asked for inline are
    # uploaded there to get a file id, then edited into the sent inline message.
    telegram_storage_chat_id: int | None = None
    # A chat (your private chat with the bot, or a group) where the bot tells its operator that
    # fetching broke and how to fix it, and when it works again.
    operator_chat_id: int | None = None

    @field_validator("telegram_webhook_secret")
    @classmethod
    def _secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and not _SECRET.fullmatch(value.get_secret_value()):
            raise ValueError("must be 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value

    @model_validator(mode="after")
    def _secret_with_url(self) -> TelegramSettings:
        if self.telegram_webhook_url and self.telegram_webhook_secret is None:
            raise ValueError("TELEGRAM_WEBHOOK_URL needs TELEGRAM_WEBHOOK_SECRET")
        if self.telegram_webhook_url and not self.telegram_webhook_url.startswith(
            ("https://", "http://")
        ):
            raise ValueError("TELEGRAM_WEBHOOK_URL must be an http(s) URL")
        return self

    @property
    def upload_limit_bytes(self) -> int:
        return self.telegram_upload_limit_mb * 1_000_000
