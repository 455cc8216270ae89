"""Noticing that a site broke, and telling the operator once, with the likely fix.

Every fetch by the first path is counted (bot.ports.FetchHealth, shared by every worker in the
distributed mode). When enough of the recent ones failed, the one process whose fetch tipped
the balance logs an ERROR line and writes to the operator's channels; likewise when the site
works again. Meanwhile users get one honest line instead of a generic failure.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from bot.metrics import Metrics
from bot.model import FailureKind, FetchError
from bot.ports import FetchHealth, HealthChange, HealthRule, OperatorChannel

log = logging.getLogger(__name__)

UPDATE_COMMAND = ".venv/bin/pip install -U 'yt-dlp[default,curl-cffi]' gallery-dl"

# What each kind of failure most likely means, and what the operator can do about it.
FIXES: dict[FailureKind, str] = {
    FailureKind.EXTRACTION: (
        f"TikTok pages changed: update yt-dlp ({UPDATE_COMMAND}) and restart the bot"
    ),
    FailureKind.CHALLENGE: (
        "challenge page: add cookies (DOWNLOAD_COOKIES_FILE) or change the proxy (DOWNLOAD_PROXY)"
    ),
    FailureKind.BLOCKED_IP: "this IP is blocked: change DOWNLOAD_PROXY (or add another to it)",
    FailureKind.LOGIN_WALL: (
        "TikTok asks for a login: set DOWNLOAD_COOKIES_FILE to a logged-in session's cookies.txt"
    ),
    FailureKind.SERVER_ERROR: (
        "TikTok's servers fail or time out: usually passes by itself; check DOWNLOAD_PROXY"
    ),
}

_WHAT: dict[FailureKind, str] = {
    FailureKind.EXTRACTION: "pages whose data the extractor cannot read",
    FailureKind.CHALLENGE: "challenge pages",
    FailureKind.BLOCKED_IP: "blocked-IP answers",
    FailureKind.LOGIN_WALL: "login walls",
    FailureKind.SERVER_ERROR: "server errors and timeouts",
}

# Telling the operator must not hold up the user's answer for long.
TELL_TIMEOUT_S = 10.0


def alert_text(change: HealthChange, rule: HealthRule) -> str:
    """The operator's message for a change."""
    if change.broken:
        return (
            f"Reshare: {change.site} fetches are failing ({change.failures} of the last "
            f"{change.attempts} within {rule.window_s / 60:.0f} min, mostly "
            f"{_WHAT[change.kind]}). Likely fix: {FIXES[change.kind]}."
        )
    return (
        f"Reshare: {change.site} fetches work again (the last {rule.recover_after} succeeded); "
        f"the incident of {_WHAT[change.kind]} is over."
    )


class BreakageWatch:
    """Counts fetches, tells the operator about incidents, and knows whether one goes on."""

    def __init__(
        self,
        health: FetchHealth,
        metrics: Metrics,
        rule: HealthRule | None = None,
        channels: Sequence[OperatorChannel] = (),
        *,
        tell_timeout_s: float = TELL_TIMEOUT_S,
    ) -> None:
        self._health = health
        self._metrics = metrics
        self._rule = rule or HealthRule()
        self._channels = list(channels)
        self._tell_timeout_s = tell_timeout_s

    def tell(self, channel: OperatorChannel) -> None:
        """Add a place the operator reads (the adapters add theirs as they start)."""
        self._channels.append(channel)

    async def record(self, site: str, error: FetchError | None) -> None:
        """Count one fetch by the first path; `error` None means it worked."""
        kind = error.kind if error is not None else None
        self._metrics.fetched(site, kind)
        try:
            change = await self._health.record(site, kind)
        except Exception as err:
            log.warning("could not count a fetch of %s: %r", site, err)
            return
        if change is not None:
            self._metrics.incident(site, change.kind, change.broken)
            await self._announce(change)

    async def incident(self, site: str) -> FailureKind | None:
        """The kind of the site's incident going on now; None when none (or unknown)."""
        try:
            return await self._health.incident(site)
        except Exception as err:
            log.warning("could not read the health of %s: %r", site, err)
            return None

    async def _announce(self, change: HealthChange) -> None:
        text = alert_text(change, self._rule)
        log.error("%s", text)
        await asyncio.gather(*(self._send(channel, text) for channel in self._channels))

    async def _send(self, channel: OperatorChannel, text: str) -> None:
        try:
            await asyncio.wait_for(channel.tell_operator(text), self._tell_timeout_s)
        except Exception as err:
            log.warning("could not tell the operator through %s: %r", type(channel).__name__, err)
