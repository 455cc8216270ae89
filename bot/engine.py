"""The shared core, built once from the settings: one queue, one download cap for all platforms."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
from collections.abc import Mapping
from pathlib import Path

import imageio_ffmpeg

from bot.cache import DiskMediaCache, SqliteCache
from bot.download import YtDlpDownloader
from bot.fit import FfmpegFitter
from bot.intake import Intake
from bot.limits import RateLimits
from bot.media import FfmpegMedia
from bot.ports import Replier
from bot.queue import AsyncioJobQueue
from bot.resolve import HttpxLinkResolver
from bot.service import Service
from bot.settings import CoreSettings
from bot.sites import SiteCatalog
from bot.slideshow import GalleryDlSlideshows


class Engine:
    """Adapters put requests in through `intake`; `start` connects workers to the repliers."""

    def __init__(self, settings: CoreSettings) -> None:
        self.settings = settings
        self.work_root = settings.data_dir / "jobs"
        self.sites = SiteCatalog(settings.allowed_sites)
        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
        self.resolver = HttpxLinkResolver(
            proxy=settings.download_proxy,
            verify_tls=settings.download_verify_tls,
            timeout_s=min(settings.download_timeout_s, 30.0),
        )
        self.downloader = YtDlpDownloader(
            proxy=settings.download_proxy,
            verify_tls=settings.download_verify_tls,
            timeout_s=settings.download_timeout_s,
            ffmpeg_path=ffmpeg,
            threads=settings.max_concurrent_downloads,
            max_duration_s=settings.max_duration_s,
            extractors=self.sites.ytdlp_extractors,
            max_bytes=settings.max_download_mb * 1_000_000,
            retry_delay_s=settings.download_retry_delay_s,
        )
        self.slideshows = GalleryDlSlideshows(
            proxy=settings.download_proxy,
            verify_tls=settings.download_verify_tls,
            timeout_s=settings.download_timeout_s,
        )
        self.fitter = FfmpegFitter(ffmpeg)
        self.media = FfmpegMedia(ffmpeg)
        self.queue = AsyncioJobQueue(workers=settings.workers, maxsize=settings.queue_size)
        limits = RateLimits(
            user_per_minute=settings.rate_limit_user_per_min,
            chat_per_minute=settings.rate_limit_chat_per_min,
        )
        self.intake = Intake(self.queue, self.sites, limits)
        self._warm_up: asyncio.Task[None] | None = None
        self._service: Service | None = None
        self._cache: SqliteCache | None = None

    def service(
        self,
        repliers: Mapping[str, Replier],
        *,
        work_root: Path | None,
        cache: SqliteCache | None = None,
        media_cache: DiskMediaCache | None = None,
    ) -> Service:
        return Service(
            resolver=self.resolver,
            downloader=self.downloader,
            slideshows=self.slideshows,
            media=self.media,
            fitter=self.fitter,
            repliers=repliers,
            max_downloads=self.settings.max_concurrent_downloads,
            max_encodes=self.settings.max_concurrent_encodes,
            slideshow_mode=self.settings.slideshow_mode,
            cache=cache,
            media_cache=media_cache,
            work_root=work_root,
        )

    def prepare_dirs(self) -> None:
        """DATA_DIR and its job directories, private to this user; leftovers of a crash removed."""
        self.settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.rmtree(self.work_root, ignore_errors=True)
        self.work_root.mkdir(mode=0o700)

    async def start(self, repliers: Mapping[str, Replier]) -> None:
        self.prepare_dirs()
        data_dir = self.settings.data_dir
        self._cache = await SqliteCache.open(
            data_dir / "cache.sqlite3", max_age_s=self.settings.cache_max_age_s
        )
        media_cache = DiskMediaCache(
            data_dir / "media", max_bytes=self.settings.media_cache_mb * 1_000_000
        )
        self._warm_up = asyncio.create_task(self.downloader.warm_up())
        self._service = self.service(
            repliers, work_root=self.work_root, cache=self._cache, media_cache=media_cache
        )
        self.queue.start(self._service.process)

    async def warmed_up(self) -> None:
        """Wait until the extractor is imported (benchmarks start timing after it)."""
        if self._warm_up is not None:
            await asyncio.shield(self._warm_up)

    async def stop(self) -> None:
        await self.queue.stop()
        if self._service is not None:
            await self._service.drain()
        if self._cache is not None:
            await self._cache.close()
        if self._warm_up is not None:
            self._warm_up.cancel()
            with contextlib.suppress(BaseException):
                await self._warm_up
        await self.resolver.aclose()
        await asyncio.to_thread(self.downloader.close)
