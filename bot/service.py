"""Where a link becomes a video: the flow of DESIGN.md section 1, top to bottom.

canonical link -> cache hit? -> resend by the kept handle
               -> else one job per clip (bot.flights here, SingleFlight across processes)
                  -> Pipeline.prepare: fetch, make playable, fit the budget
                  -> Replier.deliver -> the handle kept in the cache -> job files removed
A request for a clip's sound (`Want.AUDIO`) takes the same path under a key of its own:
Pipeline.sound -> Replier.deliver_audio, resent by Replier.resend_audio.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.chat_settings import SlideshowMode
from bot.flights import Flight, Flights
from bot.links import Link, LinkKind
from bot.metrics import Metrics
from bot.model import (
    Album,
    Audio,
    CachedMedia,
    CacheKey,
    ClipInfo,
    FetchError,
    Media,
    Origin,
    PlatformFile,
    Reason,
    StaleHandle,
    StoredFile,
    VideoRequest,
    Want,
)
from bot.ports import (
    ClipCache,
    FailedLinks,
    LinkResolver,
    MediaStore,
    Pipeline,
    Replier,
    SingleFlight,
)
from bot.progress import Progress, Reporter, Stage
from bot.retry import Unconfirmed
from bot.status import StatusLine
from bot.trending import TrendingBoard

log = logging.getLogger(__name__)

Outcome = Media | Album | Audio | Reason

# Telegram shows a chat action for 5 s: renewed before it ends (DESIGN.md section 10).
WORKING_EVERY_S = 4.0
# Failures that depend on the request (its budget, the video or its sound) or on this run, not
# on the clip: not answered from memory.
_NOT_REMEMBERED = frozenset({Reason.TOO_LARGE, Reason.RESTARTING, Reason.NO_SOUND})
# The cache key variant of a clip's sound: the same bytes whatever the budget or the chat.
SOUND_VARIANT = "audio"
# The first requester's upload gives the others its handle; a job keeps its clip's hold across
# processes until then, but not for ever.
FIRST_ANSWER_WAIT_S = 600.0


@dataclasses.dataclass(frozen=True, slots=True)
class Prepared:
    """A job's outcome and the cache key it belongs under (None when the clip id is unknown)."""

    outcome: Outcome | CachedMedia
    key: CacheKey | None


@dataclasses.dataclass(frozen=True, slots=True)
class Fetch:
    """What a job fetches for its requesters: the link, and the form they asked for it in."""

    link: Link
    budget_bytes: int
    slideshow: SlideshowMode | None
    want: Want

    @classmethod
    def of(cls, link: Link, request: VideoRequest) -> Fetch:
        return cls(link, request.budget_bytes, request.manner.slideshow, request.want)


class Service:
    """Answers a request: its links fetched at once (within the pipeline's caps), answered in
    order."""

    def __init__(
        self,
        *,
        resolver: LinkResolver,
        pipeline: Pipeline,
        repliers: Mapping[str, Replier],
        cache: ClipCache | None = None,
        media_store: MediaStore | None = None,
        single_flight: SingleFlight | None = None,
        metrics: Metrics | None = None,
        work_root: Path | None = None,
        failed_links: FailedLinks | None = None,
        failed_link_cooldown_s: float = 0.0,
        trending: TrendingBoard | None = None,
    ) -> None:
        self._resolver = resolver
        self._pipeline = pipeline
        self._repliers = repliers
        self._cache = cache
        self._media_store = media_store
        self._single_flight = single_flight
        self._metrics = metrics or Metrics()
        self._flights: Flights[Prepared] = Flights(work_root)
        self._failed_links = failed_links if failed_link_cooldown_s > 0 else None
        self._cooldown_s = failed_link_cooldown_s
        self._trending = trending

    async def process(self, request: VideoRequest) -> None:
        replier = self._repliers[request.origin.platform]
        # Short links are looked up first: jobs are shared by the clip, whatever link form.
        with self._metrics.stage("resolve"):
            if len(request.links) == 1:
                # Most messages hold one link: no task for it (a cache hit then needs no
                # turn of the event loop before its answer goes out).
                links = [await self._resolve(request.links[0])]
            else:
                links = await asyncio.gather(*(self._resolve(link) for link in request.links))
        async with contextlib.AsyncExitStack() as stack:
            jobs = [await self._start(link, request, stack) for link in links]
            flights = [job for job in jobs if isinstance(job, Flight)]
            if flights:
                status = StatusLine(replier, request.origin, request.manner)
                indicator = asyncio.create_task(
                    self._show_working(replier, request.origin, flights, status)
                )
                # Last out: the status goes once the answer is out, whatever became of it.
                stack.push_async_callback(status.clear)
                stack.push_async_callback(_cancel_and_wait, [indicator])
            for link, job in zip(links, jobs, strict=True):
                # Shielded: another requester may share this job; leaving ends only our share.
                prepared = job if isinstance(job, Prepared) else await asyncio.shield(job.outcome)
                if isinstance(prepared.outcome, CachedMedia) and isinstance(link, Link):
                    if await self._resend(replier, request, prepared.outcome, prepared.key):
                        continue
                    prepared = await self._without_cache(link, request, stack)
                elif (
                    isinstance(job, Flight)
                    and isinstance(prepared.outcome, Media | Audio)
                    and await self._share_upload(job, replier, request, prepared)
                ):
                    continue
                await self._answer(replier, request, prepared)

    async def _start(
        self, link: Link | Reason, request: VideoRequest, stack: contextlib.AsyncExitStack
    ) -> Prepared | Flight[Prepared]:
        """What is known at once (why there is no link, a cache hit, a failure a moment ago),
        else the clip's job, joined for as long as `stack` is open."""
        if not isinstance(link, Link):
            return Prepared(link, None)
        key = self._cache_key(link, request.origin.platform, request)
        known = await self._known(key)
        if known is not None:
            return Prepared(known, key)
        return await stack.enter_async_context(self._join(link, key, request))

    async def _resolve(self, link: Link) -> Link | Reason:
        """The link with its clip id known, or why it has none."""
        try:
            resolved = await self._resolver.resolve(link)
        except FetchError as err:
            log.info("link %s not resolved: %s", link.url, err)
            return err.reason
        except Exception:
            log.exception("link %s failed unexpectedly", link.url)
            return Reason.FAILED
        if resolved.kind is LinkKind.NOT_VIDEO:
            # Known without downloading: no "sending video…" for a profile or a tag.
            return Reason.NOT_A_VIDEO
        return resolved

    def _join(
        self, link: Link, key: CacheKey | None, request: VideoRequest
    ) -> contextlib.AbstractAsyncContextManager[Flight[Prepared]]:
        """Everyone asking for the same clip in the same form at the same moment shares one
        job (`key` is the clip's cache key, None when its id is unknown)."""
        fetch = Fetch.of(link, request)

        async def job(flight: Flight[Prepared]) -> None:
            await self._job(fetch, key, flight)

        variant = self._pipeline.variant(fetch.slideshow)
        return self._flights.join(
            key or (request.origin.platform, link.url, fetch.budget_bytes, variant, fetch.want),
            job,
            self._metrics.joined,
        )

    async def _job(self, fetch: Fetch, key: CacheKey | None, flight: Flight[Prepared]) -> None:
        """Always publishes an outcome: a job task that ends without one cancels its outcome,
        and its requesters would take that for their own cancellation."""
        try:
            await self._fetch_once(fetch, key, flight)
        except Exception:
            # E.g. a single-flight that is down: the link is told why, the worker goes on.
            log.exception("job for %s failed", fetch.link.url)
            flight.publish(Prepared(Reason.FAILED, key))

    async def _fetch_once(
        self, fetch: Fetch, key: CacheKey | None, flight: Flight[Prepared]
    ) -> None:
        """The clip fetched under the clip's hold across processes, which is kept until the
        first requester's upload has left its handle in the cache (the requester found no
        cache entry before it started the job)."""
        async with self._clip_hold(key):
            # Another process may have fetched it (or failed) while we waited for the hold.
            known = await self._known(key) if self._single_flight is not None else None
            if known is not None:
                flight.publish(Prepared(known, key))
                return
            flight.fetching.set()
            outcome = await self._prepare(fetch, flight.workdir, flight.progress.report)
            if isinstance(outcome, Reason):
                await self._remember_failure(key, outcome)
            flight.publish(Prepared(outcome, key))
            if isinstance(outcome, Media | Audio):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(flight.first_answered.wait(), FIRST_ANSWER_WAIT_S)

    async def _known(self, key: CacheKey | None) -> CachedMedia | Reason | None:
        """A cache hit, or the reason the clip failed a moment ago."""
        hit = await self._cached(key)
        if hit is not None or key is None or self._failed_links is None:
            return hit
        try:
            return await self._failed_links.recall(key.clip_id)
        except Exception as err:
            log.warning("could not look up recent failures: %r", err)
            return None

    async def _remember_failure(self, key: CacheKey | None, reason: Reason) -> None:
        if key is None or self._failed_links is None or reason in _NOT_REMEMBERED:
            return
        try:
            await self._failed_links.remember(key.clip_id, reason, self._cooldown_s)
        except Exception as err:
            log.warning("could not remember a failure: %r", err)

    @contextlib.asynccontextmanager
    async def _clip_hold(self, key: CacheKey | None) -> AsyncIterator[None]:
        """The clip's hold across processes; without it when it cannot be had (Redis down):
        a second download is better than no answer."""
        async with contextlib.AsyncExitStack() as stack:
            if self._single_flight is not None and key is not None:
                try:
                    await stack.enter_async_context(self._single_flight.hold(key.text()))
                except Exception as err:
                    log.warning("single-flight unreachable (%r): fetching without it", err)
            yield

    async def _cached(self, key: CacheKey | None) -> CachedMedia | None:
        if key is None or self._cache is None:
            return None
        try:
            hit = await self._cache.get(key)
        except Exception:
            # A cache that is down costs a download, not the answer.
            log.exception("cache lookup failed")
            return None
        if hit is not None:
            self._metrics.cache_hit(key.platform)
        return hit

    async def _prepare(
        self, fetch: Fetch, workdir: Path, progress: Reporter | None = None
    ) -> Outcome:
        link, budget_bytes = fetch.link, fetch.budget_bytes
        try:
            if fetch.want is Want.AUDIO:
                return await self._pipeline.sound(link, budget_bytes, workdir, progress=progress)
            return await self._pipeline.prepare(
                link, budget_bytes, workdir, fetch.slideshow, progress=progress
            )
        except FetchError as err:
            log.info("link %s not fetched: %s", link.url, err)
            self._metrics.failure(err.reason)
            return err.reason
        except Exception:
            log.exception("link %s failed unexpectedly", link.url)
            self._metrics.failure(Reason.FAILED)
            return Reason.FAILED

    def _cache_key(self, link: Link, platform: str, request: VideoRequest) -> CacheKey | None:
        if request.want is Want.AUDIO:
            key = clip_key(link, platform, 0, "")
            return dataclasses.replace(key, variant=SOUND_VARIANT) if key is not None else None
        variant = self._pipeline.variant(request.manner.slideshow)
        return clip_key(link, platform, request.budget_bytes, variant)

    async def _share_upload(
        self,
        flight: Flight[Prepared],
        replier: Replier,
        request: VideoRequest,
        prepared: Prepared,
    ) -> bool:
        """The first of a job's requesters uploads; the others resend by the handle that
        upload returned. True when this requester has been answered."""
        async with flight.first_answer:
            if not flight.first_answered.is_set():
                try:
                    kept = await self._answer(replier, request, prepared)
                finally:
                    flight.first_answered.set()
                if kept is not None and isinstance(kept.handle, PlatformFile):
                    flight.handle = kept
                return True
        handle = flight.handle
        if handle is None:
            return False
        return await self._resend(replier, request, handle, prepared.key)

    async def _resend(
        self, replier: Replier, request: VideoRequest, hit: CachedMedia, key: CacheKey | None
    ) -> bool:
        """Send a clip fetched before without fetching it; False when its copy is gone."""
        origin = request.origin
        try:
            if isinstance(hit.handle, StoredFile):
                await self._upload_stored(replier, request, hit, hit.handle)
            elif request.want is Want.AUDIO:
                await replier.resend_audio(origin, hit, request.manner)
            else:
                await replier.resend(origin, hit, request.manner)
            self._metrics.request(origin.platform, "cached")
        except Unconfirmed as err:
            log.warning("resend unconfirmed, not sent again: %s", err)
        except Exception as err:
            # A stale handle, an evicted file, or any refusal: the user still gets the video.
            log.info("cached copy refused (%r): fetching anew", err)
            if self._cache is not None and key is not None:
                try:
                    await self._cache.forget(key)
                except Exception:
                    log.exception("could not drop the refused cache entry")
            return False
        else:
            # Outside the try: counting it must never pass the answer off as a refused copy.
            await self._reshared(request, key, hit.info)
        return True

    async def _upload_stored(
        self, replier: Replier, request: VideoRequest, hit: CachedMedia, stored: StoredFile
    ) -> None:
        """Upload a copy from the media store (platforms without reusable handles)."""
        if self._media_store is None:
            raise StaleHandle("no media store")
        with self._flights.job_dir() as directory:
            path = await self._media_store.open(stored, Path(directory))
            if path is None:
                raise StaleHandle("no longer in the media store")
            with self._metrics.stage("upload"):
                if request.want is Want.AUDIO:
                    sound = Audio(path, hit.duration, hit.size, hit.info)
                    await replier.deliver_audio(request.origin, sound, request.manner)
                else:
                    await replier.deliver(request.origin, _media_from(hit, path), request.manner)

    async def _without_cache(
        self, link: Link, request: VideoRequest, stack: contextlib.AsyncExitStack
    ) -> Prepared:
        """The clip fetched for this requester alone, its cached copy having been refused."""
        directory = Path(stack.enter_context(self._flights.job_dir()))
        key = self._cache_key(link, request.origin.platform, request)
        outcome = await self._prepare(Fetch.of(link, request), directory)
        return Prepared(outcome, key)

    async def _answer(
        self, replier: Replier, request: VideoRequest, prepared: Prepared
    ) -> CachedMedia | None:
        """Deliver the outcome or say why not; returns what was kept for next time, if anything."""
        origin, manner = request.origin, request.manner
        outcome = prepared.outcome
        if isinstance(outcome, CachedMedia):
            raise TypeError("cached media is resent, not answered")
        if not isinstance(outcome, Reason):
            try:
                with self._metrics.stage("upload"):
                    file_id: str | None = None
                    if isinstance(outcome, Album):
                        await replier.deliver_album(origin, outcome, manner)
                        self._metrics.request(origin.platform, "album")
                    elif isinstance(outcome, Audio):
                        file_id = await replier.deliver_audio(origin, outcome, manner)
                        self._metrics.request(origin.platform, "audio")
                    else:
                        file_id = await replier.deliver(origin, outcome, manner)
                        self._metrics.request(origin.platform, "video")
            except FetchError as err:
                outcome = err.reason
            except Unconfirmed as err:
                # It may have arrived: sending it or a reason again could answer twice.
                log.warning("delivery unconfirmed, not sent again: %s", err)
                return None
            except Exception:
                log.exception("delivery failed")
                outcome = Reason.FAILED
            else:
                # Delivered: keeping it for next time may fail, the answer stands (an album is
                # not kept).
                kept = (
                    None
                    if isinstance(outcome, Album)
                    else await self._remember(prepared.key, outcome, file_id)
                )
                # Counted once kept: the next request (an inline query) finds it cached.
                await self._reshared(request, prepared.key, outcome.info)
                return kept
        try:
            await replier.fail(origin, outcome, manner)
            self._metrics.request(origin.platform, outcome)
        except Unconfirmed as err:
            log.warning("reason unconfirmed, not sent again: %s", err)
        except Exception:
            log.exception("could not tell the requester: %s", outcome.name)
        return None

    async def _reshared(self, request: VideoRequest, key: CacheKey | None, info: ClipInfo) -> None:
        """Count a clip sent into a chat for its /top, unless the chat turned that off (the
        sound of a clip is no reshare of it)."""
        sender = request.sender
        if (
            self._trending is None
            or sender is None
            or not request.manner.trending
            or request.want is not Want.VIDEO
            or key is None
        ):
            return
        await self._trending.count(request.origin.platform, sender, key.clip_id, info.webpage_url)

    async def _remember(
        self, key: CacheKey | None, media: Media | Audio, file_id: str | None
    ) -> CachedMedia | None:
        """Keep what lets the next request skip the download: the platform's own handle, or a
        copy in the media store for platforms that take only uploads."""
        handle: PlatformFile | StoredFile | None = None
        if file_id is not None:
            handle = PlatformFile(file_id)
        elif self._media_store is not None and key is not None:
            try:
                handle = await self._media_store.keep(key, media.path)
            except Exception:
                log.exception("could not keep a copy in the media store")
        if handle is None:
            return None
        cached = CachedMedia(
            handle=handle,
            width=media.width if isinstance(media, Media) else 0,
            height=media.height if isinstance(media, Media) else 0,
            duration=media.duration,
            size=media.size,
            caption=json.dumps(dataclasses.asdict(media.info)),
            stored_at=time.time(),
        )
        if key is not None and self._cache is not None:
            try:
                await self._cache.put(key, cached)
            except Exception:
                # The handle still serves the other requesters of this job.
                log.exception("could not store the clip in the cache")
        return cached

    async def drain(self) -> None:
        """Wait until every cancelled job has ended and its directory is gone."""
        await self._flights.drain()

    async def _show_working(
        self,
        replier: Replier,
        origin: Origin,
        flights: Sequence[Flight[Prepared]],
        status: StatusLine,
    ) -> None:
        """ "Sending video…" from the moment a job has to fetch until every job is done, and
        the `status` of a long one (its progress, then "Uploading…"); a request answered from
        the cache shows nothing (and costs no extra API call)."""
        jobs: list[asyncio.Future[Any]] = [flight.outcome for flight in flights]
        fetching: list[asyncio.Future[Any]] = [
            asyncio.create_task(flight.fetching.wait()) for flight in flights
        ]
        try:
            while not any(flight.fetching.is_set() for flight in flights):
                pending = [job for job in jobs if not job.done()]
                if not pending:
                    return
                await asyncio.wait([*pending, *fetching], return_when=asyncio.FIRST_COMPLETED)
            loop = asyncio.get_running_loop()
            working_at = loop.time()
            while not all(job.done() for job in jobs):
                if loop.time() >= working_at:
                    try:
                        await replier.working(origin)
                    except Exception as err:
                        log.debug("working indicator failed: %r", err)
                    working_at = loop.time() + WORKING_EVERY_S
                await status.show(_progress_of(flights))
                wake = min(working_at - loop.time(), status.next_look_in())
                await asyncio.wait(jobs, timeout=max(0.0, wake))
            if any(_uploads(flight) for flight in flights):
                await asyncio.sleep(status.due_in())
                await status.show(Progress(Stage.UPLOADING))
        finally:
            await _cancel_and_wait(fetching)


def _progress_of(flights: Sequence[Flight[Prepared]]) -> Progress | None:
    """How far the first job not yet done has come; None while it waits to fetch."""
    for flight in flights:
        if flight.outcome.done():
            continue
        if not flight.fetching.is_set():
            return None
        return flight.progress.latest or Progress(Stage.DOWNLOADING)
    return None


def _uploads(flight: Flight[Prepared]) -> bool:
    """Whether the job's outcome is sent as an upload (not a reason, not a resend)."""
    job = flight.outcome
    if not job.done() or job.cancelled() or job.exception() is not None:
        return False
    return isinstance(job.result().outcome, Media | Album | Audio)


def clip_key(link: Link, platform: str, budget_bytes: int, variant: str) -> CacheKey | None:
    """The canonical clip and what changes the bytes sent (the budget, the pipeline's
    `variant`); None when the clip id is unknown (a short link not resolved)."""
    if link.clip_id is None:
        return None
    clip_id = link.clip_id if ":" in link.clip_id else f"{link.site}:{link.clip_id}"
    return CacheKey(platform=platform, clip_id=clip_id, variant=f"budget={budget_bytes};{variant}")


def _media_from(hit: CachedMedia, path: Path) -> Media:
    """A video kept in the media store, as a Media to upload again."""
    return Media(
        path=path,
        width=hit.width,
        height=hit.height,
        duration=hit.duration,
        size=hit.size,
        thumbnail=None,
        info=hit.info,
    )


async def _cancel_and_wait(tasks: Sequence[asyncio.Future[Any]]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)
