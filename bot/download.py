"""yt-dlp behind the `Downloader` port, and the one place its errors become reasons."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from yt_dlp.utils import DownloadCancelled, DownloadError

from bot.fit import plan_encode
from bot.links import Link, LinkKind
from bot.model import ClipInfo, Download, FetchError, Reason
from bot.netguard import GuardedYoutubeDL, HostGuard, RequestRefused

log = logging.getLogger(__name__)

# The texts yt-dlp raises (DESIGN.md section 5), first match wins.
_ERROR_TEXTS: tuple[tuple[str, Reason], ...] = (
    ("do not have permission to view this post", Reason.PRIVATE),
    # gallery-dl names TikTok's status codes.
    ("error code 10216", Reason.PRIVATE),
    ("error code 10222", Reason.PRIVATE),
    ("error code 10204", Reason.REMOVED),
    ("error code 10231", Reason.REGION_LOCKED),
    ("ip address is blocked from accessing this post", Reason.REMOVED),
    ("status code 10231", Reason.REGION_LOCKED),
    ("not available in your", Reason.REGION_LOCKED),
    ("video not available, status code", Reason.REMOVED),
    ("requiring login", Reason.LOGIN_REQUIRED),
    ("log in for access", Reason.LOGIN_REQUIRED),
    ("login required", Reason.LOGIN_REQUIRED),
    ("no video formats found", Reason.NOT_A_VIDEO),
    ("unsupported url", Reason.NOT_A_VIDEO),
    ("no suitable extractor", Reason.NOT_A_VIDEO),
    ("timed out", Reason.TIMED_OUT),
    ("timeout", Reason.TIMED_OUT),
    ("http error 404", Reason.REMOVED),
    ("http error 403", Reason.BLOCKED),
    ("http error 429", Reason.BLOCKED),
    ("unable to extract universal data", Reason.BLOCKED),
    ("challenge", Reason.BLOCKED),
)


def reason_for_error(text: str) -> Reason:
    """Map a yt-dlp error message to the reason a user is shown."""
    lowered = text.lower()
    for needle, reason in _ERROR_TEXTS:
        if needle in lowered:
            return reason
    return Reason.FAILED


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


class YtDlpDownloader:
    """Runs yt-dlp in its own worker threads, sorted for H.264, one job directory per call.

    Each thread keeps one YoutubeDL (they are not thread-safe, and building one costs ~30 ms).
    """

    def __init__(
        self,
        *,
        proxy: str | None,
        verify_tls: bool,
        timeout_s: float,
        ffmpeg_path: str,
        threads: int,
        max_duration_s: float,
        extractors: Sequence[str],
        guard: HostGuard,
    ) -> None:
        self._guard = guard
        self._proxy = proxy
        self._verify_tls = verify_tls
        self._timeout_s = timeout_s
        self._ffmpeg_path = ffmpeg_path
        self._max_duration_s = max_duration_s
        self._extractors = list(extractors)
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="yt-dlp")
        self._local = threading.local()
        self._instances: list[GuardedYoutubeDL] = []
        self._instances_lock = threading.Lock()

    def options(self, job: _ThreadJob) -> dict[str, Any]:
        def stop_when_cancelled(_status: Mapping[str, Any]) -> None:
            if job.cancelled.is_set():
                raise DownloadCancelled("job cancelled")

        return {
            "quiet": True,
            "no_warnings": True,
            "noprogress": True,
            "logger": _YtDlpLog(),
            "proxy": self._proxy or "",
            "nocheckcertificate": not self._verify_tls,
            "socket_timeout": min(self._timeout_s, 30.0),
            "retries": 3,
            "fragment_retries": 3,
            "extractor_retries": 1,
            "noplaylist": True,
            "allowed_extractors": self._extractors,
            "format_sort": ["vcodec:h264", "acodec:aac", "ext:mp4:m4a"],
            "ffmpeg_location": self._ffmpeg_path,
            # Names from the network never become paths: the file is always clip.<ext>.
            "outtmpl": {"default": "clip.%(ext)s"},
            "overwrites": True,
            "cachedir": False,
            "progress_hooks": [stop_when_cancelled],
        }

    async def warm_up(self) -> None:
        """Import the extractor and build a YoutubeDL now, off the request path (~0.3 s)."""

        def load() -> None:
            ydl, _ = self._thread_instance()
            ydl.get_info_extractor("TikTok")

        await asyncio.get_running_loop().run_in_executor(self._executor, load)

    async def fetch(self, link: Link, workdir: Path, budget_bytes: int) -> Download:
        if link.kind is not LinkKind.VIDEO:
            raise FetchError(Reason.NOT_A_VIDEO, f"{link.kind.value} link")
        cancelled = threading.Event()
        job = asyncio.get_running_loop().run_in_executor(
            self._executor, self._download, link.url, workdir, cancelled, budget_bytes
        )
        try:
            return await asyncio.wait_for(asyncio.shield(job), self._timeout_s)
        except TimeoutError:
            raise FetchError(Reason.TIMED_OUT, f"over {self._timeout_s:.0f} s") from None
        finally:
            if not job.done():
                # The thread cannot be killed: ask it to stop at the next chunk and wait for it,
                # so nothing writes into the job directory after the caller removes it.
                cancelled.set()
                await asyncio.shield(asyncio.wait([job]))
                if not job.cancelled():
                    job.exception()

    def close(self) -> None:
        """Wait for running downloads to stop, then close every thread's YoutubeDL."""
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._instances_lock:
            for ydl in self._instances:
                ydl.close()
            self._instances.clear()

    def _thread_instance(self) -> tuple[GuardedYoutubeDL, _ThreadJob]:
        job: _ThreadJob | None = getattr(self._local, "job", None)
        ydl: GuardedYoutubeDL | None = getattr(self._local, "ydl", None)
        if job is None or ydl is None:
            job = _ThreadJob()
            ydl = GuardedYoutubeDL(self.options(job), guard=self._guard)
            self._local.job, self._local.ydl = job, ydl
            with self._instances_lock:
                self._instances.append(ydl)
        return ydl, job

    def _download(
        self, url: str, workdir: Path, cancelled: threading.Event, budget_bytes: int
    ) -> Download:
        ydl, job = self._thread_instance()
        job.cancelled = cancelled
        ydl.params["paths"] = {"home": str(workdir), "temp": str(workdir)}
        ydl.vet_for(url)
        try:
            # The page first: the clip's length and formats decide whether to fetch media at all.
            info = ydl.extract_info(url, download=False, process=False)
            if not isinstance(info, dict):
                raise FetchError(Reason.NOT_A_VIDEO, "no info")
            self._check_before_download(info, budget_bytes)
            # YoutubeDL builds its selector once from params["format"]: a per-job one goes here.
            ydl.format_selector = ydl.build_format_selector(format_for_budget(budget_bytes))
            info = ydl.process_ie_result(info, download=True)
        except DownloadCancelled:
            raise FetchError(Reason.TIMED_OUT, "cancelled") from None
        except RequestRefused as err:
            raise FetchError(err.reason, str(err)) from None
        except DownloadError as err:
            if "no video formats found" in str(err).lower() and "[TikTok]" in str(err):
                raise SlideshowPost("no formats at all: a photo post without music") from None
            raise FetchError(reason_for_error(str(err)), str(err)) from None
        downloads = info.get("requested_downloads") or []
        path = Path(downloads[0]["filepath"]) if downloads else None
        if path is None or not path.is_file() or path.parent.resolve() != workdir.resolve():
            raise FetchError(Reason.NOT_A_VIDEO, "no file written")
        return Download(path=path, info=clip_info(info))

    def _check_before_download(self, info: Mapping[str, Any], budget_bytes: int) -> None:
        """Refuse before any media request what cannot be sent: too long, or no picture at all."""
        formats = info.get("formats") or []
        if formats and all(f.get("vcodec") == "none" for f in formats):
            raise SlideshowPost("only audio formats: a photo post")
        duration = info.get("duration")
        if duration and duration > self._max_duration_s:
            raise FetchError(Reason.TOO_LONG, f"{duration} s")
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


def _size(fmt: Mapping[str, Any]) -> int:
    return int(fmt.get("filesize") or fmt.get("filesize_approx") or 0)


class SlideshowPost(FetchError):
    """The post holds photos and music, not a video: another tool fetches it."""

    def __init__(self, detail: str) -> None:
        super().__init__(Reason.NOT_A_VIDEO, detail)


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
    )
