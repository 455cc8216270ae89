"""DOWNLOAD_PROXY's proxies: which to try for a job, and resting the ones TikTok keeps refusing."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from bot.model import FailureKind, FetchError, Reason
from bot.ytdlp_errors import reason_for_error


def read_timeout_s(timeout_s: float) -> float:
    """How long one read may stay silent in a job of `timeout_s`: a silent server is given up
    on, and tried again, well within the deadline."""
    return min(10.0, timeout_s / 4)


@dataclass
class _Standing:
    failures: int = 0  # in a row
    resting_until: float = 0.0


class ProxyPool:
    """The proxies in the order given; one that failed `fail_limit` times in a row (a
    blocked-IP or challenge answer) rests `rest_s` seconds, behind the others.

    Empty means no proxy: every job connects directly. Used from the download threads and
    the event loop alike, so every method holds a lock.
    """

    def __init__(
        self,
        proxies: Sequence[str],
        *,
        rest_s: float = 300.0,
        fail_limit: int = 3,
        clock: Callable[[], float] = time.monotonic,
        listener: Callable[[str, bool], None] | None = None,
    ) -> None:
        """`listener` hears each job's outcome through a proxy (the proxy, whether it worked):
        the download process tells the bot's pool with it."""
        if fail_limit < 1:
            raise ValueError(f"fail_limit must be at least 1, not {fail_limit}")
        self._proxies = tuple(dict.fromkeys(proxies))
        self._rest_s = rest_s
        self._fail_limit = fail_limit
        self._clock = clock
        self._standing = {proxy: _Standing() for proxy in self._proxies}
        self._lock = threading.Lock()
        self._listener = listener

    @property
    def proxies(self) -> tuple[str, ...]:
        """Every proxy, in the order given."""
        return self._proxies

    def __bool__(self) -> bool:
        return bool(self._proxies)

    def order(self) -> list[str]:
        """The proxies to try for a job, in turn: those not resting in the order given, then
        the resting ones, the one whose rest ends soonest first (all resting is no reason to
        give up). Empty: connect directly."""
        now = self._clock()
        with self._lock:
            awake = [p for p in self._proxies if self._standing[p].resting_until <= now]
            resting = sorted(
                (p for p in self._proxies if self._standing[p].resting_until > now),
                key=lambda p: self._standing[p].resting_until,
            )
        return awake + resting

    def failed(self, proxy: str) -> None:
        """TikTok refused a job through `proxy` (blocked address, challenge page)."""
        with self._lock:
            standing = self._standing.get(proxy)
            if standing is None:
                return
            standing.failures += 1
            if standing.failures >= self._fail_limit:
                # Counted on: once the rest is over, one more failure sends it back.
                standing.resting_until = self._clock() + self._rest_s
        if self._listener is not None:
            self._listener(proxy, False)

    def worked(self, proxy: str) -> None:
        """A job got through `proxy`: its count of failures starts again, and it rests no more."""
        with self._lock:
            standing = self._standing.get(proxy)
            if standing is None:
                return
            standing.failures = 0
            standing.resting_until = 0.0
        if self._listener is not None:
            self._listener(proxy, True)

    def resting(self, proxy: str) -> bool:
        """Whether `proxy` is resting now."""
        with self._lock:
            standing = self._standing.get(proxy)
            return standing is not None and standing.resting_until > self._clock()


class ProxyRoute:
    """One job's way through a pool's proxies (none: direct): the next one after each refusal
    of the address (a challenge page, a blocked IP), as yt-dlp or gallery-dl tell it.

    TikTok answers a blocked address and a removed post alike (statusCode 10204), so such an
    answer counts against a proxy only once another proxy answered otherwise; when every
    proxy said the same, it is the post's own.
    """

    def __init__(self, pool: ProxyPool) -> None:
        self._pool = pool
        self._order: list[str | None] = [*pool.order()] or [None]
        self._at = 0
        self._unsure: list[str] = []
        self._refusals: list[tuple[str, FailureKind]] = []

    @property
    def proxy(self) -> str | None:
        return self._order[self._at]

    def worked(self) -> None:
        if self.proxy is not None:
            for proxy in self._unsure:
                self._pool.failed(proxy)
            self._pool.worked(self.proxy)

    def refused(self, text: str, kind: FailureKind) -> bool:
        """Note a refusal through the current proxy; whether there is another to try."""
        proxy = self.proxy
        assert proxy is not None
        self._refusals.append((text, kind))
        if reason_for_error(text) is Reason.REMOVED:
            self._unsure.append(proxy)
        else:
            self._pool.failed(proxy)
        if self._at + 1 < len(self._order):
            self._at += 1
            return True
        return False

    def error(self) -> FetchError:
        """What to tell once every proxy was refused: the post's own reason when they all
        answered alike, else that TikTok is refusing us."""
        reasons = {reason_for_error(text) for text, _ in self._refusals}
        text, kind = self._refusals[-1]
        if len(reasons) == 1:
            return FetchError(reasons.pop(), text, kind)
        for proxy in self._unsure:
            self._pool.failed(proxy)
        return FetchError(Reason.BLOCKED, text, kind)
