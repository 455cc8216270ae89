"""The embedded job queue: a bounded asyncio queue drained by a pool of workers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.model import VideoRequest

log = logging.getLogger(__name__)


class AsyncioJobQueue:
    """Bounded, so a burst waits its turn instead of starting unbounded work."""

    def __init__(self, *, workers: int, maxsize: int) -> None:
        self._queue: asyncio.Queue[VideoRequest] = asyncio.Queue(maxsize)
        self._worker_count = workers
        self._workers: list[asyncio.Task[None]] = []
        self._interrupted: list[VideoRequest] = []

    async def submit(self, request: VideoRequest) -> bool:
        try:
            self._queue.put_nowait(request)
        except asyncio.QueueFull:
            return False
        return True

    def depth(self) -> int:
        """Requests waiting for a worker."""
        return self._queue.qsize()

    async def put(self, request: VideoRequest) -> None:
        """Queue the request, waiting for room (requests taken up again at start)."""
        await self._queue.put(request)

    def start(self, handler: Callable[[VideoRequest], Awaitable[None]]) -> None:
        """Start the workers; the handler comes last because it needs the adapters' repliers."""
        self._workers = [
            asyncio.create_task(self._work(handler), name=f"reshare-worker-{n}")
            for n in range(self._worker_count)
        ]

    async def join(self) -> None:
        """Wait until every submitted request was handled."""
        await self._queue.join()

    async def stop(
        self, grace_s: float = 0.0, cut_short: asyncio.Event | None = None
    ) -> list[VideoRequest]:
        """Let the workers go on for up to `grace_s` until the queue is empty (or `cut_short` is
        set), then cancel them.

        Returns the requests that were not handled: those cut off and those still waiting.
        """
        if self._workers and grace_s > 0:
            waits: list[asyncio.Task[object]] = [asyncio.create_task(self._queue.join())]
            if cut_short is not None:
                waits.append(asyncio.create_task(cut_short.wait()))
            await asyncio.wait(waits, timeout=grace_s, return_when=asyncio.FIRST_COMPLETED)
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*waits, return_exceptions=True)
        for worker in self._workers:
            worker.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []
        unhandled, self._interrupted = self._interrupted, []
        while not self._queue.empty():
            unhandled.append(self._queue.get_nowait())
            self._queue.task_done()
        return unhandled

    async def _work(self, handler: Callable[[VideoRequest], Awaitable[None]]) -> None:
        while True:
            request = await self._queue.get()
            try:
                await handler(request)
            except asyncio.CancelledError:
                self._interrupted.append(request)
                raise
            except Exception:
                log.exception("request failed")
            finally:
                self._queue.task_done()
