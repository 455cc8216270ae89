"""Where a link becomes a video: the flow of DESIGN.md section 1, top to bottom."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

from bot.cache import CacheKey, DiskMediaCache, SqliteCache
from bot.download import SlideshowPost
from bot.fit import FfmpegFitter
from bot.links import Link, LinkKind
from bot.media import FfmpegMedia, probe
from bot.model import (
    Album,
    CachedMedia,
    ClipInfo,
    FetchError,
    Media,
    Origin,
    Reason,
    StaleHandle,
    VideoRequest,
)
from bot.ports import Downloader, LinkResolver, Replier, SlideshowFetcher
from bot.retry import Unconfirmed
from bot.settings import SlideshowMode

log = logging.getLogger(__name__)

Outcome = Media | Album | Reason

# Telegram shows a chat action for 5 s: renewed before it ends (DESIGN.md section 10).
WORKING_EVERY_S = 4.0


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
        cache: SqliteCache | None = None,
        media_cache: DiskMediaCache | None = None,
        work_root: Path | None = None,
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
        self._cache = cache
        self._media_cache = media_cache
        self._work_root = work_root
        self._flights: dict[tuple[str, str, int], _Flight] = {}
        self._landing: set[asyncio.Task[_Prepared]] = set()

    async def process(self, request: VideoRequest) -> None:
        replier = self._repliers[request.origin.platform]
        # Short links are looked up first: jobs are shared by the clip, whatever link form.
        links = await asyncio.gather(*(self._resolve(link) for link in request.links))
        async with contextlib.AsyncExitStack() as stack:
            platform = request.origin.platform
            jobs = [
                await stack.enter_async_context(self._join(link, platform, request.budget_bytes))
                if isinstance(link, Link)
                else link
                for link in links
            ]
            flights = [job for job in jobs if isinstance(job, _Flight)]
            indicator = asyncio.create_task(self._show_working(replier, request.origin, flights))
            stack.push_async_callback(_cancel_and_wait, [indicator])
            for flight in jobs:
                if isinstance(flight, Reason):
                    await self._answer(replier, request.origin, _Prepared(flight, None))
                    continue
                # Shielded: another requester may share this job; leaving ends only our share.
                prepared = await asyncio.shield(flight.task)
                if isinstance(prepared.outcome, CachedMedia):
                    if await self._resend(replier, request.origin, prepared.outcome, prepared.key):
                        continue
                    prepared = await self._without_cache(flight.link, request, stack)
                elif isinstance(prepared.outcome, Media) and await self._share_upload(
                    flight, replier, request.origin, prepared
                ):
                    continue
                await self._answer(replier, request.origin, prepared)

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

    async def _share_upload(
        self, flight: _Flight, replier: Replier, origin: Origin, prepared: _Prepared
    ) -> bool:
        """The first of a job's requesters uploads; the others resend by the handle that
        upload returned. True when this requester has been answered."""
        async with flight.first_upload:
            if not flight.uploaded:
                kept = await self._answer(replier, origin, prepared)
                flight.uploaded = True
                if kept is not None and kept.handle.startswith("platform:"):
                    flight.handle = kept
                return True
        if flight.handle is None:
            return False
        return await self._resend(replier, origin, flight.handle, prepared.key)

    @contextlib.asynccontextmanager
    async def _join(self, link: Link, platform: str, budget_bytes: int) -> AsyncIterator[_Flight]:
        """Share one job among everyone who asks for the same clip at the same time.

        The job's directory lives until the last of them has been answered.
        """
        key = (platform, link.clip_id or link.url, budget_bytes)
        flight = self._flights.get(key)
        if flight is None:
            directory = self._job_dir()
            workdir = Path(directory.name)
            fetching = asyncio.Event()
            task = asyncio.create_task(
                self._prepare(link, platform, budget_bytes, workdir, fetching=fetching)
            )
            flight = self._flights[key] = _Flight(
                link=link, task=task, directory=directory, fetching=fetching
            )
        flight.users += 1
        try:
            yield flight
        finally:
            flight.users -= 1
            if flight.users == 0:
                del self._flights[key]
                self._land(flight)

    def _job_dir(self) -> tempfile.TemporaryDirectory[str]:
        """A private directory (mode 0700) for one job's files."""
        return tempfile.TemporaryDirectory(
            prefix="reshare-", dir=self._work_root, ignore_cleanup_errors=True
        )

    def _land(self, flight: _Flight) -> None:
        """Remove the job's directory once its task has ended, never before; no await here,
        so a second cancellation of the caller cannot skip the clean-up."""
        if flight.task.done():
            flight.directory.cleanup()
            return
        flight.task.cancel()
        self._landing.add(flight.task)

        def cleanup(task: asyncio.Task[_Prepared]) -> None:
            flight.directory.cleanup()
            self._landing.discard(task)

        flight.task.add_done_callback(cleanup)

    async def drain(self) -> None:
        """Wait until every cancelled job has ended and its directory is gone."""
        while self._landing:
            await asyncio.wait(list(self._landing))

    async def _prepare(
        self,
        link: Link,
        platform: str,
        budget_bytes: int,
        workdir: Path,
        *,
        cached: bool = True,
        fetching: asyncio.Event | None = None,
    ) -> _Prepared:
        key: CacheKey | None = None
        try:
            key = self._cache_key(link, platform, budget_bytes)
            if cached and key is not None and self._cache is not None:
                hit = await self._cache.get(key)
                if hit is not None:
                    return _Prepared(hit, key)
            if fetching is not None:
                fetching.set()
            if link.kind is LinkKind.PHOTO:
                return _Prepared(await self._slideshow(link, budget_bytes, workdir), key)
            try:
                async with self._download_slots:
                    download = await self._downloader.fetch(link, workdir, budget_bytes)
            except SlideshowPost:
                return _Prepared(await self._slideshow(link, budget_bytes, workdir), key)
            media = await self._playable_within(download.path, download.info, budget_bytes, workdir)
            return _Prepared(media, key)
        except FetchError as err:
            log.info("link %s not fetched: %s", link.url, err)
            return _Prepared(err.reason, key)
        except Exception:
            log.exception("link %s failed unexpectedly", link.url)
            return _Prepared(Reason.FAILED, key)

    def _cache_key(self, link: Link, platform: str, budget_bytes: int) -> CacheKey | None:
        """The canonical clip and what changes the bytes sent; None when the id is unknown."""
        if link.clip_id is None:
            return None
        clip_id = link.clip_id if ":" in link.clip_id else f"{link.site}:{link.clip_id}"
        variant = f"budget={budget_bytes};slideshow={self._slideshow_mode.value}"
        return CacheKey(platform=platform, clip_id=clip_id, variant=variant)

    async def _resend(
        self, replier: Replier, origin: Origin, hit: CachedMedia, key: CacheKey | None
    ) -> bool:
        """Send a clip fetched before without fetching it; False when its copy is gone."""
        kind, _, handle = hit.handle.partition(":")
        try:
            if kind == "disk":
                path = None
                if self._media_cache is not None and key is not None:
                    path = await asyncio.to_thread(self._media_cache.path_for, key)
                if path is None:
                    raise StaleHandle("no longer in the media cache")
                await replier.deliver(origin, _media_from(hit, path))
            else:
                await replier.resend(origin, dataclasses.replace(hit, handle=handle))
        except Unconfirmed as err:
            log.warning("resend unconfirmed, not sent again: %s", err)
        except Exception as err:
            # A stale handle, an evicted file, or any refusal: the user still gets the video.
            log.info("cached copy refused (%r): fetching anew", err)
            if self._cache is not None and key is not None:
                await self._cache.forget(key)
            return False
        return True

    async def _without_cache(
        self, link: Link, request: VideoRequest, stack: contextlib.AsyncExitStack
    ) -> _Prepared:
        directory = stack.enter_context(self._job_dir())
        platform = request.origin.platform
        return await self._prepare(
            link, platform, request.budget_bytes, Path(directory), cached=False
        )

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

    async def _answer(
        self, replier: Replier, origin: Origin, prepared: _Prepared
    ) -> CachedMedia | None:
        """Deliver the outcome or say why not; returns what was kept for next time, if anything."""
        outcome = prepared.outcome
        if isinstance(outcome, CachedMedia):
            raise TypeError("cached media is resent, not answered")
        if not isinstance(outcome, Reason):
            try:
                if isinstance(outcome, Album):
                    await replier.deliver_album(origin, outcome)
                    return None
                handle = await replier.deliver(origin, outcome)
                return await self._remember(prepared.key, outcome, handle)
            except FetchError as err:
                outcome = err.reason
            except Unconfirmed as err:
                # It may have arrived: sending it or a reason again could answer twice.
                log.warning("delivery unconfirmed, not sent again: %s", err)
                return None
            except Exception:
                log.exception("delivery failed")
                outcome = Reason.FAILED
        try:
            await replier.fail(origin, outcome)
        except Unconfirmed as err:
            log.warning("reason unconfirmed, not sent again: %s", err)
        except Exception:
            log.exception("could not tell the requester: %s", outcome.name)
        return None

    async def _remember(
        self, key: CacheKey | None, media: Media, handle: str | None
    ) -> CachedMedia | None:
        """Keep what lets the next request skip the download: the platform's own handle, or a
        copy in the media cache for platforms that take only uploads."""
        if handle is not None:
            stored = f"platform:{handle}"
        elif self._media_cache is not None and key is not None:
            kept = await asyncio.to_thread(self._media_cache.store, key, media.path)
            if kept == media.path:
                return None
            stored = f"disk:{kept.name}"
        else:
            return None
        cached = CachedMedia(
            handle=stored,
            width=media.width,
            height=media.height,
            duration=media.duration,
            size=media.size,
            caption=json.dumps(dataclasses.asdict(media.info)),
            stored_at=time.time(),
        )
        if key is not None and self._cache is not None:
            await self._cache.put(key, cached)
        return cached

    async def _show_working(
        self, replier: Replier, origin: Origin, flights: Sequence[_Flight]
    ) -> None:
        """ "Sending video…" from the moment a job has to fetch until every job is done; a
        request answered from the cache shows nothing (and costs no extra API call)."""
        jobs = [flight.task for flight in flights]
        fetching = [asyncio.create_task(flight.fetching.wait()) for flight in flights]
        try:
            while not any(flight.fetching.is_set() for flight in flights):
                pending = [job for job in jobs if not job.done()]
                if not pending:
                    return
                await asyncio.wait([*pending, *fetching], return_when=asyncio.FIRST_COMPLETED)
            while not all(job.done() for job in jobs):
                try:
                    await replier.working(origin)
                except Exception as err:
                    log.debug("working indicator failed: %r", err)
                await asyncio.wait(jobs, timeout=WORKING_EVERY_S)
        finally:
            await _cancel_and_wait(fetching)


@dataclasses.dataclass(slots=True)
class _Flight:
    """One job in progress and how many requests wait for it."""

    link: Link
    task: asyncio.Task[_Prepared]
    directory: tempfile.TemporaryDirectory[str]
    fetching: asyncio.Event
    users: int = 0
    first_upload: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    uploaded: bool = False
    handle: CachedMedia | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Prepared:
    """A job's outcome and the cache key it belongs under (None when the clip id is unknown)."""

    outcome: Outcome | CachedMedia
    key: CacheKey | None


def _media_from(hit: CachedMedia, path: Path) -> Media:
    """A video kept in the media cache, as a Media to upload again."""
    return Media(
        path=path,
        width=hit.width,
        height=hit.height,
        duration=hit.duration,
        size=hit.size,
        thumbnail=None,
        info=hit.info,
    )


async def _cancel_and_wait(tasks: Sequence[asyncio.Task[object]]) -> None:
    for task in tasks:
        task.cancel()
    if tasks:
        await asyncio.wait(tasks)
