"""The media pipeline: a link to a file that plays everywhere and fits the budget.

Fetch (yt-dlp, or gallery-dl for photo posts) -> probe -> remux or re-encode when it would not
play -> fit the byte budget -> thumbnail. Downloads and encodes have caps of their own, so an
encode that takes the CPU for seconds never holds up other people's downloads.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.download import SlideshowPost
from bot.fit import FfmpegFitter
from bot.links import Link, LinkKind
from bot.media import FfmpegMedia, probe
from bot.metrics import Metrics
from bot.model import Album, ClipInfo, FetchError, Media, Reason
from bot.ports import Downloader, SlideshowFetcher
from bot.settings import SlideshowMode


class ClipPipeline:
    """Implements the `Pipeline` port with the downloaders and ffmpeg."""

    def __init__(
        self,
        *,
        downloader: Downloader,
        slideshows: SlideshowFetcher,
        media: FfmpegMedia,
        fitter: FfmpegFitter,
        max_downloads: int,
        max_encodes: int,
        slideshow_mode: SlideshowMode = SlideshowMode.ALBUM,
        metrics: Metrics | None = None,
    ) -> None:
        self._downloader = downloader
        self._slideshows = slideshows
        self._media = media
        self._fitter = fitter
        self._download_slots = asyncio.Semaphore(max_downloads)
        self._encode_slots = asyncio.Semaphore(max_encodes)
        self._slideshow_mode = slideshow_mode
        self._metrics = metrics or Metrics()

    @property
    def variant(self) -> str:
        return f"slideshow={self._slideshow_mode.value}"

    async def prepare(self, link: Link, budget_bytes: int, workdir: Path) -> Media | Album:
        """The clip ready to send; FetchError with the reason when it cannot be."""
        if link.kind is LinkKind.PHOTO:
            return await self._slideshow(link, budget_bytes, workdir)
        try:
            async with self._download_slots:
                with self._metrics.stage("download"):
                    download = await self._downloader.fetch(link, workdir, budget_bytes)
        except SlideshowPost:
            return await self._slideshow(link, budget_bytes, workdir)
        with self._metrics.stage("fit"):
            return await self._playable_within(download.path, download.info, budget_bytes, workdir)

    async def _playable_within(
        self, source: Path, info: ClipInfo, budget_bytes: int, workdir: Path
    ) -> Media:
        """The source as it is when it plays everywhere and fits; else remuxed, re-encoded or
        fitted to the budget, from the source each time."""
        original = found = await asyncio.to_thread(probe, source)
        path = source
        if not found.playable and found.size <= budget_bytes:
            async with self._encode_slots:
                path, found = await self._media.playable(source, found, workdir)
        if found.size > budget_bytes:
            async with self._encode_slots:
                path = await self._fitter.fit(source, original, budget_bytes, workdir)
            found = await asyncio.to_thread(probe, path)
        if found.size > budget_bytes or not found.playable:
            raise FetchError(Reason.TOO_LARGE, f"{found.size} bytes, budget {budget_bytes}")
        thumbnail = await self._media.thumbnail(path, workdir)
        return Media(
            path=path,
            width=found.width,
            height=found.height,
            duration=found.duration,
            size=found.size,
            thumbnail=thumbnail,
            info=info,
        )

    async def _slideshow(self, link: Link, budget_bytes: int, workdir: Path) -> Album | Media:
        async with self._download_slots:
            album = await self._slideshows.fetch(link, workdir)
        if self._slideshow_mode is SlideshowMode.ALBUM:
            return album
        async with self._encode_slots:
            video = await self._media.slideshow_video(album, workdir)
        return await self._playable_within(video, album.info, budget_bytes, workdir)
