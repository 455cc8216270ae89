"""The core's retry policy, and how each adapter sorts its library's errors into it."""

from __future__ import annotations

import asyncio
import datetime as dtm
import random

import aiohttp
import discord
import pytest
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TimedOut

from adapters.discord.outbound import core_error as discord_error
from adapters.telegram.outbound import core_error as telegram_error
from adapters.telegram.request import MayHaveArrived, NotSent
from bot.model import FetchError, Reason
from bot.retry import Retrying, RetryPolicy, Unavailable, Unconfirmed

FAST = RetryPolicy(attempts=4, base_delay_s=0.01, max_delay_s=0.02, deadline_s=5.0)


class Platform:
    """A call that fails with the given errors, in order, then answers "sent"."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0

    async def send(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "sent"


async def test_refusals_are_retried_until_the_call_goes_through() -> None:
    platform = Platform(Unavailable("429"), Unavailable("502"))
    assert await Retrying(FAST, random.Random(1)).run(platform.send, "test") == "sent"
    assert platform.calls == 3


async def test_retry_after_is_waited_out() -> None:
    platform = Platform(Unavailable("429", retry_after=0.3))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await Retrying(FAST, random.Random(1)).run(platform.send, "test")
    assert loop.time() - started >= 0.3


async def test_attempts_run_out() -> None:
    platform = Platform(*(Unavailable(f"500 #{n}") for n in range(10)))
    with pytest.raises(Unavailable, match="500 #3"):
        await Retrying(FAST, random.Random(1)).run(platform.send, "test")
    assert platform.calls == FAST.attempts


async def test_a_wait_past_the_deadline_is_not_started() -> None:
    platform = Platform(Unavailable("429", retry_after=10.0))
    with pytest.raises(Unavailable):
        await Retrying(FAST, random.Random(1)).run(platform.send, "test")
    assert platform.calls == 1


@pytest.mark.parametrize("error", [Unconfirmed("read timeout"), FetchError(Reason.TOO_LARGE)])
async def test_what_may_have_arrived_or_is_refused_for_good_is_sent_once(error: Exception) -> None:
    platform = Platform(error)
    with pytest.raises(type(error)):
        await Retrying(FAST, random.Random(1)).run(platform.send, "test")
    assert platform.calls == 1


def test_backoff_grows_with_full_jitter_and_a_cap() -> None:
    policy = RetryPolicy(base_delay_s=1.0, max_delay_s=4.0)
    rng = random.Random(3)
    waits = [policy.backoff(attempt, rng) for attempt in range(1, 8) for _ in range(50)]
    assert all(0 <= wait <= 4.0 for wait in waits)
    assert len(set(waits)) == len(waits)
    # The first retry waits at most base * 2; later ones reach past it, up to the cap.
    assert max(waits[:50]) <= 2.0 < max(waits[50:])


def _caused(err: Exception, cause: BaseException) -> Exception:
    err.__cause__ = cause
    return err


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (NetworkError("Bad Gateway"), Unavailable),
        (NetworkError("Internal Server Error"), Unavailable),
        (_caused(NetworkError("aiohttp.ClientConnectorError"), NotSent("refused")), Unavailable),
        (_caused(TimedOut(), NotSent("aiohttp.ConnectionTimeoutError")), Unavailable),
        (_caused(TimedOut(), TimeoutError("slow")), Unconfirmed),
        (_caused(NetworkError("aiohttp.ClientOSError"), MayHaveArrived("reset")), Unconfirmed),
        (
            _caused(
                NetworkError("aiohttp.ServerDisconnectedError"),
                aiohttp.ServerDisconnectedError(),
            ),
            Unconfirmed,
        ),
        (NetworkError("Request Entity Too Large"), FetchError),
        (BadRequest("Chat not found"), BadRequest),
        (Forbidden("bot was blocked by the user"), Forbidden),
        (OSError("File too large"), OSError),
    ],
)
def test_telegram_errors_are_sorted_by_whether_the_call_was_acted_on(
    error: Exception, kind: type[Exception]
) -> None:
    assert isinstance(telegram_error(error), kind)


def test_telegrams_retry_after_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    translated = telegram_error(RetryAfter(dtm.timedelta(seconds=7)))
    assert isinstance(translated, Unavailable)
    assert translated.retry_after == 7.0


def test_discord_errors_it_retried_itself_are_not_retried_again() -> None:
    class Answer:
        """What discord.HTTPException reads of an aiohttp response."""

        def __init__(self, status: int) -> None:
            self.status = status
            self.reason = "test"

    server_error = discord.DiscordServerError(Answer(500), {"message": "500", "code": 0})  # type: ignore[arg-type]
    too_large = discord.HTTPException(Answer(413), {"message": "too large", "code": 40005})  # type: ignore[arg-type]
    assert discord_error(server_error) is server_error
    assert isinstance(discord_error(too_large), FetchError)
    refused = aiohttp.ClientConnectorError(
        aiohttp.client_reqrep.ConnectionKey("h", 1, False, True, None, None, None),
        ConnectionRefusedError(111, "refused"),
    )
    assert isinstance(discord_error(refused), Unavailable)
    assert isinstance(discord_error(aiohttp.ServerDisconnectedError()), Unconfirmed)
    assert isinstance(discord_error(TimeoutError()), Unconfirmed)
