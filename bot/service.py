"""Where a link becomes a video: the flow of DESIGN.md section 1, top to bottom."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from bot.links import Link
from bot.media import FfmpegMedia
from bot.model import FetchError, Media, Origin, Reason, VideoRequest
from bot.ports import Downloader, LinkResolver, Replier

log = logging.getLogger(__name__)


class Service:
    """Answers a request: its links fetched at once (within the download cap), answered in order."""

    def __init__(
        self,
        *,
        resolver: LinkResolver,
        downloader: Downloader,
        media: FfmpegMedia,
        repliers: Mapping[str, Replier],
        max_downloads: int,
        work_root: Path | None = None,
        working_every_s: float = 4.0,
    ) -> None:
        self._resolver = resolver
        self._downloader = downloader
        self._media = media
        self._repliers = repliers
        self._download_slots = asyncio.Semaphore(max_downloads)
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

    async def _prepare(self, link: Link, budget_bytes: int, workdir: Path) -> Media | Reason:
        try:
            link = await self._resolver.resolve(link)
            async with self._download_slots:
                download = await self._downloader.fetch(link, workdir)
            path, found = await self._media.playable(download.path, workdir)
            size = path.stat().st_size
            if size > budget_bytes:
                raise FetchError(Reason.TOO_LARGE, f"{size} bytes over {budget_bytes}")
            thumbnail = await self._media.thumbnail(path, workdir)
        except FetchError as err:
            log.info("link %s not fetched: %s", link.url, err)
            return err.reason
        except Exception:
            log.exception("link %s failed unexpectedly", link.url)
            return Reason.FAILED
        return Media(
            path=path,
            width=found.width,
            height=found.height,
            duration=found.duration,
            size=size,
            thumbnail=thumbnail,
            info=download.info,
        )

    async def _answer(self, replier: Replier, origin: Origin, outcome: Media | Reason) -> None:
        if isinstance(outcome, Media):
            try:
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
        self, replier: Replier, origin: Origin, jobs: Sequence[asyncio.Task[Media | Reason]]
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
