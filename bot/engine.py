"""The shared core, built once from the settings: one queue, one download cap for all platforms.

Its life: `start` takes up what the journal holds unanswered from a previous run; `stop` takes
no new work, lets jobs go on for SHUTDOWN_GRACE_S, then tells the requesters still waiting that
the bot is restarting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import shutil
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path
from typing import TypeVar

import imageio_ffmpeg

from bot.cache import DiskMediaCache, SqliteCache
from bot.download import YtDlpDownloader
from bot.fit import FfmpegFitter
from bot.intake import Intake
from bot.journal import OriginCodec, SqliteJournal, Unanswered
from bot.limits import RateLimits
from bot.media import FfmpegMedia
from bot.model import Album, CachedMedia, Media, Origin, Reason, VideoRequest
from bot.netguard import HostGuard, Resolver, SystemResolver
from bot.ports import Replier
from bot.queue import AsyncioJobQueue
from bot.resolve import HttpxLinkResolver
from bot.retry import Retrying, RetryPolicy, Unconfirmed
from bot.service import Service
from bot.settings import CoreSettings
from bot.sites import SiteCatalog
from bot.slideshow import GalleryDlSlideshows

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# A request that was taken up this many times without an answer is given up (it may be what
# brings the process down).
MAX_ATTEMPTS = 3
# After the grace: how long telling a requester "restarting" may take, and how long cancelled
# jobs may take to end. Procfile hosts kill 30 s after SIGTERM, 5 s after the default grace.
NOTICE_TIMEOUT_S = 3.0
JOB_END_TIMEOUT_S = 1.5


class Engine:
    """Adapters put requests in through `intake`; `start` connects workers to the repliers."""

    def __init__(
        self,
        settings: CoreSettings,
        codecs: Mapping[str, OriginCodec] | None = None,
        *,
        resolver: Resolver | None = None,
    ) -> None:
        """`codecs` store each platform's origins in the journal; `resolver` is the DNS boundary
        of the SSRF guard (tests give one without DNS)."""
        self.settings = settings
        self.work_root = settings.data_dir / "jobs"
        self.sites = SiteCatalog(settings.allowed_sites)
        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
        self.resolver = HttpxLinkResolver(
            proxy=settings.download_proxy,
            verify_tls=settings.download_verify_tls,
            timeout_s=min(settings.download_timeout_s, 30.0),
        )
        max_download_bytes = round(settings.max_download_mb * 1_000_000)
        self.downloader = YtDlpDownloader(
            proxy=settings.download_proxy,
            verify_tls=settings.download_verify_tls,
            timeout_s=settings.download_timeout_s,
            ffmpeg_path=ffmpeg,
            threads=settings.max_concurrent_downloads,
            max_duration_s=settings.max_duration_s,
            extractors=self.sites.ytdlp_extractors,
            guard=HostGuard(resolver or SystemResolver()),
            max_bytes=max_download_bytes,
            retry_delay_s=settings.download_retry_delay_s,
        )
        self.slideshows = GalleryDlSlideshows(
            proxy=settings.download_proxy,
            verify_tls=settings.download_verify_tls,
            timeout_s=settings.download_timeout_s,
            max_bytes=max_download_bytes,
        )
        self.fitter = FfmpegFitter(ffmpeg)
        self.media = FfmpegMedia(ffmpeg)
        self.queue = AsyncioJobQueue(workers=settings.workers, maxsize=settings.queue_size)
        limits = RateLimits(
            user_per_minute=settings.rate_limit_user_per_min,
            chat_per_minute=settings.rate_limit_chat_per_min,
        )
        self.journal = SqliteJournal(settings.data_dir / "journal.sqlite3", codecs or {})
        self.intake = Intake(self.queue, self.sites, limits, journal=self.journal)
        self.answers = AnswerWatch(on_answered=self.journal.link_answered)
        # The repliers send each answer under it (bot.retry).
        self.retry = Retrying(RetryPolicy(deadline_s=settings.reply_deadline_s), random.Random())
        self._warm_up: asyncio.Task[None] | None = None
        self._service: Service | None = None
        self._cache: SqliteCache | None = None
        self._repliers: Mapping[str, Replier] = {}
        self._take_up: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()

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
        self.journal.open()
        data_dir = self.settings.data_dir
        self._cache = await SqliteCache.open(
            data_dir / "cache.sqlite3", max_age_s=self.settings.cache_max_age_s
        )
        media_cache = DiskMediaCache(
            data_dir / "media", max_bytes=self.settings.media_cache_mb * 1_000_000
        )
        self._warm_up = asyncio.create_task(self.downloader.warm_up())
        self._repliers = repliers
        watched = {name: self.answers.watch(replier) for name, replier in repliers.items()}
        self._service = self.service(
            watched, work_root=self.work_root, cache=self._cache, media_cache=media_cache
        )
        self.queue.start(self._handle)
        unanswered = self.journal.take_unanswered()
        if unanswered:
            log.info("taking up %d requests left unanswered by the last run", len(unanswered))
        self._take_up = asyncio.create_task(self._take_up_again(unanswered))

    async def _handle(self, request: VideoRequest) -> None:
        if self._service is None:
            raise RuntimeError("the engine is not started")
        try:
            await self._service.process(request)
        except Exception:
            # Written off too: run again, it would fail again.
            log.exception("request failed")
        # Not reached when cancelled: `stop` decides about those.
        self.answers.settle(request)
        self.journal.answered(request.origin)

    async def _take_up_again(self, unanswered: Iterable[Unanswered]) -> None:
        """Queue the requests a previous run accepted and did not answer."""
        for entry in unanswered:
            if entry.attempts > MAX_ATTEMPTS:
                log.warning("a request was taken up %d times: given up", entry.attempts - 1)
                await self._tell([entry.request], Reason.FAILED)
                continue
            await self.queue.put(entry.request)

    async def warmed_up(self) -> None:
        """Wait until the extractor is imported (benchmarks start timing after it)."""
        if self._warm_up is not None:
            await asyncio.shield(self._warm_up)

    async def stop(self) -> None:
        """Take no new work, let jobs go on for SHUTDOWN_GRACE_S, tell the rest "restarting"."""
        self.intake.close()
        if self._take_up is not None:
            # What it did not queue yet stays in the journal for the next start.
            self._take_up.cancel()
            with contextlib.suppress(BaseException):
                await self._take_up
        unhandled = await self.queue.stop(self.settings.shutdown_grace_s, cut_short=self._hurry)
        if unhandled:
            log.info("%d requests not finished within the grace: telling them", len(unhandled))
            await self._tell(unhandled, Reason.RESTARTING)
        downloads_stuck = await self._end_jobs()
        if self._cache is not None:
            await self._cache.close()
        self.journal.close()
        if self._warm_up is not None:
            self._warm_up.cancel()
            with contextlib.suppress(BaseException):
                await self._warm_up
        await self.resolver.aclose()
        if not downloads_stuck:
            await asyncio.to_thread(self.downloader.close)

    def hurry(self) -> None:
        """End the grace now (a second SIGTERM or Ctrl-C)."""
        self._hurry.set()

    async def _end_jobs(self) -> bool:
        """Wait for cancelled jobs to end and remove their files; True when a download thread
        is still stuck (then its files are removed without waiting for it).

        A thread blocked in a socket read cannot be interrupted: yt-dlp looks at our cancel flag
        only between chunks, and retries a read timeout by itself.
        """
        if self._service is None:
            return False
        try:
            await asyncio.wait_for(asyncio.shield(self._service.drain()), JOB_END_TIMEOUT_S)
        except TimeoutError:
            log.warning("a download is stuck in a network read: its files are removed now")
            for job in self.work_root.iterdir():
                shutil.rmtree(job, ignore_errors=True)
            return True
        return False

    async def _tell(self, requests: Iterable[VideoRequest], reason: Reason) -> None:
        """Tell each requester once, unless every link got its answer or one was cut off
        mid-send (it may have arrived); one that could not be told stays in the journal."""

        async def tell(request: VideoRequest) -> None:
            origin = request.origin
            if self.answers.settle(request):
                log.warning("a request answered or cut off mid-send: no %s notice", reason.name)
            else:
                replier = self._repliers.get(origin.platform)
                if replier is None:
                    return
                try:
                    await asyncio.wait_for(replier.fail(origin, reason), NOTICE_TIMEOUT_S)
                except Exception as err:
                    log.warning("could not tell a requester %s: %r", reason.name, err)
                    return
            self.journal.answered(origin)

        await asyncio.gather(*(tell(request) for request in requests))


class AnswerWatch:
    """Sees every answer sent, so shutdown tells "restarting" only where nothing may be left
    unsaid twice: `on_answered` hears of each link answered (links are answered in order)."""

    def __init__(self, on_answered: Callable[[Origin], None]) -> None:
        self._on_answered = on_answered
        self._answered: dict[Origin, int] = {}
        self._cut_off: set[Origin] = set()

    def watch(self, replier: Replier) -> Replier:
        return _WatchedReplier(replier, self)

    def answered(self, origin: Origin) -> None:
        self._answered[origin] = self._answered.get(origin, 0) + 1
        self._on_answered(origin)

    def cut_off(self, origin: Origin) -> None:
        self._cut_off.add(origin)

    def settle(self, request: VideoRequest) -> bool:
        """Forget the request; True when it needs no notice: every link was answered, or an
        answer was cut off mid-send (the platform may have it)."""
        origin = request.origin
        cut_off = origin in self._cut_off
        self._cut_off.discard(origin)
        answered = self._answered.pop(origin, 0)
        return cut_off or answered >= len(request.links)


class _WatchedReplier:
    """A Replier that reports each answer sent or unconfirmed, and the origin of one cancelled
    mid-call.

    The service answers each link with exactly one successful call of the last four.
    """

    def __init__(self, replier: Replier, watch: AnswerWatch) -> None:
        self._replier = replier
        self._watch = watch

    async def working(self, origin: Origin) -> None:
        await self._replier.working(origin)

    async def deliver(self, origin: Origin, media: Media) -> str | None:
        return await self._answer(origin, self._replier.deliver(origin, media))

    async def resend(self, origin: Origin, cached: CachedMedia) -> None:
        await self._answer(origin, self._replier.resend(origin, cached))

    async def deliver_album(self, origin: Origin, album: Album) -> None:
        await self._answer(origin, self._replier.deliver_album(origin, album))

    async def fail(self, origin: Origin, reason: Reason) -> None:
        await self._answer(origin, self._replier.fail(origin, reason))

    async def _answer(self, origin: Origin, sending: Awaitable[_T]) -> _T:
        try:
            sent = await sending
        except asyncio.CancelledError:
            self._watch.cut_off(origin)
            raise
        except Unconfirmed:
            # It may have arrived, and the service takes it as the link's answer (bot.retry):
            # a restart must not send it again.
            self._watch.answered(origin)
            raise
        self._watch.answered(origin)
        return sent
