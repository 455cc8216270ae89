"""How jobs run: the download cap, timeouts, the working indicator, and clean-up when stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest

from bot.intake import BUSY_TEXT, RESTARTING_TEXT, SLOW_DOWN_TEXT
from tests.harness import is_status, jobs_done, running_bot, tiktok_serving, until
from tests.harness import link as tiktok_link
from tests.standins.clips import Clip
from tests.standins.telegram_api import ApiCall, FakeBotApi
from tests.standins.tiktok import TikTokStandIn

POSTS = [f"73012345678901234{n:02d}" for n in range(4)]
link = partial(tiktok_link, author="dancer")


@pytest.fixture
async def tiktok(h264_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with tiktok_serving(h264_clip, *POSTS) as tt:
        yield tt


@pytest.mark.parametrize("cap", [1, 2])
async def test_a_burst_of_links_queues_behind_the_download_cap(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path, cap: int
) -> None:
    tiktok.media_delay_s = 0.3
    async with running_bot(tiktok, tmp_path / "data", telegram=api, max_concurrent_downloads=cap):
        for n, post in enumerate(POSTS):
            api.inject_message(link(post), chat_id=2000 + n)
        await api.wait_for_call("sendVideo", count=len(POSTS))
    assert tiktok.max_concurrent_media == cap


async def test_a_download_over_the_time_limit_gets_the_timeout_reason(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    tiktok.media_delay_s = 2.5
    async with running_bot(tiktok, tmp_path / "data", telegram=api, download_timeout_s=1):
        api.inject_message(link(POSTS[0]))
        [call] = await api.wait_for_call("sendMessage")
    assert call.params["text"] == "The download timed out, please try again."
    assert api.calls_to("sendVideo") == []


async def test_the_chat_shows_upload_video_until_the_clip_is_sent(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    tiktok.media_delay_s = 4.5
    async with running_bot(tiktok, tmp_path / "data", telegram=api):
        api.inject_message(link(POSTS[0]), chat_id=3000)
        [video] = await api.wait_for_call("sendVideo")
    actions = [c for c in api.calls_to("sendChatAction") if c.params["chat_id"] == 3000]
    assert [a.params["action"] for a in actions] == ["upload_video", "upload_video"]
    assert 3.5 <= actions[1].at - actions[0].at <= 5.0
    assert actions[-1].at < video.at


async def test_stopping_mid_download_removes_the_job_directory_and_says_restarting(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    tiktok.media_delay_s = 1.0
    data_dir = tmp_path / "data"
    async with running_bot(tiktok, data_dir, telegram=api, shutdown_grace_s=0):
        api.inject_message(link(POSTS[0]))
        await tiktok.wait_for_media_request()
        assert len(list((data_dir / "jobs").iterdir())) == 1
    # running_bot asserts that the jobs directory is empty once the bot has stopped.
    assert api.calls_to("sendVideo") == []
    [notice] = api.calls_to("sendMessage")
    assert notice.params["text"] == RESTARTING_TEXT


async def test_requests_for_the_same_clip_at_once_share_one_download(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    tiktok.media_delay_s = 0.5
    async with running_bot(tiktok, tmp_path / "data", telegram=api, rate_limit_user_per_min=1000):
        for n in range(100):
            api.inject_message(link(POSTS[0]), chat_id=4000 + n)
        videos = await api.wait_for_call("sendVideo", count=100, timeout=60)
    assert tiktok.media_requests == 1
    assert sorted(v.params["chat_id"] for v in videos) == [4000 + n for n in range(100)]
    assert len({api.video_bytes(v) for v in videos}) == 1
    # One upload; the others resend by the file_id it returned.
    assert sum(1 for v in videos if v.files) == 1


async def test_a_user_over_the_rate_limit_hears_it_once_then_silence(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    async with running_bot(
        tiktok, tmp_path / "data", telegram=api, rate_limit_user_per_min=2
    ) as bot:
        for post in POSTS:
            api.inject_message(link(post), chat_id=-1007, chat_type="group", user_id=77)
        await api.wait_for_call("sendVideo", count=2)
        await jobs_done(bot)
    [notice] = api.calls_to("sendMessage")
    assert notice.params["text"] == SLOW_DOWN_TEXT
    assert len(api.calls_to("sendVideo")) == 2


async def test_a_full_queue_answers_busy_at_once(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    tiktok.media_delay_s = 1.0
    async with running_bot(tiktok, tmp_path / "data", telegram=api, workers=1, queue_size=1):
        for n, post in enumerate(POSTS):
            api.inject_message(link(post), chat_id=5000 + n)
        await until(lambda: len(said(api)) >= 2)
        busy = said(api)
        assert tiktok.media_requests <= 1
        videos = await api.wait_for_call("sendVideo", count=2)
    assert {call.params["text"] for call in busy} == {BUSY_TEXT}
    answered = {call.params["chat_id"] for call in (*busy, *videos)}
    assert answered == {5000, 5001, 5002, 5003}


def said(api: FakeBotApi) -> list[ApiCall]:
    """The bot's messages that are no status line of a long job."""
    return [call for call in api.calls_to("sendMessage") if not is_status(call.params["text"])]
