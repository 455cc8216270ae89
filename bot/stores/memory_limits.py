"""Embedded rate limits: a user's and a chat's links (one short notice at the first refusal,
then silence), and the bot's own flood limits for what it sends."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable

from bot.ports import Verdict

WINDOW_S = 60.0
# The longest single wait before the flood limits' windows are looked at again.
_WAIT_MAX_S = 1.0


class SlidingWindow:
    """How many times a key was counted in the last `window_s` (a minute), against a limit."""

    def __init__(self, limit: int, clock: Callable[[], float], window_s: float = WINDOW_S) -> None:
        self._limit = limit
        self._clock = clock
        self._window_s = window_s
        self._sent: dict[str, deque[float]] = {}

    def fits(self, key: str, count: int) -> bool:
        return self.wait_s(key, count) == 0.0

    def wait_s(self, key: str, count: int = 1) -> float:
        """0 when `count` more fit now, else how long until they do (inf: never)."""
        if count > self._limit:
            return float("inf")
        now = self._clock()
        sent = self._sent.get(key)
        if sent is None:
            return 0.0
        while sent and sent[0] <= now - self._window_s:
            sent.popleft()
        if not sent:
            del self._sent[key]
            return 0.0
        over = len(sent) + count - self._limit
        if over <= 0:
            return 0.0
        # The `over` oldest must leave the window first.
        return sent[over - 1] + self._window_s - now

    def take(self, key: str, count: int) -> None:
        now = self._clock()
        self._sent.setdefault(key, deque()).extend([now] * count)

    def __contains__(self, key: str) -> bool:
        return key in self._sent

    def forget_idle(self) -> None:
        """Drop every key with nothing in the window: one never seen again must not stay."""
        cutoff = self._clock() - self._window_s
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


class MemorySendLimits:
    """Implements `SendLimits` in this process's memory (the embedded mode): moving windows of a
    second for the whole bot and of a minute per group, as the Redis ones (bot.stores.send_limits)
    count them, without the `limits` library (~3 MiB of imports)."""

    def __init__(
        self, *, per_second: int, per_group_minute: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._clock = clock
        self._overall = SlidingWindow(per_second, clock, window_s=1.0)
        self._groups = SlidingWindow(per_group_minute, clock)
        self._idle_forgotten_at = clock()

    async def admit(self, group: str | None) -> None:
        while True:
            wait_s = self._overall.wait_s("overall")
            if group is not None:
                wait_s = max(wait_s, self._groups.wait_s(group))
            if wait_s == 0.0:
                break
            await asyncio.sleep(min(_WAIT_MAX_S, wait_s))
        self._overall.take("overall", 1)
        if group is not None:
            self._groups.take(group, 1)
        if self._clock() - self._idle_forgotten_at >= WINDOW_S:
            self._idle_forgotten_at = self._clock()
            self._groups.forget_idle()
