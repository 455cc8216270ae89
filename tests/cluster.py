"""Reshare in the distributed mode as real processes: receivers and workers (`python -m bot
receive` / `work`) on a real redis-server, serving the stand-ins. What the distributed end-to-end
tests and bench/scale.py start."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.harness import ROOT, serving_env
from tests.redis_server import RedisServer, free_port
from tests.standins.discord_api import FakeDiscord
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import TikTokStandIn

WEBHOOK_PATH = "/telegram/updates"
WEBHOOK_SECRET = "cluster-secret_0123456789"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 40.0


@dataclass
class BotProcess:
    """One `python -m bot ROLE` process, its output in a file, its own DATA_DIR and PORT."""

    name: str
    role: str
    env: dict[str, str]
    directory: Path
    port: int
    process: asyncio.subprocess.Process | None = None
    runs: int = 0
    exit_codes: list[int] = field(default_factory=list)

    @property
    def log_path(self) -> Path:
        return self.directory / "output.log"

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    async def start(self) -> None:
        self.runs += 1
        with self.log_path.open("ab") as log:
            log.write(f"--- run {self.runs}\n".encode())
            args = () if self.role == "all" else (self.role,)
            self.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "bot", *args,
                cwd=self.directory, env=self.env, stdout=log, stderr=log,
            )  # fmt: skip
        await self.wait_healthy()

    async def wait_healthy(self, within_s: float = READY_TIMEOUT_S) -> None:
        """Until GET /healthz answers 200 (its Redis and platform connections are up)."""
        url = f"http://127.0.0.1:{self.port}/healthz"
        async with httpx.AsyncClient(timeout=2.0) as client, asyncio.timeout(within_s):
            while True:
                if self.process is not None and self.process.returncode is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()[-3000:]}")
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        return
                await asyncio.sleep(0.1)

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        """Signal it and wait for its exit; SIGKILL is what a crash or an OOM kill does."""
        process = self.process
        if process is None:
            return 0
        if process.returncode is None:
            process.send_signal(sig)
        code = await asyncio.wait_for(process.wait(), STOP_TIMEOUT_S)
        self.exit_codes.append(code)
        self.process = None
        return code

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


class Cluster:
    """Receivers and workers sharing one Redis; each process has a directory of its own."""

    def __init__(
        self,
        root: Path,
        tiktok: TikTokStandIn,
        redis: RedisServer,
        *,
        telegram: FakeBotApi | None = None,
        discord: FakeDiscord | None = None,
        settings: dict[str, str] | None = None,
    ) -> None:
        """`settings` apply to every process (environment variable names)."""
        self._root = root
        self._tiktok = tiktok
        self._redis = redis
        self._telegram = telegram
        self._discord = discord
        self._settings = settings or {}
        self.processes: dict[str, BotProcess] = {}

    def add(self, name: str, role: str, *, embedded: bool = False, **settings: str) -> BotProcess:
        """A process of `role` ("receive", "work" or "all"); `embedded`: without Redis (then
        "all" polls Telegram, as `python -m bot` does by default)."""
        directory = self._root / name
        directory.mkdir(parents=True, exist_ok=True)
        port = free_port()
        extra = {"PORT": str(port), "HOST": "127.0.0.1"}
        if not embedded:
            extra["REDIS_URL"] = self._redis.url
        if role in ("receive", "all") and self._telegram is not None and not embedded:
            extra |= {
                "TELEGRAM_WEBHOOK_URL": f"http://127.0.0.1:{port}{WEBHOOK_PATH}",
                "TELEGRAM_WEBHOOK_SECRET": WEBHOOK_SECRET,
            }
        env = serving_env(
            directory,
            self._tiktok,
            telegram=self._telegram,
            discord=self._discord,
            **{**extra, **self._settings, **settings},
        )
        env["PYTHONPATH"] = str(ROOT)
        process = BotProcess(name=name, role=role, env=env, directory=directory, port=port)
        self.processes[name] = process
        return process

    async def start(
        self, name: str, role: str, *, embedded: bool = False, **settings: str
    ) -> BotProcess:
        process = self.processes.get(name) or self.add(name, role, embedded=embedded, **settings)
        await process.start()
        return process

    async def stop_all(self) -> dict[str, int]:
        codes = await asyncio.gather(*(p.stop() for p in self.processes.values()))
        return dict(zip(self.processes, codes, strict=True))

    def temp_files(self) -> list[str]:
        """What is left in the processes' job directories."""
        return [
            str(path)
            for process in self.processes.values()
            for path in (process.data_dir / "jobs").rglob("*")
        ]

    def logs(self) -> str:
        return "\n".join(f"== {n}\n{p.logs()}" for n, p in self.processes.items())


@contextlib.asynccontextmanager
async def cluster(
    root: Path,
    tiktok: TikTokStandIn,
    redis: RedisServer,
    *,
    telegram: FakeBotApi | None = None,
    discord: FakeDiscord | None = None,
    **settings: str,
) -> AsyncIterator[Cluster]:
    running = Cluster(root, tiktok, redis, telegram=telegram, discord=discord, settings=settings)
    try:
        yield running
    finally:
        await running.stop_all()
