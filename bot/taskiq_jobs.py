"""The distributed job queue: taskiq on Redis Streams (taskiq-redis's RedisStreamBroker).

A job is the request's JSON (bot.codec) under its idempotency key as the task id. The stream's
consumer group keeps a job pending until a worker acknowledges it, after it ran
(`when_executed`); a worker that dies leaves it pending, and another worker claims it once it
has been idle for the lease (JOB_LEASE_S). A job that runs long keeps its lease: its worker
claims it again (XCLAIM resets the idle time) every third of the lease, so a slow encode is not
taken from a living worker (taskiq-redis #101). Each worker reads one message at a time with no
prefetch, so a crash strands only the jobs it was running.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from taskiq import AckableMessage
from taskiq.acks import AcknowledgeType
from taskiq.api import run_receiver_task
from taskiq.kicker import AsyncKicker
from taskiq_redis import RedisStreamBroker

from bot.codec import RequestCodec
from bot.model import VideoRequest
from bot.stores.redis_values import text

log = logging.getLogger(__name__)

TASK_NAME = "reshare.answer"
QUEUE = "reshare:jobs"
GROUP = "reshare-workers"
# A broken connection to Redis: the worker tries again after this, doubling up to the last.
RECONNECT_FIRST_S = 0.2
RECONNECT_MAX_S = 5.0
# Tries to acknowledge a finished job while Redis is away (about half a minute in all).
ACK_ATTEMPTS = 8


class _Ack:
    """Acknowledges one stream entry; knows which, so its job's lease can be renewed.

    taskiq acknowledges after a task that raised too, CancelledError included: a job cut off
    by a stopping worker is not acknowledged, so another worker takes it up.
    """

    def __init__(
        self, broker: LeasedStreamBroker, stream: str, entry_id: Any, task_id: str
    ) -> None:
        self.broker = broker
        self.stream = stream
        self.entry_id = entry_id
        self.task_id = task_id

    async def __call__(self) -> None:
        self.broker.running.pop(self.entry_id, None)
        if self.task_id in self.broker.cut_off:
            self.broker.cut_off.discard(self.task_id)
            return
        pause = RECONNECT_FIRST_S
        for _ in range(ACK_ATTEMPTS):
            try:
                async with Redis(connection_pool=self.broker.connection_pool) as redis:
                    await redis.xack(self.stream, self.broker.consumer_group_name, self.entry_id)
                return
            except RedisError as err:
                log.warning("could not acknowledge a job (%r): again in %.1f s", err, pause)
            await asyncio.sleep(pause)
            pause = min(RECONNECT_MAX_S, pause * 2)
        # Taken up again after the lease: its journal entry says it was answered.
        log.warning("a job stays unacknowledged: another worker will find it answered")


class LeasedStreamBroker(RedisStreamBroker):
    """A RedisStreamBroker whose running jobs keep their lease while their worker lives."""

    def __init__(self, url: str, *, lease_s: float, consumer_name: str | None = None) -> None:
        super().__init__(
            url,
            queue_name=QUEUE,
            consumer_group_name=GROUP,
            consumer_name=consumer_name,
            # Jobs queued before the first worker started are read too.
            consumer_id="0",
            idle_timeout=max(1, round(lease_s * 1000)),
            xread_count=1,
            xread_block=1000,
        )
        self.lease_s = lease_s
        # Stream entries this worker runs now, by entry id: renewed until acknowledged.
        self.running: dict[Any, str] = {}
        # Task ids of jobs cancelled mid-run: left pending for another worker.
        self.cut_off: set[str] = set()
        # Set when the worker stops taking new jobs.
        self.closing = False

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        """New entries, and after each wait the entries of dead workers past their lease.

        RedisStreamBroker.listen looks for such entries only after it has read a new one, so
        on a quiet stream a dead worker's job would wait for the next request; here the
        claim runs after every read, at least once a second (XAUTOCLAIM is atomic, so two
        workers never claim one entry).
        """
        pause = RECONNECT_FIRST_S
        async with Redis(connection_pool=self.connection_pool) as redis:
            while not self.closing:
                try:
                    fetched: Any = await redis.xreadgroup(
                        self.consumer_group_name,
                        self.consumer_name,
                        {self.queue_name: ">"},
                        block=self.block,
                        count=1,
                    )
                    claimed: Any = await redis.xautoclaim(
                        self.queue_name,
                        self.consumer_group_name,
                        self.consumer_name,
                        min_idle_time=self.idle_timeout,
                        count=1,
                    )
                except RedisError as err:
                    # Redis restarting: wait and read again (the group survives in its AOF).
                    log.warning("job stream unreachable (%r): again in %.1f s", err, pause)
                    await asyncio.sleep(pause)
                    pause = min(RECONNECT_MAX_S, pause * 2)
                    await self._declare_group_again()
                    continue
                pause = RECONNECT_FIRST_S
                for stream, entries in fetched or []:
                    for entry_id, fields in entries:
                        yield self._take(text(stream), entry_id, fields)
                for entry_id, fields in claimed[1]:
                    log.info("took over a job whose worker went silent (%s)", text(entry_id))
                    yield self._take(self.queue_name, entry_id, fields)

    async def _declare_group_again(self) -> None:
        """A Redis that lost its data (no AOF) has no group either; creating it is harmless."""
        with contextlib.suppress(RedisError):
            await self._declare_consumer_group()

    def _take(self, stream: str, entry_id: Any, fields: dict[bytes, bytes]) -> AckableMessage:
        self.running[entry_id] = stream
        data = fields[b"data"]
        task_id = str(json.loads(data).get("task_id"))
        return AckableMessage(data=data, ack=_Ack(self, stream, entry_id, task_id))

    async def keep_leases(self) -> None:
        """Claim every running entry again, every third of the lease, resetting its idle time."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            if not self.running:
                continue
            try:
                async with Redis(connection_pool=self.connection_pool) as redis:
                    for entry_id, stream in list(self.running.items()):
                        await redis.xclaim(
                            stream,
                            self.consumer_group_name,
                            self.consumer_name,
                            min_idle_time=0,
                            message_ids=[entry_id],
                            justid=True,
                        )
            except Exception as err:
                log.warning("could not renew the leases of running jobs: %r", err)


class TaskiqJobQueue:
    """Implements `JobQueue`: each request becomes a task on the stream, its key its task id."""

    def __init__(self, broker: LeasedStreamBroker, codec: RequestCodec) -> None:
        self._broker = broker
        self._codec = codec

    async def submit(self, request: VideoRequest) -> bool:
        """Durably queued when it returns (XADD answered); raises when Redis cannot be reached."""
        text = self._codec.encode(request, accepted_at=time.time())
        kicker: AsyncKicker[[str], None] = AsyncKicker(TASK_NAME, self._broker, labels={})
        await kicker.with_task_id(self._codec.key(request.origin)).kiq(text)
        return True

    async def workers_alive(self) -> int:
        """Workers that read the stream within the lease (each reads at least once a second)."""
        async with Redis(connection_pool=self._broker.connection_pool) as redis:
            try:
                consumers = await redis.xinfo_consumers(QUEUE, GROUP)
            except RedisError:
                return 0
        lease_ms = self._broker.lease_s * 1000
        return sum(1 for consumer in consumers if int(consumer["idle"]) < lease_ms)

    async def depth(self) -> int:
        """Entries on the stream not yet delivered to a worker, and those being worked on."""
        async with Redis(connection_pool=self._broker.connection_pool) as redis:
            groups = await redis.xinfo_groups(QUEUE)
        return sum(int(group.get("lag") or 0) + int(group["pending"]) for group in groups)


class TaskiqWorker:
    """Runs jobs from the stream: `handle` gets each request; WORKERS of them at once."""

    def __init__(
        self,
        broker: LeasedStreamBroker,
        codec: RequestCodec,
        handle: Callable[[VideoRequest, str], Awaitable[None]],
        *,
        concurrency: int,
    ) -> None:
        self._broker = broker
        self._codec = codec
        self._handle = handle
        self._concurrency = concurrency
        self._running: asyncio.Task[None] | None = None
        self._leases: asyncio.Task[None] | None = None

        async def answer(request: str) -> None:
            await self._answer(request)

        broker.register_task(answer, task_name=TASK_NAME)

    async def _answer(self, request: str) -> None:
        decoded = self._codec.decode(request, time.time())
        if decoded is None:
            log.warning("a job whose answer channel expired: dropped")
            return
        job, _ = decoded
        key = self._codec.key(job.origin) or "?"
        try:
            await self._handle(job, key)
        except BaseException:
            # Cancelled, or Redis gone mid-job: left pending, so it is taken up again (after
            # the lease) and answers what is still unanswered.
            self._broker.cut_off.add(key)
            raise

    def start(self) -> None:
        self._running = asyncio.create_task(self._receive(), name="taskiq-receiver")
        self._leases = asyncio.create_task(self._broker.keep_leases(), name="job-leases")

    async def _receive(self) -> None:
        """taskiq's receiver, started again after Redis went away."""
        pause = RECONNECT_FIRST_S
        while True:
            try:
                await run_receiver_task(
                    self._broker,
                    max_async_tasks=self._concurrency,
                    max_prefetch=0,
                    ack_time=AcknowledgeType.WHEN_EXECUTED,
                    propagate_exceptions=False,
                )
                return
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("job stream unreachable (%r): again in %.1f s", err, pause)
            await asyncio.sleep(pause)
            pause = min(RECONNECT_MAX_S, pause * 2)

    async def stop(self, grace_s: float = 0.0, cut_short: asyncio.Event | None = None) -> None:
        """Take no new jobs, let those running go on for up to `grace_s` (or until `cut_short`
        is set), then cancel them: they stay pending, and another worker takes them up after
        the lease."""
        self._broker.closing = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s):
                # taskiq signals no job's end: polled.
                while self._broker.running and not (cut_short and cut_short.is_set()):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
        if self._broker.running:
            log.info("%d jobs cut off: another worker takes them up", len(self._broker.running))
        for task in (self._running, self._leases):
            if task is not None:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        self._running = self._leases = None
