"""Settings of the core, read once from the environment and `.env` in the composition root."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CoreSettings(BaseSettings):
    """Download, media and queue settings shared by every platform."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    download_proxy: str | None = None
    download_verify_tls: bool = True
    download_timeout_s: float = Field(default=120.0, gt=0)
    data_dir: Path = Path("data")
    log_level: str = "INFO"
    max_concurrent_downloads: int = Field(default=4, ge=1)
    queue_size: int = Field(default=500, ge=1)
    workers: int = Field(default=16, ge=1)
