"""The taskiq job queue on a real redis-server: queued jobs reach a worker, a dead worker's job
is taken by another after the lease, and a living worker keeps its long job."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from taskiq.exceptions import SendTaskError

from bot.codec import DataclassCodec, RequestCodec
from bot.links import Link, LinkKind
from bot.model import VideoRequest
from bot.taskiq_jobs import LeasedStreamBroker, TaskiqJobQueue, TaskiqWorker
from tests.redis_server import RedisServer


@dataclass(frozen=True, slots=True)
class ChatOrigin:
    chat_id: int
    message_id: int
    platform: str = "telegram"


CODEC = RequestCodec({"telegram": DataclassCodec(ChatOrigin)})


def request(n: int) -> VideoRequest:
    url = f"https://www.tiktok.com/@a/video/{n}"
    link = Link(site="TikTok", kind=LinkKind.VIDEO, url=url, clip_id=str(n), original=url)
    return VideoRequest(links=(link,), origin=ChatOrigin(7, n), budget_bytes=10)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    async with RedisServer(tmp_path / "redis") as started:
        yield started


class Recorder:
    """A worker's handler that records what it ran, and can hold a job until released."""

    def __init__(self, hold: bool = False) -> None:
        self.started: list[tuple[VideoRequest, str]] = []
        self.finished: list[VideoRequest] = []
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    async def __call__(self, job: VideoRequest, key: str) -> None:
        self.started.append((job, key))
        await self.release.wait()
        self.finished.append(job)


@contextlib.asynccontextmanager
async def worker(
    server: RedisServer, handle: Recorder, *, lease_s: float = 60.0
) -> AsyncIterator[TaskiqWorker]:
    broker = LeasedStreamBroker(server.url, lease_s=lease_s)
    await broker.startup()
    running = TaskiqWorker(broker, CODEC, handle, concurrency=4)
    running.start()
    try:
        yield running
    finally:
        await running.stop()
        await broker.shutdown()


@contextlib.asynccontextmanager
async def queue(server: RedisServer) -> AsyncIterator[TaskiqJobQueue]:
    broker = LeasedStreamBroker(server.url, lease_s=60.0)
    await broker.startup()
    try:
        yield TaskiqJobQueue(broker, CODEC)
    finally:
        await broker.shutdown()


async def until(condition: Callable[[], bool], within_s: float = 20.0) -> None:
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110 - polled state of several tasks
            await asyncio.sleep(0.02)


async def test_a_queued_job_reaches_a_worker_with_its_key(server: RedisServer) -> None:
    done = Recorder()
    async with queue(server) as jobs, worker(server, done):
        assert await jobs.submit(request(1))
        assert await jobs.submit(request(2))
        await until(lambda: len(done.finished) == 2)
    assert sorted(job.origin.message_id for job, _ in done.started) == [1, 2]  # type: ignore[attr-defined]
    assert {key for _, key in done.started} == {CODEC.key(request(n).origin) for n in (1, 2)}


async def test_jobs_queued_before_any_worker_are_run(server: RedisServer) -> None:
    async with queue(server) as jobs:
        assert await jobs.submit(request(1))
    done = Recorder()
    async with worker(server, done):
        await until(lambda: len(done.finished) == 1)


async def test_a_dead_workers_job_is_taken_by_another_after_the_lease(
    server: RedisServer,
) -> None:
    stuck = Recorder(hold=True)
    async with queue(server) as jobs:
        async with worker(server, stuck, lease_s=1.0):
            assert await jobs.submit(request(1))
            await until(lambda: len(stuck.started) == 1)
        # Stopped mid-job without acknowledging, as a killed process would leave it.
        done = Recorder()
        async with worker(server, done, lease_s=1.0):
            await until(lambda: len(done.finished) == 1, within_s=15)
    assert done.started[0][0] == request(1)


async def test_a_living_worker_keeps_its_long_job(server: RedisServer) -> None:
    slow = Recorder(hold=True)
    other = Recorder()
    async with queue(server) as jobs, worker(server, slow, lease_s=1.0):
        assert await jobs.submit(request(1))
        await until(lambda: len(slow.started) == 1)
        async with worker(server, other, lease_s=1.0):
            await asyncio.sleep(3.5)  # three leases and more
            assert other.started == []
            slow.release.set()
            await until(lambda: len(slow.finished) == 1)
            await asyncio.sleep(1.5)
            assert other.started == []


async def test_submit_raises_while_redis_is_down_and_works_again_after(
    server: RedisServer,
) -> None:
    async with queue(server) as jobs:
        await server.kill()
        with pytest.raises(SendTaskError):
            await jobs.submit(request(1))
        await server.start()
        assert await jobs.submit(request(2))
