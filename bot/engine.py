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
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import imageio_ffmpeg

from bot.answers import AnswerWatch, noted
from bot.breakage import BreakageWatch
from bot.cobalt import CobaltDownloader
from bot.codec import OriginCodec, RequestCodec
from bot.cookies import check_cookies_file
from bot.download_process import (
    JOB_END_TIMEOUT_S,
    DownloaderConfig,
    EarlyChild,
    ProcessDownloader,
)
from bot.fit import FfmpegFitter
from bot.i18n import Catalogues
from bot.inline import InlineQueries
from bot.intake import Intake
from bot.logs import JOB_KEY, job_key_shown
from bot.media import FfmpegMedia
from bot.metrics import Metrics
from bot.model import Reason, VideoRequest
from bot.netguard import HostGuard, Resolver, SystemResolver
from bot.pipeline import ClipPipeline
from bot.ports import (
    ChatSettingsStore,
    ClipCache,
    FailedLinks,
    FetchHealth,
    JobQueue,
    Journal,
    MediaStore,
    RateLimits,
    Replier,
    SendLimits,
    ShortLinks,
    SingleFlight,
    Trending,
    Unanswered,
)
from bot.proxies import ProxyPool
from bot.queue import AsyncioJobQueue
from bot.resolve import HttpxLinkResolver
from bot.retry import Retrying, RetryPolicy
from bot.service import Service
from bot.settings import CoreSettings
from bot.sites import SiteCatalog
from bot.slideshow import GalleryDlSlideshows
from bot.stores.media_files import FileMediaStore
from bot.stores.memory_flights import MemoryFlights
from bot.stores.memory_health import MemoryFailedLinks, MemoryFetchHealth
from bot.stores.memory_limits import MemoryRateLimits, MemorySendLimits
from bot.stores.sqlite_cache import SqliteCache
from bot.stores.sqlite_journal import SqliteJournal
from bot.stores.sqlite_settings import SqliteChatSettings
from bot.stores.sqlite_shortlinks import SqliteShortLinks
from bot.stores.sqlite_trending import SqliteTrending
from bot.trending import TrendingBoard

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from bot.distributed import Distributed
    from bot.download import YtDlpDownloader
    from bot.taskiq_jobs import TaskiqWorker

log = logging.getLogger(__name__)


# A request that was taken up this many times without an answer is given up (it may be what
# brings the process down).
MAX_ATTEMPTS = 3
# After the grace: how long telling a requester "restarting" may take (and cancelled jobs to
# end: JOB_END_TIMEOUT_S). Procfile hosts kill 30 s after SIGTERM, 5 s after the default grace.
NOTICE_TIMEOUT_S = 3.0
# Telegram's flood limits per bot (DESIGN.md section 6), kept across every worker.
TELEGRAM_PER_SECOND = 30
# How often the distributed mode reads the queue's depth and the workers alive for /metrics.
OBSERVE_EVERY_S = 5.0
TELEGRAM_PER_GROUP_MINUTE = 20


class Engine:
    """Adapters put requests in through `intake`; `start` connects workers to the repliers."""

    def __init__(
        self,
        settings: CoreSettings,
        codecs: Mapping[str, OriginCodec] | None = None,
        *,
        resolver: Resolver | None = None,
        work: bool = True,
        pseudonym_key: bytes = b"",
        early: EarlyChild | None = None,
    ) -> None:
        """`codecs` store each platform's origins in the journal; `resolver` is the DNS boundary
        of the SSRF guard (tests give one without DNS). With REDIS_URL set, the state and the
        queue are in Redis, and `work` says whether this process also runs jobs (a receiver
        only queues them). `pseudonym_key` keys how /top's counts write people down: a secret
        every process of the deployment shares and the stores do not hold. `early` is a download
        process started before the bot's imports, taken with DOWNLOAD_PROCESS=true."""
        self.settings = settings
        self.work = work
        self._pseudonym_key = pseudonym_key
        self.work_root = settings.data_dir / "jobs"
        self.sites = SiteCatalog(settings.allowed_sites)
        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
        # DOWNLOAD_COOKIES_FILE is refused here, with one line saying why, before any job.
        cookies = settings.download_cookies_file
        if cookies is not None:
            check_cookies_file(cookies)
        self.proxies = ProxyPool(settings.proxies)
        # Opened in `start`; until then short links are looked up every time.
        self.short_links: ShortLinks | None = None
        self.resolver = HttpxLinkResolver(
            proxies=self.proxies,
            verify_tls=settings.download_verify_tls,
            timeout_s=min(settings.download_timeout_s, 30.0),
            short_links=lambda: self.short_links,
        )
        max_download_bytes = round(settings.max_download_mb * 1_000_000)
        downloads = DownloaderConfig(
            proxies=tuple(settings.proxies),
            verify_tls=settings.download_verify_tls,
            timeout_s=settings.download_timeout_s,
            ffmpeg_path=ffmpeg,
            threads=settings.max_concurrent_downloads,
            max_duration_s=settings.max_duration_s,
            extractors=tuple(self.sites.ytdlp_extractors),
            max_bytes=max_download_bytes,
            retry_delay_s=settings.download_retry_delay_s,
            cookies=cookies,
            log_level=settings.log_level,
            resolver=resolver,
        )
        self.downloader: YtDlpDownloader | ProcessDownloader
        if settings.download_process:
            self.downloader = ProcessDownloader(downloads, early, self.proxies)
        else:
            self.downloader = downloads.build(proxies=self.proxies)
        self.slideshows = GalleryDlSlideshows(
            proxies=self.proxies,
            verify_tls=settings.download_verify_tls,
            timeout_s=settings.download_timeout_s,
            max_bytes=max_download_bytes,
            cookies=cookies,
        )
        self.metrics = Metrics()
        self.codec = RequestCodec(codecs or {})
        self.redis: Redis | None = None
        self._distributed: Distributed | None = None
        self._worker: TaskiqWorker | None = None
        self.queue: JobQueue
        self.journal: Journal
        limits: RateLimits
        self.single_flight: SingleFlight
        if settings.redis_url:
            # Imported here: an embedded process does not carry redis' and taskiq's memory.
            from bot.distributed import Distributed

            shared = self._distributed = Distributed.connect(
                settings,
                settings.redis_url,
                self.codec,
                per_second=TELEGRAM_PER_SECOND,
                per_group_minute=TELEGRAM_PER_GROUP_MINUTE,
            )
            self.redis = shared.redis
            self.queue = shared.queue
            self.journal = shared.journal
            limits = shared.limits
            self.single_flight = shared.single_flight
            health: FetchHealth = shared.health
            self.failed_links: FailedLinks = shared.failed_links
            self.send_limits: SendLimits = shared.send_limits
            self._local_queue: AsyncioJobQueue | None = None
        else:
            self._local_queue = AsyncioJobQueue(
                workers=settings.workers, maxsize=settings.queue_size
            )
            self.queue = self._local_queue
            self.metrics.watch_queue(self._local_queue.depth)
            self.journal = SqliteJournal(settings.data_dir / "journal.sqlite3", self.codec)
            limits = MemoryRateLimits(
                user_per_minute=settings.rate_limit_user_per_min,
                chat_per_minute=settings.rate_limit_chat_per_min,
            )
            self.single_flight = MemoryFlights()
            health = MemoryFetchHealth()
            self.failed_links = MemoryFailedLinks()
            self.send_limits = MemorySendLimits(
                per_second=TELEGRAM_PER_SECOND, per_group_minute=TELEGRAM_PER_GROUP_MINUTE
            )
        self.watch = BreakageWatch(health, self.metrics)
        self.second_path: CobaltDownloader | None = None
        if settings.cobalt_api_url:
            self.second_path = CobaltDownloader(
                api_url=settings.cobalt_api_url,
                api_key=settings.cobalt_api_key.get_secret_value()
                if settings.cobalt_api_key
                else None,
                proxy=settings.proxies[0] if settings.proxies else None,
                verify_tls=settings.download_verify_tls,
                timeout_s=settings.download_timeout_s,
                max_bytes=max_download_bytes,
                guard=HostGuard(resolver or SystemResolver()),
            )
        self.pipeline = ClipPipeline(
            downloader=self.downloader,
            slideshows=self.slideshows,
            media=FfmpegMedia(ffmpeg),
            fitter=FfmpegFitter(ffmpeg),
            max_downloads=settings.max_concurrent_downloads,
            max_encodes=settings.max_concurrent_encodes,
            slideshow_mode=settings.slideshow_mode,
            metrics=self.metrics,
            watch=self.watch,
            second_path=self.second_path,
        )
        self.chat_settings: ChatSettingsStore | None = None
        self.trending: Trending | None = None
        self.trending_board = TrendingBoard(lambda: self.trending)
        # Every text users see, in their language: read once, handed to whoever speaks.
        self.texts = Catalogues.load()
        self.intake = Intake(
            self.queue,
            self.sites,
            limits,
            journal=self.journal,
            job_key=self.codec.key,
            chat_settings=lambda: self.chat_settings,
            texts=self.texts,
        )
        self.inline = InlineQueries(
            sites=self.sites,
            limits=limits,
            resolver=self.resolver,
            cache=lambda: self._cache,
            variant=lambda: self.pipeline.variant(),
            intake=self.intake,
        )
        self.answers = AnswerWatch(on_answered=self.journal.link_answered)
        # The repliers send each answer under it (bot.retry).
        self.retry = Retrying(
            RetryPolicy(deadline_s=settings.reply_deadline_s),
            random.Random(),
            on_retry=self.metrics.retry,
        )
        self._warm_up: asyncio.Task[None] | None = None
        self._service: Service | None = None
        self._cache: ClipCache | None = None
        self._media_store: MediaStore | None = None
        self._repliers: Mapping[str, Replier] = {}
        self._take_up: asyncio.Task[None] | None = None
        self._hurry = asyncio.Event()
        self._observing: asyncio.Task[None] | None = None
        self._queue_depth = 0

    def service(
        self,
        repliers: Mapping[str, Replier],
        *,
        work_root: Path | None,
        cache: ClipCache | None = None,
        media_store: MediaStore | None = None,
    ) -> Service:
        return Service(
            resolver=self.resolver,
            pipeline=self.pipeline,
            repliers=repliers,
            cache=cache,
            media_store=media_store,
            single_flight=self.single_flight,
            metrics=self.metrics,
            work_root=work_root,
            failed_links=self.failed_links,
            failed_link_cooldown_s=self.settings.failed_link_cooldown_s,
            trending=self.trending_board,
        )

    async def _observe(self) -> None:
        """The shared queue's depth and the workers alive, read for /metrics now and then."""
        assert self._distributed is not None
        queue = self._distributed.queue
        self.metrics.watch_queue(lambda: self._queue_depth)
        while True:
            try:
                self._queue_depth = await queue.depth()
                self.metrics.set_workers_alive(await queue.workers_alive())
            except Exception as err:
                log.debug("could not read the queue's state: %r", err)
            await asyncio.sleep(OBSERVE_EVERY_S)

    async def redis_up(self) -> bool:
        """For /healthz: Redis answers (always true in the embedded mode)."""
        if self.redis is None:
            return True
        try:
            return bool(await self.redis.ping())
        except Exception:
            return False

    def prepare_dirs(self) -> None:
        """DATA_DIR and its job directories, private to this user; leftovers of a crash removed."""
        self.settings.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        shutil.rmtree(self.work_root, ignore_errors=True)
        self.work_root.mkdir(mode=0o700)

    async def start(self, repliers: Mapping[str, Replier]) -> None:
        self.prepare_dirs()
        data_dir = self.settings.data_dir
        max_media_bytes = self.settings.media_cache_mb * 1_000_000
        if self._distributed is not None:
            await self._distributed.broker.startup()
            self._observing = asyncio.create_task(self._observe(), name="observe-queue")
            stores = self._distributed.stores(
                cache_max_age_s=self.settings.cache_max_age_s,
                max_media_bytes=max_media_bytes,
                pseudonym_key=self._pseudonym_key,
            )
            self._cache = stores.cache
            self._media_store = stores.media_store
            await stores.chat_settings.start()
            self.chat_settings = stores.chat_settings
            self.trending = stores.trending
            self.short_links = stores.short_links
        else:
            assert isinstance(self.journal, SqliteJournal)
            self.journal.open()
            self._cache = await SqliteCache.open(
                data_dir / "cache.sqlite3", max_age_s=self.settings.cache_max_age_s
            )
            self._media_store = FileMediaStore(data_dir / "media", max_bytes=max_media_bytes)
            self.chat_settings = await SqliteChatSettings.open(data_dir / "settings.sqlite3")
            self.trending = await SqliteTrending.open(
                data_dir / "trending.sqlite3", key=self._pseudonym_key
            )
            self.short_links = await SqliteShortLinks.open(data_dir / "shortlinks.sqlite3")
        self._repliers = repliers
        if not self.work:
            return
        self._warm_up = asyncio.create_task(self.downloader.warm_up())
        watched = {name: self.answers.watch(replier) for name, replier in repliers.items()}
        self._service = self.service(
            watched,
            work_root=self.work_root,
            cache=self._cache,
            media_store=self._media_store,
        )
        if self._distributed is not None:
            self._worker = self._distributed.worker(
                self.codec, self._run_job, concurrency=self.settings.workers
            )
            self._worker.start()
            return
        assert self._local_queue is not None
        self._local_queue.start(self._run_local)
        self.metrics.set_workers_alive(self.settings.workers)
        unanswered = await self.journal.take_unanswered()
        if unanswered:
            log.info("taking up %d requests left unanswered by the last run", len(unanswered))
        self._take_up = asyncio.create_task(self._take_up_again(unanswered))

    async def _run_local(self, request: VideoRequest) -> None:
        await self._run_job(request, self.codec.key(request.origin))

    async def _run_job(self, request: VideoRequest, key: str | None) -> None:
        """Run a request once: a second delivery of it (a redelivered update, a job taken over
        from a worker that went silent) waits for the first and answers only what is left."""
        if key is None:
            await self._handle(request)
            return
        JOB_KEY.set(job_key_shown(key))
        async with self.single_flight.hold(f"job:{key}"):
            left = await self.journal.remaining(request)
            if left is None:
                log.info("job %s already answered: not run again", key[:12])
                return
            # Embedded, the journal counts runs when it takes requests up at start.
            runs = await self.journal.attempt(left.origin) if self._worker is not None else 1
            if runs > MAX_ATTEMPTS:
                log.warning("a job was taken up %d times: given up", MAX_ATTEMPTS)
                await self._tell([left], Reason.FAILED)
                return
            if runs > 1:
                await self._clear_earlier_status(left)
            await self._handle(left)

    async def _clear_earlier_status(self, request: VideoRequest) -> None:
        """A request run again after its first run died: the status line that run may have
        shown is removed first (the new run shows its own)."""
        replier = self._repliers.get(request.origin.platform)
        if replier is not None:
            await replier.clear_status(request.origin, earlier=True)

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
        await noted(self.journal.answered, request.origin)

    async def _take_up_again(self, unanswered: Iterable[Unanswered]) -> None:
        """Queue the requests a previous run accepted and did not answer."""
        for entry in unanswered:
            if entry.attempts > MAX_ATTEMPTS:
                log.warning("a request was taken up %d times: given up", entry.attempts - 1)
                await self._tell([entry.request], Reason.FAILED)
                continue
            assert self._local_queue is not None
            await self._clear_earlier_status(entry.request)
            await self._local_queue.put(entry.request)

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
        unhandled: list[VideoRequest] = []
        if self._worker is not None:
            # Jobs cut off stay pending on the stream: another worker takes them up.
            await self._worker.stop(self.settings.shutdown_grace_s, cut_short=self._hurry)
        if self._local_queue is not None:
            unhandled = await self._local_queue.stop(
                self.settings.shutdown_grace_s, cut_short=self._hurry
            )
        if unhandled:
            log.info("%d requests not finished within the grace: telling them", len(unhandled))
            await self._tell(unhandled, Reason.RESTARTING)
        downloads_stuck = await self._end_jobs()
        if self._cache is not None:
            await self._cache.close()
        if self.chat_settings is not None:
            await self.chat_settings.close()
        if self.trending is not None:
            await self.trending.close()
        if self.short_links is not None:
            # Lookups from now on (an inline query still answered) go over the network.
            short_links, self.short_links = self.short_links, None
            await short_links.close()
        await self.journal.close()
        if self._warm_up is not None:
            self._warm_up.cancel()
            with contextlib.suppress(BaseException):
                await self._warm_up
        await self.resolver.aclose()
        if self.second_path is not None:
            await self.second_path.aclose()
        if self._observing is not None:
            self._observing.cancel()
            with contextlib.suppress(BaseException):
                await self._observing
        if self._distributed is not None:
            await self._distributed.broker.shutdown()
        if self.redis is not None:
            await self.redis.aclose()
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
                    await asyncio.wait_for(
                        replier.fail(origin, reason, request.manner), NOTICE_TIMEOUT_S
                    )
                except Exception as err:
                    log.warning("could not tell a requester %s: %r", reason.name, err)
                    return
            await self.journal.answered(origin)

        await asyncio.gather(*(tell(request) for request in requests))
