"""Where a link becomes a video: the flow of DESIGN.md section 1, top to bottom."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from bot.download import SlideshowPost
from bot.fit import FfmpegFitter
from bot.links import Link, LinkKind
from bot.media import FfmpegMedia, probe
from bot.model import Album, ClipInfo, FetchError, Media, Origin, Reason, VideoRequest
from bot.ports import Downloader, LinkResolver, Replier, SlideshowFetcher
from bot.settings import SlideshowMode

log = logging.getLogger(__name__)

Outcome = Media | Album | Reason


class Service:
    """Answers a request: its links fetched at once (within the download cap), answered in order."""

    def __init__(
        self,
        *,
        resolver: LinkResolver,
        downloader: Downloader,
        slideshows: SlideshowFetcher,
        media: FfmpegMedia,
        fitter: FfmpegFitter,
        repliers: Mapping[str, Replier],
        max_downloads: int,
        max_encodes: int,
        slideshow_mode: SlideshowMode = SlideshowMode.ALBUM,
        work_root: Path | None = None,
        working_every_s: float = 4.0,
    ) -> None:
        self._resolver = resolver
        self._downloader = downloader
        self._slideshows = slideshows
        self._media = media
        self._fitter = fitter
        self._repliers = repliers
        self._download_slots = asyncio.Semaphore(max_downloads)
        # Encodes take the CPU for seconds; their own cap keeps downloads and other jobs moving.
        self._encode_slots = asyncio.Semaphore(max_encodes)
        self._slideshow_mode = slideshow_mode
        self._work_root = work_root
        self._working_every_s = working_every_s

    async def process(self, request: VideoRequest) -> None:
        replier = self._repliers[request.origin.platform]
        async with contextlib.AsyncExitStack() as stack:
            workdirs = [stack.enter_context(self._job_dir()) for _ in request.links]
            prepared = [
                asyncio.create_task(self._prepare(link, request.budget_bytes, workdir))
                for link, workdir in zip(request.links, workdirs, strict=True)
            ]
            # Registered after the directories, so it runs first: no task still writes when
            # the directories are removed, also on cancellation.
            stack.push_async_callback(_cancel_and_wait, prepared)
            indicator = asyncio.create_task(self._show_working(replier, request.origin, prepared))
            stack.push_async_callback(_cancel_and_wait, [indicator])
            for task in prepared:
                await self._answer(replier, request.origin, await task)

    async def _prepare(self, link: Link, budget_bytes: int, workdir: Path) -> Outcome:
        try:
            link = await self._resolver.resolve(link)
            if link.kind is LinkKind.PHOTO:
                return await self._slideshow(link, budget_bytes, workdir)
            try:
                async with self._download_slots:
                    download = await self._downloader.fetch(link, workdir, budget_bytes)
            except SlideshowPost:
                return await self._slideshow(link, budget_bytes, workdir)
            return await self._playable_within(download.path, download.info, budget_bytes, workdir)
        except FetchError as err:
            log.info("link %s not fetched: %s", link.url, err)
            return err.reason
        except Exception:
            log.exception("link %s failed unexpectedly", link.url)
            return Reason.FAILED

    async def _playable_within(
        self, source: Path, info: ClipInfo, budget_bytes: int, workdir: Path
    ) -> Media:
        """The source as it is when it plays everywhere and fits; else remuxed, re-encoded or
        fitted to the budget, from the source each time."""
        original = found = await asyncio.to_thread(probe, source)
        path = source
        if not found.playable and found.size <= budget_bytes:
            async with self._encode_slots:
                path, found = await self._media.playable(source, workdir)
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

    async def _answer(self, replier: Replier, origin: Origin, outcome: Outcome) -> None:
        if not isinstance(outcome, Reason):
            try:
                if isinstance(outcome, Album):
                    await replier.deliver_album(origin, outcome)
                else:
                    await replier.deliver(origin, outcome)
                return
            except FetchError as err:
                outcome = err.reason
            except Exception:
                log.exception("delivery failed")
                outcome = Reason.FAILED
        try:
            await replier.fail(origin, outcome)
        except Exception:
            log.exception("could not tell the requester: %s", outcome.name)

    async def _show_working(
        self, replier: Replier, origin: Origin, jobs: Sequence[asyncio.Task[Outcome]]
    ) -> None:
        while not all(job.done() for job in jobs):
            try:
                await replier.working(origin)
            except Exception as err:
                log.debug("working indicator failed: %r", err)
            await asyncio.wait(jobs, timeout=self._working_every_s)

    @contextlib.contextmanager
    def _job_dir(self) -> Iterator[Path]:
        """A private directory per job (mode 0700), removed however the job ends."""
        with tempfile.TemporaryDirectory(
            prefix="reshare-", dir=self._work_root, ignore_cleanup_errors=True
        ) as name:
            yield Path(name)


async def _cancel_and_wait(tasks: Sequence[asyncio.Task[object]]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)
