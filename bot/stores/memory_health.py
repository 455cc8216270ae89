"""The embedded fetch health and failed-link memory: plain dictionaries in one process."""

from __future__ import annotations

import collections
import time
from collections.abc import Callable, Sequence

from bot.model import FailureKind, Reason
from bot.ports import HealthChange, HealthRule

# One fetch: when it ended, and how it failed (None: it worked).
Attempt = tuple[float, FailureKind | None]


def judge(
    site: str,
    newest_first: Sequence[Attempt],
    incident: FailureKind | None,
    rule: HealthRule,
    now: float,
) -> HealthChange | None:
    """The change the latest attempt made, by the rule; the Redis store's script does the same.

    The incident's kind is the most frequent among the failures in the window (on a tie, the
    one that reached that count first going back from the newest)."""
    recent = [(at, kind) for at, kind in newest_first if at >= now - rule.window_s]
    counts: dict[FailureKind, int] = {}
    leading: FailureKind | None = None
    for _, kind in recent:
        if kind is not None:
            counts[kind] = counts.get(kind, 0) + 1
            if leading is None or counts[kind] > counts[leading]:
                leading = kind
    failures = sum(counts.values())
    if incident is None:
        if leading is not None and failures >= rule.failures:
            return HealthChange(site, True, leading, failures, len(recent))
        return None
    latest = newest_first[: rule.recover_after]
    if len(latest) >= rule.recover_after and all(kind is None for _, kind in latest):
        return HealthChange(site, False, incident, failures, len(recent))
    return None


class MemoryFetchHealth:
    """Implements `FetchHealth` for one process."""

    def __init__(
        self, rule: HealthRule | None = None, *, clock: Callable[[], float] = time.time
    ) -> None:
        self._rule = rule or HealthRule()
        self._clock = clock
        self._recent: dict[str, collections.deque[Attempt]] = {}
        self._incidents: dict[str, FailureKind] = {}

    async def record(self, site: str, kind: FailureKind | None) -> HealthChange | None:
        now = self._clock()
        recent = self._recent.setdefault(site, collections.deque(maxlen=self._rule.attempts))
        recent.appendleft((now, kind))
        change = judge(site, list(recent), self._incidents.get(site), self._rule, now)
        if change is not None:
            if change.broken:
                self._incidents[site] = change.kind
            else:
                # A fresh count: the incident's failures must not start another one.
                del self._incidents[site]
                for _ in range(len(recent) - self._rule.recover_after):
                    recent.pop()
        return change

    async def incident(self, site: str) -> FailureKind | None:
        return self._incidents.get(site)


class MemoryFailedLinks:
    """Implements `FailedLinks` for one process; expired entries go when the next is added."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._failed: dict[str, tuple[Reason, float]] = {}

    async def remember(self, clip: str, reason: Reason, ttl_s: float) -> None:
        now = self._clock()
        self._failed = {k: v for k, v in self._failed.items() if v[1] > now}
        if ttl_s > 0:
            self._failed[clip] = (reason, now + ttl_s)

    async def recall(self, clip: str) -> Reason | None:
        found = self._failed.get(clip)
        if found is None or found[1] <= self._clock():
            return None
        return found[0]
