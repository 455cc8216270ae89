"""Per-user and per-chat rate limits: one short notice at the first refusal, then silence."""

from __future__ import annotations

import enum
import time
from collections import deque
from collections.abc import Callable

WINDOW_S = 60.0


class Verdict(enum.Enum):
    ALLOW = "allow"
    REFUSE_AND_SAY = "refuse_and_say"
    REFUSE_QUIETLY = "refuse_quietly"


class SlidingWindow:
    """How many links a key sent in the last minute, against a limit."""

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self._limit = per_minute
        self._clock = clock
        self._sent: dict[str, deque[float]] = {}

    def fits(self, key: str, count: int) -> bool:
        now = self._clock()
        sent = self._sent.get(key)
        if sent is None:
            return count <= self._limit
        while sent and sent[0] <= now - WINDOW_S:
            sent.popleft()
        if not sent:
            del self._sent[key]
            return count <= self._limit
        return len(sent) + count <= self._limit

    def take(self, key: str, count: int) -> None:
        now = self._clock()
        self._sent.setdefault(key, deque()).extend([now] * count)


class RateLimits:
    """A user's links and a chat's links per minute; a refused user hears it once."""

    def __init__(
        self,
        *,
        user_per_minute: int,
        chat_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._users = SlidingWindow(user_per_minute, clock)
        self._chats = SlidingWindow(chat_per_minute, clock)
        # Who was told already; forgotten once they are allowed again.
        self._told: set[str] = set()

    def check(self, user: str, chat: str, links: int) -> Verdict:
        over = [
            key
            for key, window in ((user, self._users), (chat, self._chats))
            if not window.fits(key, links)
        ]
        if not over:
            self._users.take(user, links)
            self._chats.take(chat, links)
            self._told.discard(user)
            self._told.discard(chat)
            return Verdict.ALLOW
        if all(key in self._told for key in over):
            return Verdict.REFUSE_QUIETLY
        self._told.update(over)
        return Verdict.REFUSE_AND_SAY
