"""When to send a reply again: the one retry policy for every platform call that answers a user.

Adapters translate their library's errors into the exceptions below; this module decides.
Only a call the platform is known not to have acted on is sent again:

- `Unavailable`: the platform answered "not now" (429, a 5xx answer) or the request never
  left in full (no connection, a write that failed). Retried with backoff and jitter, honouring
  the platform's `retry_after`, within a total deadline.
- `Unconfirmed`: the whole request went out and no answer came back (a connection dropped after
  sending, a read timeout). The platform may have acted on it, and sending it again could show
  the user the same video twice, so it is never sent again: the core counts it as answered and
  logs a warning. Long read timeouts keep this case rare (a slow answer is waited for).
- Anything else is a permanent refusal and goes up to the caller at once.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Unavailable(Exception):
    """The platform did not act on the call and may take it later (after `retry_after` s)."""

    def __init__(self, detail: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unconfirmed(Exception):
    """The call went out whole but its answer was lost: it may have been carried out."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts and waits for one platform call; no wait runs past `deadline_s` from the first
    attempt (an attempt itself is bounded by the platform client's own timeouts)."""

    attempts: int = 5
    base_delay_s: float = 0.5
    max_delay_s: float = 10.0
    deadline_s: float = 60.0

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Full jitter: calls that failed together do not come back together."""
        return rng.uniform(0, min(self.max_delay_s, self.base_delay_s * 2**attempt))


class Retrying:
    """Runs a platform call under a `RetryPolicy`."""

    def __init__(
        self,
        policy: RetryPolicy,
        rng: random.Random,
        on_retry: Callable[[str], None] | None = None,
    ) -> None:
        """`on_retry` hears of each call about to be sent again (the metrics count them)."""
        self._on_retry = on_retry
        self.policy = policy
        self._rng = rng

    async def run(
        self,
        call: Callable[[], Awaitable[T]],
        what: str,
        translate: Callable[[Exception], Exception] | None = None,
    ) -> T:
        """Await `call()` until it succeeds, retrying `Unavailable` while attempts and the
        deadline last; the last `Unavailable` is raised when they run out.

        `translate` turns a platform library's error into one of the above (or returns it as
        it is), for adapters whose calls raise their library's errors.
        """
        if translate is not None:
            call = _translating(call, translate)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.policy.deadline_s
        attempt = 0
        while True:
            try:
                return await call()
            except Unavailable as err:
                attempt += 1
                wait = max(err.retry_after or 0.0, self.policy.backoff(attempt, self._rng))
                if attempt >= self.policy.attempts or loop.time() + wait > deadline:
                    log.warning("%s: gave up after %d attempts: %s", what, attempt, err)
                    raise
                log.info("%s: %s; attempt %d in %.2f s", what, err, attempt + 1, wait)
                if self._on_retry is not None:
                    self._on_retry(what)
                await asyncio.sleep(wait)


def _translating(
    call: Callable[[], Awaitable[T]], translate: Callable[[Exception], Exception]
) -> Callable[[], Awaitable[T]]:
    async def attempt() -> T:
        try:
            return await call()
        except Exception as err:
            translated = translate(err)
            if translated is err:
                raise
            raise translated from err

    return attempt


async def remove_idempotently(
    remove: Callable[[], Awaitable[object]],
    what: str,
    *,
    final: tuple[type[BaseException], ...] = (),
    attempts: int = 3,
    pause_s: float = 0.5,
) -> bool:
    """Remove something (a status message), trying again after any failure: a removal that
    took effect harms nothing when repeated. `final` errors (gone already, not allowed) end it
    at once. True once removed; False when it is left in place."""
    for attempt in range(1, attempts + 1):
        try:
            await remove()
            return True
        except final as err:
            log.info("%s: not removed (%r)", what, err)
            return False
        except Exception as err:
            if attempt == attempts:
                log.info("%s: left in place after %d tries (%r)", what, attempts, err)
                return False
            await asyncio.sleep(pause_s * attempt)
    return False
