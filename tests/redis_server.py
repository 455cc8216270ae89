"""A real redis-server for tests: on a free 127.0.0.1 port, its data in a directory of the test's.

    async with RedisServer(tmp_path / "redis") as server:
        client = redis.asyncio.Redis.from_url(server.url)
        ...
        await server.restart()  # SIGTERM (a clean SHUTDOWN: the AOF is flushed), then the same port
        await server.kill()     # SIGKILL, like a crash; clients now get ConnectionError
        await server.start()    # back on the same port and directory

The server runs as Redis runs in production (DESIGN.md section 13): `appendonly yes` with
`appendfsync everysec` and no RDB snapshots, so what survives a restart survives through the AOF.
It needs Debian's `redis-server` (7.0) on PATH; the README's test command installs it.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

# Ports handed out by this process and not yet known to be released: the kernel may give the
# same ephemeral port to two bind(0) calls in a row once the first socket is closed.
_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A 127.0.0.1 TCP port that was free a moment ago (another process may still take it)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free port found")


class RedisServerError(RuntimeError):
    """redis-server did not come up (its log is in the message)."""


class _PortTaken(RedisServerError):
    """Another process holds the port: start again on another one (first start only)."""


class RedisServer:
    """One redis-server process; start, stop, kill and start it again on the same port and dir."""

    def __init__(
        self,
        directory: Path,
        *,
        executable: str = "redis-server",
        startup_timeout_s: float = 10.0,
        stop_timeout_s: float = 10.0,
    ) -> None:
        self.directory = directory.resolve()
        self.executable = executable
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.log_path = self.directory / "redis.log"
        self._port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._log_offset = 0  # where the current process's part of the log begins

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the server has not been started")
        return self._port

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        if self._process is None:
            raise RuntimeError("the server is not running")
        return self._process.pid

    async def __aenter__(self) -> RedisServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    async def start(self) -> None:
        """Start the server and wait until it answers PING: on a free port the first time, on the
        port it had before after that (so clients and the AOF carry over)."""
        if self._process is not None:
            raise RuntimeError("the server is already running")
        if self._port is not None:
            await self._start_on(self._port)
            return
        for attempt in range(5):
            port = free_port()
            try:
                await self._start_on(port)
            except _PortTaken:
                if attempt == 4:
                    raise
                continue
            self._port = port
            return

    async def stop(self) -> None:
        """Stop cleanly (SIGTERM: Redis runs SHUTDOWN, which flushes and fsyncs the AOF) and reap
        the process; SIGKILL if it does not exit in time. Does nothing when not running."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            if await _exited(process, self.stop_timeout_s):
                return
            process.kill()
        await _exited(process, None)

    async def kill(self) -> None:
        """Kill the server with SIGKILL, as a crash would, and reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.kill()
        await _exited(process, None)

    async def restart(self) -> None:
        """A clean stop, then a start on the same port and directory."""
        await self.stop()
        await self.start()

    def client(self) -> redis.asyncio.Redis:
        """A new client of this server (the caller closes it with `aclose()`)."""
        return redis.asyncio.Redis.from_url(self.url)

    async def _start_on(self, port: int) -> None:
        process = self._spawn(port)
        self._process = process
        try:
            await self._wait_until_ready(process, port)
        except BaseException:
            self._process = None
            if process.poll() is None:
                process.kill()
            await _exited(process, None)
            raise

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        if shutil.which(self.executable) is None:
            raise RedisServerError(
                f"{self.executable} is not on PATH: install it (Debian: apt-get install -y "
                "redis-server; the README's test command does this when it is missing)"
            )
        self.directory.mkdir(parents=True, exist_ok=True)
        argv = [
            self.executable,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--protected-mode",
            "yes",
            "--dir",
            str(self.directory),
            "--appendonly",
            "yes",
            "--appendfsync",
            "everysec",
            "--save",
            "",
            "--daemonize",
            "no",
        ]
        with self.log_path.open("ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} starting on port {port}\n".encode())
            log.flush()
            self._log_offset = log.tell()
            return subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
            )

    async def _wait_until_ready(self, process: subprocess.Popen[bytes], port: int) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        client = redis.asyncio.Redis(
            host="127.0.0.1",
            port=port,
            socket_connect_timeout=1.0,
            socket_timeout=0.5,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            while True:
                if process.poll() is not None:
                    log = self._log_tail()
                    if "Address already in use" in log:
                        raise _PortTaken(f"port {port} is taken:\n{log}")
                    raise RedisServerError(
                        f"redis-server exited with status {process.returncode}:\n{log}"
                    )
                try:
                    # Make sure that it is our process that answers (in a race for the port,
                    # another test's server could hold it while ours fails to bind), then PING:
                    # INFO is answered while the AOF is still loading, PING is not.
                    info = await client.info("server")
                    if info.get("process_id") != process.pid:
                        raise _PortTaken(f"port {port} is served by pid {info.get('process_id')}")
                    if await client.ping():
                        return
                except (RedisConnectionError, RedisTimeoutError):
                    pass  # not listening yet, or still loading the AOF (BusyLoadingError)
                if time.monotonic() > deadline:
                    raise RedisServerError(
                        f"redis-server did not answer PING within {self.startup_timeout_s} s:\n"
                        + self._log_tail()
                    )
                await asyncio.sleep(0.02)
        finally:
            await client.aclose()

    def _log_tail(self) -> str:
        """The last lines the current process wrote to the log."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(self._log_offset)
                lines = log.read().decode(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(lines[-20:])


async def _exited(process: subprocess.Popen[bytes], timeout_s: float | None) -> bool:
    """Wait (without blocking the loop) until the process has exited and is reaped."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while process.poll() is None:
        if deadline is not None and time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True
