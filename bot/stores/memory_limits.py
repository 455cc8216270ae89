"""Embedded per-user and per-chat rate limits: one short notice at the first refusal, then
silence."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from bot.ports import Verdict

WINDOW_S = 60.0


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

    def __contains__(self, key: str) -> bool:
        return key in self._sent

    def forget_idle(self) -> None:
        """Drop every key with nothing in the window: one never seen again must not stay."""
        cutoff = self._clock() - WINDOW_S
        for key in [key for key, sent in self._sent.items() if not sent or sent[-1] <= cutoff]:
            del self._sent[key]


class MemoryRateLimits:
    """A user's links and a chat's links per minute, in this process's memory."""

    def __init__(
        self,
        *,
        user_per_minute: int,
        chat_per_minute: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._users = SlidingWindow(user_per_minute, clock)
        self._chats = SlidingWindow(chat_per_minute, clock)
        # Who was told already; forgotten once they are allowed again.
        self._told: set[str] = set()
        self._idle_forgotten_at = clock()

    async def check(self, user: str, chat: str, links: int) -> Verdict:
        self._forget_idle()
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

    def _forget_idle(self) -> None:
        """Once a window, forget the users and chats that sent nothing in it (and so are no
        longer over a limit): the bot meets new ones for as long as it runs."""
        now = self._clock()
        if now - self._idle_forgotten_at < WINDOW_S:
            return
        self._idle_forgotten_at = now
        self._users.forget_idle()
        self._chats.forget_idle()
        self._told = {key for key in self._told if key in self._users or key in self._chats}
