"""The breakage watch on its own: what it counts, what it tells, and that telling never fails
a fetch (its channels are the adapters' in the end-to-end tests)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.breakage import FIXES, BreakageWatch, alert_text
from bot.metrics import Metrics
from bot.model import FailureKind, FetchError, Reason
from bot.ports import HealthChange, HealthRule
from bot.stores.memory_health import MemoryFetchHealth

RULE = HealthRule(failures=2, attempts=4, window_s=60.0, recover_after=2)


class Notebook:
    """An operator channel that writes down what it is told."""

    def __init__(self) -> None:
        self.told: list[str] = []

    async def tell_operator(self, text: str) -> None:
        self.told.append(text)


class Unreachable:
    async def tell_operator(self, text: str) -> None:
        raise ConnectionError("the platform is down")


class Silent:
    async def tell_operator(self, text: str) -> None:
        await asyncio.Event().wait()


def blocked() -> FetchError:
    return FetchError(Reason.REMOVED, "Your IP address is blocked", FailureKind.BLOCKED_IP)


@pytest.mark.parametrize("kind", list(FailureKind))
def test_each_kind_names_its_fix(kind: FailureKind) -> None:
    text = alert_text(HealthChange("tiktok", True, kind, 5, 10), HealthRule())
    assert FIXES[kind] in text
    assert "5 of the last 10 within 10 min" in text


def test_the_fixes_name_what_to_change() -> None:
    assert "update yt-dlp" in FIXES[FailureKind.EXTRACTION]
    assert "DOWNLOAD_COOKIES_FILE" in FIXES[FailureKind.CHALLENGE]
    assert "DOWNLOAD_PROXY" in FIXES[FailureKind.CHALLENGE]
    assert "DOWNLOAD_PROXY" in FIXES[FailureKind.BLOCKED_IP]
    assert "DOWNLOAD_COOKIES_FILE" in FIXES[FailureKind.LOGIN_WALL]


async def test_the_post_s_own_failures_do_not_count_against_the_site() -> None:
    notebook = Notebook()
    watch = BreakageWatch(MemoryFetchHealth(RULE), Metrics(), RULE, [notebook])
    for _ in range(5):
        await watch.record("tiktok", FetchError(Reason.PRIVATE, "private"))
    assert notebook.told == []
    assert await watch.incident("tiktok") is None


async def test_a_channel_that_fails_or_hangs_does_not_stop_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    notebook = Notebook()
    watch = BreakageWatch(
        MemoryFetchHealth(RULE), Metrics(), RULE, [Unreachable(), Silent()], tell_timeout_s=0.2
    )
    watch.tell(notebook)
    with caplog.at_level(logging.WARNING, logger="bot.breakage"):
        await watch.record("tiktok", blocked())
        await watch.record("tiktok", blocked())
    [told] = notebook.told
    assert FIXES[FailureKind.BLOCKED_IP] in told
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors == [told]
    assert sum("could not tell the operator" in r.getMessage() for r in caplog.records) == 2
    assert await watch.incident("tiktok") is FailureKind.BLOCKED_IP
    await watch.record("tiktok", None)
    await watch.record("tiktok", None)
    assert len(notebook.told) == 2
    assert "work again" in notebook.told[1]
    assert await watch.incident("tiktok") is None
