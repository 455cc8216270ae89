"""In-process single-flight: one job per clip, shared by every request for it at the moment.

A job runs in a task of its own with a private directory (mode 0700) that lives until the last
of its requesters has been answered, and no longer than the task: also on errors and on
cancellation, its files are removed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Hashable
from pathlib import Path
from typing import Any, Generic, TypeVar

from bot.model import CachedMedia
from bot.progress import JobProgress

_T = TypeVar("_T")


@dataclasses.dataclass(slots=True)
class Flight(Generic[_T]):
    """One job in progress: its outcome once published, and how many requests wait for it."""

    outcome: asyncio.Future[_T]
    # Makes the job's private directory; called only when the job needs one (a cache hit
    # never does, and saves the mkdir and the rmtree).
    make_directory: Callable[[], tempfile.TemporaryDirectory[str]]
    # Set once the job has to fetch (a cache hit never sets it).
    fetching: asyncio.Event
    # Set once the first requester has been answered (its upload gave the others a handle).
    first_answered: asyncio.Event
    # What the first requester's upload left to send again by (Telegram's file_id).
    handle: CachedMedia | None = None
    users: int = 0
    first_answer: asyncio.Lock = dataclasses.field(default_factory=asyncio.Lock)
    # How far the job's fetch has come, for the status its requesters see.
    progress: JobProgress = dataclasses.field(default_factory=JobProgress)
    directory: tempfile.TemporaryDirectory[str] | None = None

    @property
    def workdir(self) -> Path:
        if self.directory is None:
            self.directory = self.make_directory()
        return Path(self.directory.name)

    def remove_directory(self) -> None:
        if self.directory is not None:
            self.directory.cleanup()

    def publish(self, outcome: _T) -> None:
        if not self.outcome.done():
            self.outcome.set_result(outcome)


Job = Callable[[Flight[_T]], Coroutine[Any, Any, None]]


class Flights(Generic[_T]):
    """Jobs by key; `join` starts one or joins the one running."""

    def __init__(self, work_root: Path | None) -> None:
        self._work_root = work_root
        # Each flight with its task, kept apart: a flight that held its task would sit in a
        # reference cycle with the frames of a cancelled job's traceback (and the download's
        # sockets with them) until the garbage collector came by.
        self._flights: dict[Hashable, tuple[Flight[_T], asyncio.Task[None]]] = {}
        self._landing: set[asyncio.Task[None]] = set()

    @contextlib.asynccontextmanager
    async def join(
        self, key: Hashable, job: Job[_T], on_join: Callable[[], None] | None = None
    ) -> AsyncIterator[Flight[_T]]:
        """The flight for `key`, started with `job` when none runs; `job` must publish an
        outcome (a task that ends without one cancels its outcome)."""
        running = self._flights.get(key)
        if running is None:
            loop = asyncio.get_running_loop()
            outcome: asyncio.Future[_T] = loop.create_future()
            flight = Flight(
                outcome=outcome,
                make_directory=self.job_dir,
                fetching=asyncio.Event(),
                first_answered=asyncio.Event(),
            )
            task = asyncio.create_task(job(flight))
            task.add_done_callback(functools.partial(_end_outcome, outcome))
            running = self._flights[key] = (flight, task)
        elif on_join is not None:
            on_join()
        flight, task = running
        flight.users += 1
        try:
            yield flight
        finally:
            flight.users -= 1
            if flight.users == 0:
                del self._flights[key]
                self._land(flight, task)

    def job_dir(self) -> tempfile.TemporaryDirectory[str]:
        """A private directory (mode 0700) for one job's files."""
        return tempfile.TemporaryDirectory(
            prefix="reshare-", dir=self._work_root, ignore_cleanup_errors=True
        )

    def _land(self, flight: Flight[_T], task: asyncio.Task[None]) -> None:
        """Remove the job's directory once its task has ended, never before; no await here,
        so a second cancellation of the caller cannot skip the clean-up."""
        if task.done():
            flight.remove_directory()
            return
        task.cancel()
        self._landing.add(task)

        def cleanup(task: asyncio.Task[None]) -> None:
            flight.remove_directory()
            self._landing.discard(task)

        task.add_done_callback(cleanup)

    async def drain(self) -> None:
        """Wait until every cancelled job has ended and its directory is gone."""
        while self._landing:
            await asyncio.wait(list(self._landing))


def _end_outcome(outcome: asyncio.Future[_T], task: asyncio.Task[None]) -> None:
    """A job that ended without publishing passes on its error, or its cancellation."""
    if outcome.done():
        return
    if not task.cancelled() and task.exception() is not None:
        outcome.set_exception(task.exception() or RuntimeError("job failed"))
        outcome.exception()  # seen: with no requester left, nobody else reads it
    else:
        outcome.cancel()
