"""yt-dlp behind the `Downloader` port (its error texts are read in bot.ytdlp_errors)."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import copy
import logging
import math
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from yt_dlp.utils import DownloadCancelled, DownloadError

from bot.cookies import load_cookie_jar
from bot.encode_plan import plan_encode
from bot.guarded_ytdlp import GuardedYoutubeDL, RequestRefused
from bot.links import Link, LinkKind
from bot.model import ClipInfo, Download, FailureKind, FetchError, Reason, SlideshowPost
from bot.mp4 import mp4_header
from bot.netguard import HostGuard
from bot.progress import Progress, Reporter, Stage
from bot.proxies import ProxyPool, ProxyRoute, read_timeout_s
from bot.ytdlp_errors import is_transient, kind_for_error, reason_for_error

log = logging.getLogger(__name__)

_ATTEMPTS = 3
# A partial mp4 is probed for its length once this much of it has arrived: enough for the
# header of a faststart file (moov first), which says how long the whole clip is.
_PROBE_AFTER_BYTES = 256 * 1024
# How long a warmed thread waits for the others to be warm too (they take ~0.3 s).
_WARM_UP_WAIT_S = 30.0
# Format selectors a thread keeps, one per upload budget (a few: one per platform).
_SELECTORS_KEPT = 8
# Refusals of the address a request came from: another proxy may get past them.
_REFUSALS = frozenset({FailureKind.CHALLENGE, FailureKind.BLOCKED_IP})


class _YtDlpLog:
    """Routes yt-dlp's output to logging at debug level; errors surface as exceptions."""

    def debug(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def info(self, msg: str) -> None:
        log.debug("yt-dlp: %s", msg)

    def warning(self, msg: str) -> None:
        log.debug("yt-dlp warning: %s", msg)

    def error(self, msg: str) -> None:
        log.debug("yt-dlp error: %s", msg)


class _ThreadJob:
    """The job a worker thread runs now; its reused YoutubeDL's hooks read it."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.probed = False
        # Set when the media turned out too large or too long while it arrived.
        self.over_limit: FetchError | None = None
        # Where the job's media arrival is reported, if anywhere.
        self.progress: Reporter | None = None


class _JobYoutubeDL(GuardedYoutubeDL):
    """A GuardedYoutubeDL without the work of printing nothing: with no --print template
    set, yt-dlp still renders every clip's formats, thumbnails and subtitles tables for
    them, at each stage of each download (~7 ms of a thread's time, and the GIL's, a clip)."""

    def _forceprint(self, key: str, info_dict: dict[str, Any] | None) -> dict[str, Any] | None:
        if self.params["forceprint"].get(key) or self.params["print_to_file"].get(key):
            forced: dict[str, Any] | None = super()._forceprint(key, info_dict)
            return forced
        # The caller reads the copy only for the force* options, which are never set here.
        return info_dict


class YtDlpDownloader:
    """Runs yt-dlp in its own worker threads, sorted for H.264, one job directory per call.

    Each thread keeps one YoutubeDL (they are not thread-safe, and building one costs ~30 ms);
    a job goes through the proxies of `proxies.order()` in turn while TikTok refuses the
    address (challenge page, blocked IP), and `cookies` (a checked cookies.txt) are copied
    into each YoutubeDL's jar, never written back.
    """

    def __init__(
        self,
        *,
        proxies: ProxyPool,
        verify_tls: bool,
        timeout_s: float,
        ffmpeg_path: str,
        threads: int,
        max_duration_s: float,
        extractors: Sequence[str],
        guard: HostGuard,
        max_bytes: int = 500_000_000,
        retry_delay_s: float = 1.0,
        cookies: Path | None = None,
    ) -> None:
        self._guard = guard
        self._proxies = proxies
        self._cookies = load_cookie_jar(cookies) if cookies is not None else None
        self._verify_tls = verify_tls
        self._timeout_s = timeout_s
        # One silent read may take this long; the job is told to stop early enough before its
        # deadline that even a stalled download has ended by then. curl_cffi (the page) counts
        # silence in whole seconds and notices it up to a second late.
        self._socket_timeout_s = read_timeout_s(timeout_s)
        self._wind_down_s = min(timeout_s / 2, math.ceil(self._socket_timeout_s) + 1.0)
        self._max_bytes = max_bytes
        self._retry_delay_s = retry_delay_s
        self._ffmpeg_path = ffmpeg_path
        self._max_duration_s = max_duration_s
        self._extractors = list(extractors)
        self._threads = threads
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="yt-dlp")
        self._warm_barrier: threading.Barrier | None = None
        self._local = threading.local()
        self._instances: list[GuardedYoutubeDL] = []
        self._instances_lock = threading.Lock()
        self._building = threading.Lock()

    def options(self, job: _ThreadJob) -> dict[str, Any]:
        def stop_when_cancelled(_status: Mapping[str, Any]) -> None:
            if job.cancelled.is_set():
                raise DownloadCancelled("job cancelled")

        def stop_over_limits(status: Mapping[str, Any]) -> None:
            self._check_arriving(job, status)

        def report_arrival(status: Mapping[str, Any]) -> None:
            if job.progress is not None:
                job.progress(arrival(status))

        def backoff(n: int) -> float:
            """Between yt-dlp's own retries: here rather than in yt-dlp's own sleep."""
            self._pause(job, n)
            return 0.0

        return {
            "quiet": True,
            "no_warnings": True,
            "noprogress": True,
            "logger": _YtDlpLog(),
            # Direct unless the job's proxy is set on each request (GuardedYoutubeDL.proxy).
            "proxy": "",
            "nocheckcertificate": not self._verify_tls,
            "socket_timeout": self._socket_timeout_s,
            # yt-dlp resumes the media with a Range request after a reset or a cut-off body.
            "retries": 3,
            "fragment_retries": 3,
            "extractor_retries": 1,
            "retry_sleep_functions": {"http": backoff, "fragment": backoff, "extractor": backoff},
            "noplaylist": True,
            "allowed_extractors": self._extractors,
            "format_sort": ["vcodec:h264", "acodec:aac", "ext:mp4:m4a"],
            "ffmpeg_location": self._ffmpeg_path,
            # Names from the network never become paths: the file is always clip.<ext>.
            "outtmpl": {"default": "clip.%(ext)s"},
            "overwrites": True,
            "cachedir": False,
            "progress_hooks": [stop_when_cancelled, stop_over_limits, report_arrival],
            # yt-dlp formats a console progress line for every chunk even with noprogress;
            # the first one only (our own hooks above hear every chunk all the same).
            "progress_delta": 3600,
            # The first read of the media's body; yt-dlp starts at 1 KiB and doubles, ten
            # rounds of its loop (and of the hooks above) before a 1 MB clip reads in large
            # blocks.
            "buffersize": 64 * 1024,
        }

    async def warm_up(self) -> None:
        """Import the extractor and build a YoutubeDL in every worker thread now, off the
        request path (~0.3 s), so a burst's downloads all start at once. Each warm-up task
        waits for the others at a barrier, so each lands on a thread of its own."""
        barrier = threading.Barrier(self._threads)
        self._warm_barrier = barrier

        def load() -> None:
            self._thread_instance()
            with contextlib.suppress(threading.BrokenBarrierError):
                barrier.wait(timeout=_WARM_UP_WAIT_S)

        loop = asyncio.get_running_loop()
        tasks = [loop.run_in_executor(self._executor, load) for _ in range(self._threads)]
        try:
            await asyncio.gather(*tasks)
        finally:
            # Cancelled (or one failed): no thread waits for the others any longer.
            barrier.abort()

    async def fetch(
        self, link: Link, workdir: Path, budget_bytes: int, *, progress: Reporter | None = None
    ) -> Download:
        if link.kind is not LinkKind.VIDEO:
            raise FetchError(Reason.NOT_A_VIDEO, f"{link.kind.value} link")
        cancelled = threading.Event()
        loop = asyncio.get_running_loop()
        # In the job's context: the thread's log lines carry its key (bot.logs.JOB_KEY).
        context = contextvars.copy_context()
        job = loop.run_in_executor(
            self._executor,
            context.run,
            self._download,
            link.url,
            workdir,
            cancelled,
            budget_bytes,
            progress,
        )
        wind_down = loop.call_later(self._timeout_s - self._wind_down_s, cancelled.set)
        try:
            return await asyncio.wait_for(asyncio.shield(job), self._timeout_s)
        except TimeoutError:
            raise FetchError(Reason.TIMED_OUT, f"over {self._timeout_s:.0f} s") from None
        finally:
            wind_down.cancel()
            if not job.done():
                # The thread cannot be killed: ask it to stop at the next chunk and wait for it,
                # so nothing writes into the job directory after the caller removes it.
                cancelled.set()
                await asyncio.shield(asyncio.wait([job]))
                if not job.cancelled():
                    job.exception()

    def close(self) -> None:
        """Wait for running downloads to stop, then close every thread's YoutubeDL."""
        if self._warm_barrier is not None:
            self._warm_barrier.abort()
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._instances_lock:
            for ydl in self._instances:
                ydl.close()
            self._instances.clear()

    def _thread_instance(self) -> tuple[GuardedYoutubeDL, _ThreadJob]:
        job: _ThreadJob | None = getattr(self._local, "job", None)
        ydl: GuardedYoutubeDL | None = getattr(self._local, "ydl", None)
        if job is None or ydl is None:
            # One thread at a time: yt-dlp imports parts of itself on first use (the extractor
            # registry above all), and a thread that does so beside another can find them half
            # built (CI saw a warm-up fail with KeyError: 'TikTokIE').
            with self._building:
                job = _ThreadJob()
                ydl = _JobYoutubeDL(self.options(job), guard=self._guard)
                ydl.get_info_extractor("TikTok")
            if self._cookies is not None:
                # Copies: the thread's jar takes the site's new cookies, the loaded ones stay.
                for cookie in self._cookies:
                    ydl.cookiejar.set_cookie(copy.copy(cookie))
            self._local.job, self._local.ydl = job, ydl
            with self._instances_lock:
                self._instances.append(ydl)
        return ydl, job

    def _download(
        self,
        url: str,
        workdir: Path,
        cancelled: threading.Event,
        budget_bytes: int,
        progress: Reporter | None,
    ) -> Download:
        ydl, job = self._thread_instance()
        job.cancelled, job.progress = cancelled, progress
        ydl.params["paths"] = {"home": str(workdir), "temp": str(workdir)}
        ydl.vet_for(url)
        ways = ProxyRoute(self._proxies)
        attempt = 1
        pause: int | None = None
        while True:
            job.probed, job.over_limit = False, None
            ydl.proxy = ways.proxy
            try:
                if pause is not None:
                    self._pause(job, pause)
                    pause = None
                info = self._attempt(ydl, url, budget_bytes)
                ways.worked()
                break
            except DownloadCancelled:
                raise job.over_limit or FetchError(Reason.TIMED_OUT, "cancelled") from None
            except RequestRefused as err:
                raise FetchError(err.reason, str(err)) from None
            except DownloadError as err:
                text = str(err)
                if "no video formats found" in text.lower() and "[TikTok]" in text:
                    raise SlideshowPost("no formats at all: a photo post without music") from None
                kind = kind_for_error(text)
                if kind in _REFUSALS and ways.proxy is not None:
                    if not ways.refused(text, kind):
                        raise ways.error() from None
                    log.info("%s refused through a proxy, trying the next: %s", url, text)
                elif attempt == _ATTEMPTS or not is_transient(text):
                    raise FetchError(reason_for_error(text), text, kind) from None
                else:
                    log.info("attempt %d of %s failed, trying again: %s", attempt, url, text)
                    pause = attempt - 1
                    attempt += 1
            # Each try starts from an empty job directory: no half file is resumed across
            # tries, which may pick another format.
            for leftover in workdir.iterdir():
                leftover.unlink(missing_ok=True)
        downloads = info.get("requested_downloads") or []
        path = Path(downloads[0]["filepath"]) if downloads else None
        if path is None or not path.is_file() or not path.parent.samefile(workdir):
            raise FetchError(Reason.NOT_A_VIDEO, "no file written")
        return Download(path=path, info=clip_info(info))

    def _pause(self, job: _ThreadJob, retry: int) -> None:
        """Wait before a retry, twice as long as before the one before it; a cancellation
        ends the wait at once."""
        if job.cancelled.wait(self._retry_delay_s * 2**retry):
            raise DownloadCancelled("job cancelled")

    def _attempt(self, ydl: GuardedYoutubeDL, url: str, budget_bytes: int) -> dict[str, Any]:
        """The page, the checks it allows, then the media: one try."""
        # The page first: the clip's length and formats decide whether to fetch media at all.
        info = ydl.extract_info(url, download=False, process=False)
        if not isinstance(info, dict):
            raise FetchError(Reason.NOT_A_VIDEO, "no info")
        self._check_before_download(info, budget_bytes)
        # YoutubeDL builds its selector once from params["format"]: a per-job one goes here,
        # parsed once per thread and budget (a selector keeps no state between clips).
        selectors: dict[str, Any] = self._local.__dict__.setdefault("selectors", {})
        spec = format_for_budget(budget_bytes)
        if (selector := selectors.get(spec)) is None:
            if len(selectors) >= _SELECTORS_KEPT:
                selectors.clear()
            selector = selectors[spec] = ydl.build_format_selector(spec)
        ydl.format_selector = selector
        processed: dict[str, Any] = ydl.process_ie_result(info, download=True)
        return processed

    def _check_arriving(self, job: _ThreadJob, status: Mapping[str, Any]) -> None:
        """Stop media that turns out too large or too long as it arrives, whatever the page
        and the Content-Length said (or left out)."""
        arrived = int(status.get("downloaded_bytes") or 0)
        announced = int(status.get("total_bytes") or 0)
        if max(arrived, announced) > self._max_bytes:
            job.over_limit = FetchError(Reason.TOO_LARGE, f"over {self._max_bytes} bytes")
            raise DownloadCancelled("too large")
        finished = status.get("status") == "finished"
        if job.probed or not (finished or arrived >= _PROBE_AFTER_BYTES):
            return
        job.probed = True
        name = status.get("filename") if finished else status.get("tmpfilename")
        duration = _duration_of(Path(str(name))) if name else None
        if duration is not None and duration > self._max_duration_s:
            job.over_limit = FetchError(Reason.TOO_LONG, f"{duration:.0f} s by the file's header")
            raise DownloadCancelled("too long")

    def _check_before_download(self, info: Mapping[str, Any], budget_bytes: int) -> None:
        """Refuse before any media request what cannot be sent: too long, or no picture at all."""
        formats = info.get("formats") or []
        if formats and all(f.get("vcodec") == "none" for f in formats):
            # Only TikTok's: gallery-dl fetches past the SSRF guard, and other sites' hosts
            # come from the user.
            if info.get("extractor_key") == "TikTok":
                raise SlideshowPost("only audio formats: a photo post")
            raise FetchError(Reason.NOT_A_VIDEO, "only audio formats")
        duration = info.get("duration")
        if duration and duration > self._max_duration_s:
            raise FetchError(Reason.TOO_LONG, f"{duration} s")
        if formats and all(_size(f) > self._max_bytes for f in formats):
            raise FetchError(Reason.TOO_LARGE, f"every format is over {self._max_bytes} bytes")
        if not duration or any(_size(f) <= budget_bytes for f in formats if _size(f)):
            return
        plan = plan_encode(
            duration=float(duration),
            width=int(info.get("width") or 1080),
            height=int(info.get("height") or 1920),
            fps=float(info.get("fps") or 30),
            has_audio=True,
            budget_bytes=budget_bytes,
        )
        if plan is None:
            raise FetchError(Reason.TOO_LARGE, "no watchable encode fits the budget")


def format_for_budget(budget_bytes: int) -> str:
    """The best format (H.264 first, by format_sort) whose known or approximate size fits;
    else the best there is, to be re-encoded."""
    return f"b[filesize<={budget_bytes}]/b[filesize_approx<={budget_bytes}]/b/bv*+ba"


def arrival(status: Mapping[str, Any]) -> Progress:
    """A yt-dlp progress report as DOWNLOADING: the share of the announced (or estimated)
    size that has arrived, None while neither is known."""
    if status.get("status") == "finished":
        return Progress(Stage.DOWNLOADING, 1.0)
    arrived = float(status.get("downloaded_bytes") or 0)
    total = float(status.get("total_bytes") or status.get("total_bytes_estimate") or 0)
    return Progress(Stage.DOWNLOADING, min(1.0, arrived / total) if total > 0 else None)


def _size(fmt: Mapping[str, Any]) -> int:
    return int(fmt.get("filesize") or fmt.get("filesize_approx") or 0)


def _duration_of(path: Path) -> float | None:
    """The length a media file's header states, also of a file still arriving; None when
    the header is not there (yet). An mp4's movie header is read directly (microseconds);
    other files, and an mp4 whose header states no length, are opened with PyAV
    (milliseconds: it reads the streams' first packets too)."""
    try:
        header = mp4_header(path)
    except OSError:
        return None
    if header is not None and (header.duration is not None or not header.found):
        return header.duration
    # Imported here: the download process (bot.download_process) does without PyAV otherwise.
    import av

    try:
        with av.open(str(path)) as container:
            if container.duration:
                return float(container.duration / av.time_base)
    except (av.error.FFmpegError, OSError):
        return None
    return None


def clip_info(info: Mapping[str, Any]) -> ClipInfo:
    """The caption facts from a yt-dlp info dict."""
    clip_id = str(info.get("id") or "")
    author = str(info.get("uploader") or info.get("channel") or "")
    webpage_url = str(info.get("webpage_url") or "")
    if author and clip_id and info.get("extractor_key") == "TikTok":
        webpage_url = f"https://www.tiktok.com/@{author}/video/{clip_id}"
    return ClipInfo(
        clip_id=clip_id,
        author=author,
        nickname=str(info.get("creator") or info.get("channel") or author),
        description=str(info.get("description") or info.get("title") or ""),
        webpage_url=webpage_url,
        music_title=str(info.get("track") or ""),
        music_author=_artists(info),
    )


def _artists(info: Mapping[str, Any]) -> str:
    """Who made the sound: yt-dlp's `artists` list (TikTok's music.authorName, split), or the
    older single `artist`."""
    artists = info.get("artists")
    if isinstance(artists, list) and artists:
        return ", ".join(str(name) for name in artists if name)
    return str(info.get("artist") or "")
