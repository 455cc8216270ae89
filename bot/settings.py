"""Settings of the core, read once from the environment and `.env` in the composition root."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from bot.chat_settings import SlideshowMode
from bot.logs import url_passwords

# One public video and one photo post from yt-dlp's and gallery-dl's own TikTok tests.
DEFAULT_CANARY_URLS = (
    "https://www.tiktok.com/@leenabhushan/video/6748451240264420610",
    "https://www.tiktok.com/@chillezy/photo/7240568259186019630",
)


class CoreSettings(BaseSettings):
    """Download, media and queue settings shared by every platform."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", env_ignore_empty=True)

    # One proxy, or several comma-separated: a job moves to the next on a blocked-IP or
    # challenge answer, and a proxy that keeps failing rests for a while (bot.proxies).
    download_proxy: str | None = None
    # A Netscape cookies.txt (mode 600) for login walls, age-restricted posts, challenge pages.
    download_cookies_file: Path | None = None
    download_verify_tls: bool = True
    download_timeout_s: float = Field(default=120.0, gt=0)
    # Seconds one reply may take in all, retries included, while a platform refuses it for now.
    reply_deadline_s: float = Field(default=60.0, gt=0)
    data_dir: Path = Path("data")
    log_level: str = "INFO"
    max_concurrent_downloads: int = Field(default=4, ge=1)
    # yt-dlp in a child process of its own (bot.download_process): a burst of new clips uses a
    # second core, for the child's memory; false: in threads of the bot's own process.
    download_process: bool = True
    max_concurrent_encodes: int = Field(default=1, ge=1)
    max_duration_s: float = Field(default=600.0, gt=0)
    queue_size: int = Field(default=500, ge=1)
    rate_limit_user_per_min: int = Field(default=10, ge=1)
    rate_limit_chat_per_min: int = Field(default=30, ge=1)
    workers: int = Field(default=16, ge=1)
    # Seconds jobs may go on after SIGTERM before the rest are told to send their link again;
    # hosts that run a Procfile kill the process 30 s after SIGTERM.
    shutdown_grace_s: float = Field(default=25.0, ge=0)
    slideshow_mode: SlideshowMode = SlideshowMode.ALBUM
    # Posts get removed: a cached clip is fetched anew after this many seconds.
    cache_max_age_s: float = Field(default=7 * 24 * 3600.0, gt=0)
    media_cache_mb: int = Field(default=500, ge=0)
    # yt-dlp extractor names (as `yt-dlp --list-extractors` prints them), comma-separated.
    allowed_sites: Annotated[tuple[str, ...], NoDecode] = ("TikTok",)
    # Media past this many decimal megabytes is stopped as it arrives: it bounds one job's disk
    # use. Above the upload limit, since larger sources are re-encoded down to fit it.
    max_download_mb: float = Field(default=500, gt=0)
    # First pause before a failed download is tried again; it doubles each time.
    download_retry_delay_s: float = Field(default=1.0, ge=0)
    # Set: the distributed mode (state, locks and the job queue in Redis). Never logged: it may
    # hold a password.
    redis_url: str | None = None
    # Seconds a job may go without its worker's sign of life before another worker takes it.
    job_lease_s: float = Field(default=60.0, ge=1)
    # Where a process serves HTTP (the Telegram webhook, /healthz, /metrics); no PORT, no server.
    host: str = "0.0.0.0"  # noqa: S104 - a server behind a load balancer listens on all addresses
    port: int | None = Field(default=None, ge=0, le=65535)

    # The second path: a cobalt instance asked when yt-dlp fails for a reason not the post's own.
    cobalt_api_url: str | None = None
    cobalt_api_key: SecretStr | None = None
    # Links `python -m bot doctor` fetches end to end (nothing is sent): a video and a photo post.
    canary_urls: Annotated[tuple[str, ...], NoDecode] = DEFAULT_CANARY_URLS
    # A link that just failed is answered from memory this long instead of fetched again.
    failed_link_cooldown_s: float = Field(default=120.0, ge=0)
    # Where `doctor` looks up the newest yt-dlp and gallery-dl (PyPI's JSON API).
    package_index_url: str = "https://pypi.org/pypi"

    @property
    def proxies(self) -> tuple[str, ...]:
        """DOWNLOAD_PROXY's proxies, in the order given."""
        text = self.download_proxy or ""
        return tuple(part.strip() for part in text.split(",") if part.strip())

    def secrets(self) -> list[str]:
        """What logs and printed lines must never show: the cobalt key, and the passwords in
        REDIS_URL and the proxies' URLs (as written and decoded)."""
        found = [self.cobalt_api_key.get_secret_value()] if self.cobalt_api_key else []
        return found + url_passwords((self.redis_url, *self.proxies))

    @field_validator("canary_urls", mode="before")
    @classmethod
    def _split_urls(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part for part in value.replace(",", " ").split() if part)
        return value

    @field_validator("allowed_sites", mode="before")
    @classmethod
    def _split_sites(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(name.strip() for name in value.split(",") if name.strip())
        return value
