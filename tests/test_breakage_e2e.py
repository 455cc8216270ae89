"""TikTok breaking, end to end: the real bot, real yt-dlp, the stand-in refusing on command.

The operator hears of an incident once, with the likely fix, in every channel configured (a
Telegram chat, a Discord channel, an ERROR log line), and once more when it is over; users get
the honest line meanwhile; a link that just failed is answered from memory, not fetched again.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from bot.breakage import FIXES
from bot.model import FailureKind, Reason
from tests.harness import answers, link, running_bot, tiktok_serving, until
from tests.redis_server import RedisServer
from tests.standins.clips import Clip
from tests.standins.discord_api import FakeDiscord
from tests.standins.telegram_api import ApiCall, FakeBotApi
from tests.standins.tiktok import Fault, TikTokStandIn

# See tests/test_tiktok_faults.py: yt-dlp leaves a refused media response's socket unclosed.
pytestmark = [
    pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning"),
    pytest.mark.usefixtures("collect_leaked_sockets"),
]

POSTS = [f"73100000000000000{n:02d}" for n in range(12)]
FAST: dict[str, Any] = {"download_timeout_s": 15, "download_retry_delay_s": 0.01}
OPERATOR_CHAT = 5005
OPERATOR_GUILD = 1_300_000_000_000_000_900
OPERATOR_CHANNEL = 1_300_000_000_000_000_901


def pages(tt: TikTokStandIn, post: str) -> int:
    return sum(1 for r in tt.requests if r.host == tt.WEB_HOST and r.path.endswith(f"/{post}"))


def texts_to(api: FakeBotApi, chat_id: int) -> list[str]:
    return [
        str(call.params["text"])
        for call in api.calls_to("sendMessage")
        if int(call.params["chat_id"]) == chat_id
    ]


async def ask(api: FakeBotApi, post: str, chat_id: int) -> str:
    """Send a post's link from a private chat of its own; the method of the one answer and,
    for a message, its text."""

    def replies() -> list[ApiCall]:
        return [
            c
            for c in answers(api)
            if c.method in ("sendVideo", "sendMessage") and int(c.params["chat_id"]) == chat_id
        ]

    api.inject_message(link(post), chat_id=chat_id, user_id=chat_id)
    await until(lambda: bool(replies()), within_s=60)
    [reply] = replies()
    return "video" if reply.method == "sendVideo" else str(reply.params["text"])


@pytest.fixture
async def tiktok(h264_clip: Clip) -> Any:
    async with tiktok_serving(h264_clip, *POSTS) as tt:
        yield tt


async def test_the_operator_hears_of_an_incident_once_and_of_the_recovery_once(
    tiktok: TikTokStandIn,
    api: FakeBotApi,
    discord_api: FakeDiscord,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.add_chat(OPERATOR_CHAT)
    discord_api.add_guild(OPERATOR_GUILD, channel_id=OPERATOR_CHANNEL)
    tiktok.inject(Fault.CHALLENGE, times=None)
    async with running_bot(
        tiktok,
        tmp_path / "data",
        telegram=api,
        discord=discord_api,
        operator_chat_id=OPERATOR_CHAT,
        operator_discord_channel_id=OPERATOR_CHANNEL,
        **FAST,
    ) as bot:
        with caplog.at_level(logging.ERROR, logger="bot.breakage"):
            said = [await ask(api, post, 2000 + n) for n, post in enumerate(POSTS[:7])]
        assert said == [Reason.BLOCKED.message] * 7
        [incident] = texts_to(api, OPERATOR_CHAT)
        assert FIXES[FailureKind.CHALLENGE] in incident
        assert "5 of the last 5" in incident
        [posted] = discord_api.messages_in(OPERATOR_CHANNEL)
        assert posted["content"] == incident
        assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [incident]

        # TikTok lets us in again: a link that just failed is still answered from memory...
        tiktok.clear_faults()
        asked_before = pages(tiktok, POSTS[0])
        assert await ask(api, POSTS[0], 3000) == Reason.BLOCKED.message
        assert pages(tiktok, POSTS[0]) == asked_before
        # ...new ones are fetched, and three in a row end the incident.
        assert [await ask(api, post, 3001 + n) for n, post in enumerate(POSTS[7:10])] == [
            "video"
        ] * 3
        incident_told, recovery = texts_to(api, OPERATOR_CHAT)
        assert incident_told == incident
        assert "work again" in recovery
        assert [m["content"] for m in discord_api.messages_in(OPERATOR_CHANNEL)] == [
            incident,
            recovery,
        ]
        metrics = bot.engine.metrics.render().decode()
    assert 'reshare_fetches_total{outcome="challenge",site="tiktok"} 7.0' in metrics
    assert 'reshare_fetches_total{outcome="ok",site="tiktok"} 3.0' in metrics


async def test_a_failure_is_remembered_for_every_bot_sharing_redis(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path, redis_server: RedisServer
) -> None:
    tiktok.add_status(POSTS[11], 10216)
    async with FakeBotApi(token="2222222:another-bot-sharing-the-same-redis") as other:
        async with running_bot(
            tiktok, tmp_path / "one", telegram=api, redis_url=redis_server.url, **FAST
        ):
            assert await ask(api, POSTS[11], 4000) == Reason.PRIVATE.message
        asked = pages(tiktok, POSTS[11])
        async with running_bot(
            tiktok, tmp_path / "two", telegram=other, redis_url=redis_server.url, **FAST
        ):
            assert await ask(other, POSTS[11], 4001) == Reason.PRIVATE.message
        assert pages(tiktok, POSTS[11]) == asked
    client = Redis.from_url(redis_server.url)
    try:
        assert await client.pttl(f"reshare:failed:tiktok:{POSTS[11]}") > 0
    finally:
        await client.aclose()


async def test_the_cooldown_can_be_turned_off(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    tiktok.add_status(POSTS[11], 10216)
    async with running_bot(
        tiktok, tmp_path / "data", telegram=api, failed_link_cooldown_s=0, **FAST
    ):
        assert await ask(api, POSTS[11], 4100) == Reason.PRIVATE.message
        assert await ask(api, POSTS[11], 4101) == Reason.PRIVATE.message
    assert pages(tiktok, POSTS[11]) == 2


async def test_while_tiktok_blocks_our_address_users_hear_it_instead_of_removed(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    api.add_chat(OPERATOR_CHAT)
    # TikTok answers a blocked address with the status it also gives removed posts (10204).
    tiktok.inject(Fault.BLOCKED_IP, times=None)
    async with running_bot(
        tiktok, tmp_path / "data", telegram=api, operator_chat_id=OPERATOR_CHAT, **FAST
    ):
        said = [await ask(api, post, 6000 + n) for n, post in enumerate(POSTS[:6])]
        [incident] = texts_to(api, OPERATOR_CHAT)
    # One removed post is believed; five in a row are an incident, told as such from then on.
    assert said == [Reason.REMOVED.message] * 4 + [Reason.BLOCKED.message] * 2
    assert FIXES[FailureKind.BLOCKED_IP] in incident
