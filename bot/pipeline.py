"""The media pipeline: a link to a file that plays everywhere and fits the budget.

Fetch (yt-dlp, or gallery-dl for photo posts; the second path when they fail for a reason
not the post's own) -> probe -> remux or re-encode when it would not play -> fit the byte
budget -> thumbnail. Downloads and encodes have caps of their own, so an encode that takes the
CPU for seconds never holds up other people's downloads. Every fetch by the first path is
counted by the breakage watch, whichever way the clip then arrives.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from bot.breakage import BreakageWatch
from bot.chat_settings import SlideshowMode
from bot.fit import FfmpegFitter
from bot.links import Link, LinkKind
from bot.media import FfmpegMedia, probe
from bot.metrics import Metrics
from bot.model import (
    Album,
    Audio,
    ClipInfo,
    Download,
    FetchError,
    Media,
    Reason,
    SlideshowPost,
)
from bot.ports import Downloader, SecondPath, SlideshowFetcher
from bot.progress import Reporter

log = logging.getLogger(__name__)

# The post's own reasons: another way to fetch it would get the same answer.
_THE_POSTS_OWN = frozenset(
    {
        Reason.PRIVATE,
        Reason.NOT_A_VIDEO,
        Reason.TOO_LONG,
        Reason.TOO_LARGE,
        Reason.UNSUPPORTED_SITE,
        Reason.UNSAFE_ADDRESS,
    }
)
# Reasons that, while the site is known to be broken, hide that TikTok refuses us.
_HIDING_A_REFUSAL = frozenset({Reason.REMOVED, Reason.FAILED, Reason.TIMED_OUT})


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
        watch: BreakageWatch | None = None,
        second_path: SecondPath | None = None,
    ) -> None:
        self._downloader = downloader
        self._slideshows = slideshows
        self._media = media
        self._fitter = fitter
        self._download_slots = asyncio.Semaphore(max_downloads)
        self._encode_slots = asyncio.Semaphore(max_encodes)
        self._slideshow_mode = slideshow_mode
        self._metrics = metrics or Metrics()
        self._watch = watch
        self._second_path = second_path

    def variant(self, slideshow: SlideshowMode | None = None) -> str:
        return f"slideshow={(slideshow or self._slideshow_mode).value}"

    async def prepare(
        self,
        link: Link,
        budget_bytes: int,
        workdir: Path,
        slideshow: SlideshowMode | None = None,
        *,
        progress: Reporter | None = None,
    ) -> Media | Album:
        """The clip ready to send (a photo post as `slideshow` says, else as the bot's default);
        FetchError with the reason when it cannot be. The download and re-encodes report how
        far they have come to `progress`."""
        fetched = await self._fetch(link, budget_bytes, workdir, progress)
        if isinstance(fetched, Album):
            return await self._from_album(
                fetched, budget_bytes, workdir, slideshow or self._slideshow_mode
            )
        with self._metrics.stage("fit"):
            return await self._playable_within(
                fetched.path, fetched.info, budget_bytes, workdir, progress
            )

    async def sound(
        self,
        link: Link,
        budget_bytes: int,
        workdir: Path,
        *,
        progress: Reporter | None = None,
    ) -> Audio:
        """The clip's sound alone (the "🎵 Sound" button, /audio): fetched as for the video,
        its audio taken out without re-encoding; a photo post's music as it is."""
        fetched = await self._fetch(link, budget_bytes, workdir, progress)
        if isinstance(fetched, Album):
            if fetched.audio is None:
                raise FetchError(Reason.NO_SOUND, "a photo post without music")
            found = await asyncio.to_thread(probe, fetched.audio)
            return Audio(fetched.audio, found.duration, found.size, fetched.info)
        async with self._encode_slots:
            return await self._media.sound(fetched.path, fetched.info, workdir)

    async def _fetch(
        self, link: Link, budget_bytes: int, workdir: Path, progress: Reporter | None
    ) -> Download | Album:
        """The first path, counted; the second when the first fails for a reason that is not
        the post's own; the honest reason when neither brings the clip."""
        try:
            fetched = await self._first_path(link, budget_bytes, workdir, progress)
        except FetchError as err:
            if self._watch is not None:
                await self._watch.record(link.site, err)
            second = await self._try_second_path(link, budget_bytes, workdir, err)
            if second is not None:
                return second
            raise await self._honest(link, err) from None
        if self._watch is not None:
            await self._watch.record(link.site, None)
        return fetched

    async def _first_path(
        self, link: Link, budget_bytes: int, workdir: Path, progress: Reporter | None
    ) -> Download | Album:
        if link.kind is LinkKind.PHOTO:
            return await self._slideshow(link, workdir)
        try:
            async with self._download_slots:
                with self._metrics.stage("download"):
                    return await self._downloader.fetch(
                        link, workdir, budget_bytes, progress=progress
                    )
        except SlideshowPost:
            return await self._slideshow(link, workdir)

    async def _try_second_path(
        self, link: Link, budget_bytes: int, workdir: Path, err: FetchError
    ) -> Download | Album | None:
        if self._second_path is None or link.site != "tiktok" or err.reason in _THE_POSTS_OWN:
            return None
        if err.reason is Reason.REMOVED and err.kind is None:
            return None
        directory = workdir / "second-path"
        directory.mkdir(mode=0o700, exist_ok=True)
        try:
            async with self._download_slots:
                with self._metrics.stage("download"):
                    fetched = await self._second_path.fetch(link, directory, budget_bytes)
        except FetchError as second:
            log.info("second path failed too for %s: %s", link.url, second)
            self._metrics.second_path(second.reason)
            return None
        except Exception:
            log.exception("second path failed unexpectedly for %s", link.url)
            self._metrics.second_path(Reason.FAILED)
            return None
        log.info("%s came by the second path (the first: %s)", link.url, err)
        self._metrics.second_path(None)
        return fetched

    async def _honest(self, link: Link, err: FetchError) -> FetchError:
        """While the site is known to refuse us, a failure it caused says so plainly."""
        if err.kind is None or err.reason not in _HIDING_A_REFUSAL or self._watch is None:
            return err
        if await self._watch.incident(link.site) is None:
            return err
        return FetchError(Reason.BLOCKED, err.detail, err.kind)

    async def _playable_within(
        self,
        source: Path,
        info: ClipInfo,
        budget_bytes: int,
        workdir: Path,
        progress: Reporter | None = None,
    ) -> Media:
        """The source as it is when it plays everywhere and fits; else remuxed, re-encoded or
        fitted to the budget, from the source each time."""
        with self._metrics.stage("probe"):
            original, thumbnail = await self._media.inspect(source, workdir, budget_bytes)
        found, path = original, source
        if not found.playable and found.size <= budget_bytes:
            async with self._encode_slots:
                path, found = await self._media.playable(source, found, workdir, progress=progress)
        if found.size > budget_bytes:
            async with self._encode_slots:
                path = await self._fitter.fit(
                    source, original, budget_bytes, workdir, progress=progress
                )
            found = await asyncio.to_thread(probe, path)
        if found.size > budget_bytes or not found.playable:
            raise FetchError(Reason.TOO_LARGE, f"{found.size} bytes, budget {budget_bytes}")
        if path != source:
            with self._metrics.stage("thumbnail"):
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

    async def _slideshow(self, link: Link, workdir: Path) -> Album:
        async with self._download_slots:
            return await self._slideshows.fetch(link, workdir)

    async def _from_album(
        self, album: Album, budget_bytes: int, workdir: Path, mode: SlideshowMode
    ) -> Album | Media:
        if mode is SlideshowMode.ALBUM:
            return album
        async with self._encode_slots:
            video = await self._media.slideshow_video(album, workdir)
        return await self._playable_within(video, album.info, budget_bytes, workdir)
