"""yt-dlp in a process of its own, beside the bot's (DOWNLOAD_PROCESS, true by default).

In one process the event loop, the probe and the yt-dlp threads take turns on one GIL: a burst
of new clips keeps about one of the machine's cores busy, whatever the number of download
threads. Here a child process runs the same `YtDlpDownloader`, so yt-dlp's Python runs on
another core (bench.boundary: the burst of 20 in about 0.75x the time). The bot's own process
then imports no yt-dlp, so the two hold little more memory than the bot alone with threads
(README, Performance). `python -m bot` starts the child before its own imports (`EarlyChild`).

The two processes speak in pickled tuples over the child's stdin and stdout; both ends are
this program. The child's stdout is kept for the frames only: anything printed goes to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import gc
import itertools
import logging
import os
import pickle
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn

from bot.links import Link
from bot.logs import JOB_KEY, configure_logging, url_passwords
from bot.model import Download, FailureKind, FetchError, Reason, SlideshowPost
from bot.netguard import HostGuard, Resolver, SystemResolver
from bot.progress import Progress, Reporter
from bot.proxies import ProxyPool

if TYPE_CHECKING:
    from bot.download import YtDlpDownloader

log = logging.getLogger(__name__)

# How long the child may take to start (import yt-dlp, build its YoutubeDLs), and to answer a
# cancellation (its thread stops at the next chunk or read timeout) before it is killed.
START_S = 60.0
ANSWER_S = 15.0
STOP_S = 10.0
# How long cancelled jobs may take to end: the child's, told to end, and the bot's own at
# shutdown (bot.engine), after the grace. Procfile hosts kill 30 s after SIGTERM.
JOB_END_TIMEOUT_S = 1.5
# What a fetch the child could not answer fails with.
ENDED = "the download process ended"


@dataclasses.dataclass(frozen=True, slots=True)
class DownloaderConfig:
    """What the child needs to build its `YtDlpDownloader`; no tokens, no settings object."""

    proxies: tuple[str, ...]
    verify_tls: bool
    timeout_s: float
    ffmpeg_path: str
    threads: int
    max_duration_s: float
    extractors: tuple[str, ...]
    max_bytes: int
    retry_delay_s: float
    cookies: Path | None
    log_level: str = "INFO"
    # The SSRF guard's DNS boundary (bot.netguard); None: the system's. Pickled to the child.
    resolver: Resolver | None = None

    def build(self, *, proxies: ProxyPool | None = None) -> YtDlpDownloader:
        """The downloader in this process; by default with proxies of its own."""
        # Imported here: with DOWNLOAD_PROCESS=true the bot's own process carries no yt-dlp.
        from bot.download import YtDlpDownloader

        return YtDlpDownloader(
            proxies=proxies if proxies is not None else ProxyPool(self.proxies),
            verify_tls=self.verify_tls,
            timeout_s=self.timeout_s,
            ffmpeg_path=self.ffmpeg_path,
            threads=self.threads,
            max_duration_s=self.max_duration_s,
            extractors=self.extractors,
            guard=HostGuard(self.resolver or SystemResolver()),
            max_bytes=self.max_bytes,
            retry_delay_s=self.retry_delay_s,
            cookies=self.cookies,
        )


# The bot's secrets stay in the bot: the child fetches public pages and needs none of them.
_SECRET = re.compile(r"TOKEN|SECRET|PASSWORD|API_KEY|REDIS_URL", re.IGNORECASE)


def child_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The bot's environment without its secrets, with one malloc arena (as the bot has, see
    bot.app.tune_malloc) unless MALLOC_ARENA_MAX says otherwise."""
    env = {name: value for name, value in environ.items() if not _SECRET.search(name)}
    env.setdefault("MALLOC_ARENA_MAX", "1")
    return env


def spawn() -> subprocess.Popen[bytes]:
    """A download process, started: it imports yt-dlp, then waits for its `DownloaderConfig`."""
    return subprocess.Popen(
        [sys.executable, "-m", "bot.download_process"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=child_environment(os.environ),
    )


def _write_frame(stream: IO[bytes], lock: threading.Lock, frame: object) -> None:
    """One pickled frame, whole: several threads send on the same pipe."""
    data = pickle.dumps(frame, protocol=pickle.HIGHEST_PROTOCOL)
    with lock:
        stream.write(data)
        stream.flush()


def _reap(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    """Wait for `process` to end, killing it once `timeout_s` has passed."""
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _leave() -> NoReturn:
    """End the child now, its log written out: a thread blocked in a read (a yt-dlp socket, the
    frames' stdin) cannot be waited for, and the interpreter's shutdown would wait for it."""
    logging.shutdown()
    sys.stderr.flush()
    os._exit(0)


class EarlyChild:
    """A download process started before the bot's own imports (`python -m bot`), so that the
    two start side by side: the first `ProcessDownloader` to start takes it, and one nobody took
    is ended by `close`."""

    def __init__(self) -> None:
        self._process: subprocess.Popen[bytes] | None = spawn()

    @property
    def pid(self) -> int | None:
        """The process id until a downloader takes the process."""
        return self._process.pid if self._process is not None else None

    def take(self) -> subprocess.Popen[bytes] | None:
        """The process, once: the taker owns it from then on."""
        process, self._process = self._process, None
        return process

    def close(self) -> None:
        process = self.take()
        if process is None:
            return
        # Its end of input before any config: it exits without a word.
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        _reap(process, STOP_S)


def _failure(job: int, err: BaseException) -> tuple[Any, ...]:
    if isinstance(err, FetchError):
        kind = err.kind.name if err.kind is not None else None
        return ("failed", job, err.reason.name, err.detail, kind, isinstance(err, SlideshowPost))
    return ("failed", job, Reason.FAILED.name, type(err).__name__, None, False)


def _error(frame: tuple[Any, ...]) -> FetchError:
    _, _, reason, detail, kind, slideshow = frame
    if slideshow:
        return SlideshowPost(detail)
    return FetchError(Reason[reason], detail, FailureKind[kind] if kind is not None else None)


def _retrieved(answer: asyncio.Future[Download]) -> None:
    if not answer.cancelled():
        answer.exception()


@dataclasses.dataclass(slots=True)
class _Pending:
    answer: asyncio.Future[Download]
    progress: Reporter | None


class _Child:
    """One running child: its frames in a reader thread, its answers as futures on the loop."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        loop: asyncio.AbstractEventLoop,
        proxies: ProxyPool | None = None,
    ) -> None:
        self._process = process
        self._loop = loop
        self._proxies = proxies
        self._pending: dict[int, _Pending] = {}
        self._jobs = itertools.count()
        self._write_lock = threading.Lock()
        self.ready: asyncio.Future[None] = loop.create_future()
        self.ended = False
        self._reader = threading.Thread(target=self._read, name="yt-dlp-process", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._process.pid

    @classmethod
    async def start(
        cls,
        config: DownloaderConfig,
        process: subprocess.Popen[bytes] | None = None,
        proxies: ProxyPool | None = None,
    ) -> _Child:
        """The child of `process` (an `EarlyChild`'s) if it still runs, else of a new one."""
        if process is None or process.poll() is not None:
            process = await asyncio.to_thread(spawn)
        child = cls(process, asyncio.get_running_loop(), proxies)
        try:
            child._send(config)
            await asyncio.wait_for(asyncio.shield(child.ready), START_S)
        except BaseException:
            await asyncio.to_thread(child.stop)
            raise
        return child

    def _send(self, frame: object) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        try:
            _write_frame(stdin, self._write_lock, frame)
        except (OSError, ValueError):
            raise FetchError(Reason.FAILED, "the download process is gone") from None

    def _read(self) -> None:
        stdout = self._process.stdout
        assert stdout is not None
        try:
            while True:
                frame = pickle.load(stdout)  # noqa: S301 - our own child, a private pipe
                self._call(self._on_frame, frame)
        except (EOFError, OSError, ValueError, pickle.UnpicklingError):
            pass
        finally:
            self._call(self._on_end)

    def _call(self, callback: Any, *args: Any) -> None:
        # The loop may be closed already when the child ends after the bot's last await.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(callback, *args)

    def _on_frame(self, frame: tuple[Any, ...]) -> None:
        kind = frame[0]
        if kind == "ready":
            if not self.ready.done():
                self.ready.set_result(None)
            return
        if kind == "proxy":
            # A job in the child got through a proxy, or was refused through it.
            if self._proxies is not None:
                _, proxy, worked = frame
                (self._proxies.worked if worked else self._proxies.failed)(proxy)
            return
        pending = self._pending.get(frame[1])
        if pending is None:
            return
        if kind == "progress":
            if pending.progress is not None:
                pending.progress(frame[2])
        elif not pending.answer.done():
            if kind == "done":
                pending.answer.set_result(frame[2])
            else:
                pending.answer.set_exception(_error(frame))

    def _on_end(self) -> None:
        self.ended = True
        gone = FetchError(Reason.FAILED, ENDED)
        if not self.ready.done():
            self.ready.set_exception(gone)
        for pending in self._pending.values():
            if not pending.answer.done():
                pending.answer.set_exception(gone)

    async def fetch(
        self, link: Link, workdir: Path, budget_bytes: int, progress: Reporter | None, wait_s: float
    ) -> Download:
        if self.ended:
            raise FetchError(Reason.FAILED, ENDED)
        job = next(self._jobs)
        answer: asyncio.Future[Download] = self._loop.create_future()
        # Its failure is raised to the caller, or (the caller cancelled) nobody wants it.
        answer.add_done_callback(_retrieved)
        self._pending[job] = _Pending(answer, progress)
        try:
            frame = ("fetch", job, link, workdir, budget_bytes, progress is not None, JOB_KEY.get())
            self._send(frame)
            try:
                return await asyncio.wait_for(asyncio.shield(answer), wait_s)
            except TimeoutError:
                raise FetchError(Reason.TIMED_OUT, f"no answer in {wait_s:.0f} s") from None
        finally:
            try:
                if not answer.done():
                    # Cancelled or timed out: until the child has answered, its thread may
                    # still write into `workdir`, which the caller removes next.
                    await asyncio.shield(self._stop_job(job, answer))
            finally:
                self._pending.pop(job, None)

    async def _stop_job(self, job: int, answer: asyncio.Future[Download]) -> None:
        with contextlib.suppress(FetchError):
            self._send(("cancel", job))
        await asyncio.wait([answer], timeout=ANSWER_S)
        if not answer.done():
            log.warning("the download process did not stop job %d in %.0f s: killed", job, ANSWER_S)
            await asyncio.to_thread(self.stop, kill=True)
        if not answer.done():
            answer.set_exception(FetchError(Reason.FAILED, ENDED))

    def stop(self, *, kill: bool = False) -> None:
        """End the child: it cancels its jobs and closes its YoutubeDLs (or is killed)."""
        stdin = self._process.stdin
        if not kill and stdin is not None:
            with contextlib.suppress(OSError, ValueError, FetchError):
                self._send(("quit",))
            with contextlib.suppress(OSError, ValueError), self._write_lock:
                stdin.close()
        _reap(self._process, 0 if kill else STOP_S)
        self._reader.join(timeout=STOP_S)
        for stream in (self._process.stdin, self._process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError, ValueError):
                    stream.close()


class ProcessDownloader:
    """The Downloader port over a child process running a `YtDlpDownloader`; a child that dies
    fails the fetches it held, and the next fetch starts another."""

    def __init__(
        self,
        config: DownloaderConfig,
        early: EarlyChild | None = None,
        proxies: ProxyPool | None = None,
    ) -> None:
        """`proxies`, the bot's pool, hears how the child's jobs fared through each proxy, so
        a proxy TikTok refuses rests for the bot's short-link lookups too."""
        self._config = config
        self._early = early
        self._proxies = proxies
        self._child: _Child | None = None
        self._starting: asyncio.Lock | None = None

    @property
    def pid(self) -> int | None:
        """The running child's process id (None before the first start or after it ended)."""
        child = self._child
        return child.pid if child is not None and not child.ended else None

    async def _running(self) -> _Child:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._child is None or self._child.ended:
                if self._child is not None:
                    await asyncio.to_thread(self._child.stop)
                early = self._early.take() if self._early is not None else None
                self._child = await _Child.start(self._config, early, self._proxies)
            return self._child

    async def warm_up(self) -> None:
        """Start the child, which builds its YoutubeDLs before it says it is ready."""
        await self._running()

    async def fetch(
        self, link: Link, workdir: Path, budget_bytes: int, *, progress: Reporter | None = None
    ) -> Download:
        child = await self._running()
        # The child keeps its own deadline (timeout_s); this one is for a child that hangs.
        wait_s = self._config.timeout_s + ANSWER_S
        return await child.fetch(link, workdir, budget_bytes, progress, wait_s)

    def close(self) -> None:
        if self._early is not None:
            self._early.close()
        if self._child is not None:
            self._child.stop()
            self._child = None


async def _serve(config: DownloaderConfig, frames_in: IO[bytes], frames_out: IO[bytes]) -> None:
    loop = asyncio.get_running_loop()
    write_lock = threading.Lock()

    def send(frame: object) -> None:
        # The bot may be gone already (it ended, or was killed): nobody is left to tell.
        with contextlib.suppress(OSError, ValueError):
            _write_frame(frames_out, write_lock, frame)

    # The bot's pool hears each outcome (ProcessDownloader's `proxies`).
    pool = ProxyPool(config.proxies, listener=lambda proxy, worked: send(("proxy", proxy, worked)))
    downloader = config.build(proxies=pool)
    jobs: dict[int, asyncio.Task[None]] = {}
    ended: asyncio.Future[None] = loop.create_future()

    async def run(
        job: int, link: Link, workdir: Path, budget: int, wants_progress: bool, key: str
    ) -> None:
        # The bot's key for the job, on this process's log lines too (this task's context).
        JOB_KEY.set(key)

        def report(progress: Progress) -> None:
            send(("progress", job, progress))

        try:
            download = await downloader.fetch(
                link, workdir, budget, progress=report if wants_progress else None
            )
        except BaseException as err:
            if not isinstance(err, asyncio.CancelledError | FetchError):
                log.exception("download of %s failed", link.url)
            send(_failure(job, err))
        else:
            send(("done", job, download))
        finally:
            jobs.pop(job, None)

    def on_frame(frame: tuple[Any, ...]) -> None:
        kind = frame[0]
        if kind == "fetch":
            _, job, link, workdir, budget, wants_progress, key = frame
            jobs[job] = loop.create_task(run(job, link, workdir, budget, wants_progress, key))
        elif kind == "cancel":
            task = jobs.get(frame[1])
            if task is not None:
                task.cancel()
        elif kind == "quit" and not ended.done():
            ended.set_result(None)

    def read() -> None:
        try:
            while True:
                frame = pickle.load(frames_in)  # noqa: S301 - the bot, a private pipe
                loop.call_soon_threadsafe(on_frame, frame)
        except (EOFError, OSError, ValueError, pickle.UnpicklingError):
            pass
        finally:
            # The bot went away (EOF): end too, so no child outlives it.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(on_frame, ("quit",))

    try:
        await downloader.warm_up()
        # As in the bot (bot.app.settle): what lives as long as the process
        # is kept out of the collector's walks.
        gc.freeze()
        send(("ready",))
        threading.Thread(target=read, name="frames", daemon=True).start()
        await ended
        for task in list(jobs.values()):
            task.cancel()
        await asyncio.gather(*jobs.values(), return_exceptions=True)
    finally:
        closing = asyncio.ensure_future(asyncio.to_thread(downloader.close))
        await asyncio.wait([closing], timeout=JOB_END_TIMEOUT_S)
        if not closing.done():
            # A yt-dlp thread in a network read cannot be interrupted, and would keep this
            # process (and the bot's stderr, which it shares) for its socket timeouts; the bot
            # removes the job's files itself (Engine.stop).
            log.warning("ending without waiting for a blocked download thread")
            _leave()


def main() -> int:
    """The child: frames on the stdout it was given, everything printed to stderr."""
    # The bot says when to stop (a quit frame, or its end closing stdin); a Ctrl-C or a SIGTERM
    # sent to the whole process group must not end jobs under the bot's feet.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    frames_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    frames_in = sys.stdin.buffer
    # yt-dlp is imported while the bot is still starting, before its settings arrive.
    import bot.download  # noqa: F401

    try:
        config = pickle.load(frames_in)  # noqa: S301 - the bot, a private pipe
    except EOFError:
        return 0  # started early (EarlyChild) by a bot that did not need it
    if not isinstance(config, DownloaderConfig):
        return 2
    # The bot's format and redaction: the proxies' passwords are the secrets this process holds.
    configure_logging(config.log_level, url_passwords(config.proxies), process="download process")
    with contextlib.suppress(BrokenPipeError):
        asyncio.run(_serve(config, frames_in, frames_out))
    # The frames thread may be inside a read of stdin: the interpreter's shutdown would wait for
    # that stream's lock and abort ("could not acquire lock for <stdin> at interpreter
    # shutdown"). Everything is sent and closed by now.
    _leave()


if __name__ == "__main__":
    # Run as bot.download_process, not as __main__: the frames name this module's classes.
    from bot.download_process import main as child_main

    sys.exit(child_main())
