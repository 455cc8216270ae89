"""The real bot against a Discord stand-in that misbehaves on the test's command: every request
gets one answer (the video, or one reason), never two, and the bot goes on working after."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.outbound import reason_text
from adapters.runtime import Reshare
from bot.model import Reason
from tests.harness import answers_to, assert_plays, jobs_done, link, running_bot, until
from tests.standins.clips import Clip
from tests.standins.discord_api import (
    DEFAULT_USER_ID,
    TRANSIENT_FAULTS,
    FakeDiscord,
    RateLimitScope,
)
from tests.standins.tiktok import TikTokStandIn

POST = "7301234567890123456"
SECOND_POST = "7301234567890123458"
PRIVATE_POST = "7301234567890000001"
EPHEMERAL = 1 << 6


@pytest.fixture
async def tiktok(h264_clip: Clip, tall_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        tt.add_video(POST, h264_clip, author="dancer", desc="a small dance")
        tt.add_video(SECOND_POST, tall_clip, author="second", desc="the second clip")
        tt.add_status(PRIVATE_POST, 10216)
        yield tt


def webhook(dc: FakeDiscord, interaction: dict[str, Any]) -> str:
    return f"/webhooks/{dc.application_id}/{interaction['token']}"


async def ask(
    bot: Reshare, dc: FakeDiscord, post: str, *, user_id: int = DEFAULT_USER_ID
) -> dict[str, Any]:
    """Run /download and wait until the request has been handled to the end, retries too."""
    interaction = dc.inject_slash_command("download", {"url": link(post)}, user_id=user_id)
    # A request to answer it shows it was queued; the queue then drains once it is answered.
    channel_posts = f"/channels/{interaction['channel_id']}/messages$"
    await until(
        lambda: bool(
            dc.requests_to("*", webhook(dc, interaction)) or dc.requests_to("POST", channel_posts)
        )
    )
    await jobs_done(bot)
    return interaction


def video_of(dc: FakeDiscord, message: dict[str, Any], directory: Path) -> Path:
    [attachment] = message["attachments"]
    path = directory / f"{message['id']}-{attachment['filename']}"
    path.write_bytes(dc.attachment_bytes(attachment))
    return path


def replies_in(dc: FakeDiscord, channel: int, message: dict[str, Any]) -> list[dict[str, Any]]:
    """The messages in `channel` that reply to `message`."""
    return [
        m
        for m in dc.messages_in(channel)
        if m.get("message_reference", {}).get("message_id") == message["id"]
    ]


async def assert_still_works(bot: Reshare, dc: FakeDiscord, clip: Clip, directory: Path) -> None:
    interaction = await ask(bot, dc, SECOND_POST)
    [answer] = answers_to(dc, interaction)
    assert_plays(video_of(dc, answer, directory), clip)


@pytest.mark.parametrize("scope", ["user", "shared", "global"])
async def test_a_rate_limited_followup_is_waited_out_and_sent_once(
    tiktok: TikTokStandIn,
    discord_api: FakeDiscord,
    h264_clip: Clip,
    tall_clip: Clip,
    tmp_path: Path,
    scope: RateLimitScope,
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api) as bot:
        discord_api.fail_next("POST", "/webhooks/", retry_after=0.2, scope=scope)
        interaction = await ask(bot, discord_api, POST)
        limited, sent = discord_api.requests_to("POST", webhook(discord_api, interaction))
        assert limited.status == 429
        assert limited.response["global"] is (scope == "global")
        assert sent.status == 200
        assert sent.at - limited.at >= 0.2
        [answer] = answers_to(discord_api, interaction)
        assert_plays(video_of(discord_api, answer, tmp_path), h264_clip)
        await assert_still_works(bot, discord_api, tall_clip, tmp_path)


async def test_a_global_rate_limit_holds_channel_replies_and_each_arrives_once(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, h264_clip: Clip, tmp_path: Path
) -> None:
    channel = discord_api.channel_id
    async with running_bot(
        tiktok, tmp_path / "data", discord=discord_api, discord_message_content=True
    ) as bot:
        discord_api.fail_next("POST", f"/channels/{channel}/messages", scope="global")
        message = discord_api.inject_message(f"look {link(POST)}")
        await discord_api.wait_for_request("POST", f"/channels/{channel}/messages$", count=2)
        await jobs_done(bot)
    limited, sent = discord_api.requests_to("POST", f"/channels/{channel}/messages$")
    assert (limited.status, sent.status) == (429, 200)
    [reply] = replies_in(discord_api, channel, message)
    assert_plays(video_of(discord_api, reply, tmp_path), h264_clip)


async def test_a_refused_preview_suppression_does_not_undo_a_sent_video(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, h264_clip: Clip, tmp_path: Path
) -> None:
    """Hiding the link's preview comes after the video was posted: its failure is no answer."""
    channel = discord_api.channel_id
    async with running_bot(
        tiktok, tmp_path / "data", discord=discord_api, discord_message_content=True
    ) as bot:
        discord_api.fail_next("PATCH", f"/channels/{channel}/messages/", status=400, code=50035)
        message = discord_api.inject_message(f"look {link(POST)}")
        await discord_api.wait_for_request("PATCH", f"/channels/{channel}/messages/")
        await jobs_done(bot)
    [sent] = discord_api.requests_to("POST", f"/channels/{channel}/messages$")
    assert sent.status == 200
    assert discord_api.reactions_on(message["id"]) == []
    [reply] = replies_in(discord_api, channel, message)
    assert_plays(video_of(discord_api, reply, tmp_path), h264_clip)


async def test_a_server_error_is_retried_and_the_video_sent_once(
    tiktok: TikTokStandIn,
    discord_api: FakeDiscord,
    h264_clip: Clip,
    tall_clip: Clip,
    tmp_path: Path,
) -> None:
    """discord.py itself retries a 500 (after a second); the core adds no second layer."""
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api) as bot:
        discord_api.fail_next("POST", "/webhooks/", status=500)
        interaction = await ask(bot, discord_api, POST)
        failed, sent = discord_api.requests_to("POST", webhook(discord_api, interaction))
        assert (failed.status, sent.status) == (500, 200)
        [answer] = answers_to(discord_api, interaction)
        assert_plays(video_of(discord_api, answer, tmp_path), h264_clip)
        await assert_still_works(bot, discord_api, tall_clip, tmp_path)


async def test_a_413_becomes_one_reason_only_the_invoker_sees(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tall_clip: Clip, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api) as bot:
        discord_api.fail_next(
            "POST", "/webhooks/", status=413, code=40005, message="Request entity too large"
        )
        interaction = await ask(bot, discord_api, POST)
        [answer] = answers_to(discord_api, interaction)
        assert answer["content"] == reason_text(Reason.TOO_LARGE)
        assert answer["flags"] & EPHEMERAL
        assert answer["attachments"] == []
        await assert_still_works(bot, discord_api, tall_clip, tmp_path)


async def test_a_token_past_its_15_minutes_answers_in_the_channel_once(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    """Every followup answers 50027 Invalid Webhook Token: the video goes to the channel,
    naming the requester, once."""
    async with (
        FakeDiscord(token_lifetime=0.0) as dc,
        running_bot(tiktok, tmp_path / "data", discord=dc) as bot,
    ):
        interaction = await ask(bot, dc, POST)
        [refused] = dc.requests_to("POST", webhook(dc, interaction))
        assert refused.response["code"] == 50027
        [answer] = answers_to(dc, interaction)
        assert answer["content"].startswith(f"<@{DEFAULT_USER_ID}> @dancer: a small dance")
        assert answer["mentions"][0]["id"] == str(DEFAULT_USER_ID)
        assert_plays(video_of(dc, answer, tmp_path), h264_clip)


async def test_a_reason_for_a_gone_token_goes_to_the_channel_once(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    async with (
        FakeDiscord(token_lifetime=0.0) as dc,
        running_bot(tiktok, tmp_path / "data", discord=dc) as bot,
    ):
        interaction = await ask(bot, dc, PRIVATE_POST)
        [answer] = answers_to(dc, interaction)
        assert answer["content"] == f"<@{DEFAULT_USER_ID}> {Reason.PRIVATE.message}"


async def test_an_interaction_acknowledged_too_late_is_still_answered_once(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    """The callback answers 10062 Unknown interaction (past the 3 s): the request is kept and
    answered in the channel."""
    async with (
        FakeDiscord(ack_deadline=0.0) as dc,
        running_bot(tiktok, tmp_path / "data", discord=dc) as bot,
    ):
        interaction = await ask(bot, dc, POST)
        [callback] = dc.requests_to("POST", f"/interactions/{interaction['id']}/")
        assert callback.response["code"] == 10062
        [answer] = answers_to(dc, interaction)
        assert_plays(video_of(dc, answer, tmp_path), h264_clip)


async def test_an_interaction_expired_mid_job_is_answered_in_the_channel(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, h264_clip: Clip, tmp_path: Path
) -> None:
    """The stand-in's expiry of one interaction, as a job outlasting 15 minutes would see it."""
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api) as bot:
        discord_api.fail_next("POST", "/webhooks/", status=500)  # holds the answer back 1 s
        interaction = discord_api.inject_slash_command("download", {"url": link(POST)})
        await discord_api.wait_for_request("POST", webhook(discord_api, interaction))
        discord_api.expire_interaction(interaction["id"])
        await until(lambda: bool(answers_to(discord_api, interaction)))
        await jobs_done(bot)
        _, refused = discord_api.requests_to("POST", webhook(discord_api, interaction))
        assert refused.response["code"] == 50027
        [answer] = answers_to(discord_api, interaction)
        assert_plays(video_of(discord_api, answer, tmp_path), h264_clip)


async def test_random_transient_faults_still_answer_each_request_once(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    """A small run of the seeded random mode the fault run uses: every request answered once."""
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api) as bot:
        discord_api.fail_randomly(random.Random(6), 0.3, TRANSIENT_FAULTS)
        asked = [
            discord_api.inject_slash_command("download", {"url": link(post)}, user_id=800 + n)
            for n, post in enumerate([POST, PRIVATE_POST, SECOND_POST, POST])
        ]
        await until(lambda: all(answers_to(discord_api, i) for i in asked))
        await jobs_done(bot)
        assert discord_api.faults, "the seeded run injected no fault"
        assert [len(answers_to(discord_api, i)) for i in asked] == [1] * len(asked)
