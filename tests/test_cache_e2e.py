"""Instant replies: a clip fetched once is sent again without a download."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.harness import jobs_done, run_bot, running_bot, serving_env
from tests.redis_server import RedisServer
from tests.standins.clips import Clip
from tests.standins.discord_api import FakeDiscord
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import TikTokStandIn

POST = "7301234567890123456"


@pytest.fixture
async def tiktok(h264_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        tt.add_video(POST, h264_clip, author="dancer", desc="a small dance")
        tt.add_short_link("ZMshort1", f"/@dancer/video/{POST}")
        yield tt


async def test_telegram_resends_by_file_id_for_any_link_form_in_any_chat(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    async with FakeBotApi() as api, running_bot(tiktok, tmp_path / "data", telegram=api) as bot:
        api.inject_message(f"https://www.tiktok.com/@dancer/video/{POST}", chat_id=1)
        [first] = await api.wait_for_call("sendVideo")
        # Until the first job has ended, others join it rather than read the cache.
        await jobs_done(bot)
        api.inject_message("https://vm.tiktok.com/ZMshort1/", chat_id=2, chat_type="group")
        api.inject_message(f"https://m.tiktok.com/v/{POST}.html", chat_id=3)
        _, second, third = await api.wait_for_call("sendVideo", count=3)
    assert tiktok.media_requests == 1
    for again in (second, third):
        assert again.files == {}
        assert isinstance(again.params["video"], str)
        assert again.params["caption"] == first.params["caption"]
        assert (again.params["width"], again.params["height"]) == (
            first.params["width"],
            first.params["height"],
        )
    assert api.video_bytes(second) == api.video_bytes(first)
    # Answered from the cache at once: no "sending video…" in those chats.
    assert {c.params["chat_id"] for c in api.calls_to("sendChatAction")} == {1}


async def test_a_short_and_a_long_link_asked_at_once_share_one_download(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    """The job is the clip's (DESIGN.md section 1), not the link form's: the short link is
    looked up before the job is joined."""
    tiktok.media_delay_s = 0.5
    async with FakeBotApi() as api, running_bot(tiktok, tmp_path / "data", telegram=api):
        api.inject_message("https://vm.tiktok.com/ZMshort1/", chat_id=1)
        api.inject_message(f"https://www.tiktok.com/@dancer/video/{POST}", chat_id=2)
        first, second = await api.wait_for_call("sendVideo", count=2)
    assert tiktok.media_requests == 1
    assert {first.params["chat_id"], second.params["chat_id"]} == {1, 2}


async def test_a_short_link_is_looked_up_once_even_across_a_restart(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    """A short code leads to its post for good: asked again, in another spelling, or after a
    restart on the same DATA_DIR, it is answered without asking TikTok where it leads."""
    data_dir = tmp_path / "data"
    async with running_bot(tiktok, data_dir, telegram=api) as bot:
        api.inject_message("https://vm.tiktok.com/ZMshort1/", chat_id=1)
        await api.wait_for_call("sendVideo")
        await jobs_done(bot)
        api.inject_message("look: http://VM.tiktok.com/ZMshort1?_t=x&_r=1", chat_id=2)
        await api.wait_for_call("sendVideo", count=2)
        await jobs_done(bot)
    assert tiktok.count(host="vm.tiktok.com") == 1
    async with running_bot(tiktok, data_dir, telegram=api) as bot:
        api.inject_message("https://vm.tiktok.com/ZMshort1/", chat_id=3)
        await api.wait_for_call("sendVideo", count=3)
        await jobs_done(bot)
    assert tiktok.count(host="vm.tiktok.com") == 1
    assert tiktok.media_requests == 1


async def test_a_short_link_looked_up_by_one_process_is_known_to_another_through_redis(
    tiktok: TikTokStandIn, api: FakeBotApi, redis_server: RedisServer, tmp_path: Path
) -> None:
    for round_, data_dir in enumerate((tmp_path / "one", tmp_path / "two"), start=1):
        # The mapping is kept before the video is sent: sendVideo says it is there.
        async with running_bot(tiktok, data_dir, telegram=api, redis_url=redis_server.url):
            api.inject_message("https://vm.tiktok.com/ZMshort1/", chat_id=round_)
            await api.wait_for_call("sendVideo", count=round_, timeout=60)
    assert tiktok.count(host="vm.tiktok.com") == 1


async def test_a_refused_file_id_falls_back_to_a_fresh_fetch(
    tiktok: TikTokStandIn, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data_dir = tmp_path / "data"
    async with FakeBotApi() as api, running_bot(tiktok, data_dir, telegram=api) as bot:
        api.inject_message(f"https://www.tiktok.com/@dancer/video/{POST}", chat_id=1)
        await api.wait_for_call("sendVideo")
        await jobs_done(bot)
    # A new Bot API server knows none of the old file_ids, as after a token change.
    caplog.set_level(logging.INFO, logger="bot.service")
    async with FakeBotApi() as api, running_bot(tiktok, data_dir, telegram=api):
        # Another chat: the new stand-in numbers messages from 1 again, and the request journal
        # would take message 1 of chat 1 for a second delivery of one it answered.
        api.inject_message(f"https://www.tiktok.com/@dancer/video/{POST}", chat_id=2)
        refused, fresh = await api.wait_for_call("sendVideo", count=2)
    assert "cached copy refused" in caplog.text
    assert isinstance(refused.params["video"], str)
    assert fresh.files
    assert api.calls_to("sendMessage") == []
    assert tiktok.media_requests == 2


async def test_discord_reuploads_from_the_media_cache_without_a_download(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    async with (
        FakeDiscord() as discord_api,
        running_bot(tiktok, tmp_path / "data", discord=discord_api) as bot,
    ):
        webhooks = []
        for url in (
            f"https://www.tiktok.com/@dancer/video/{POST}",
            "https://vm.tiktok.com/ZMshort1/",
        ):
            interaction = discord_api.inject_slash_command("download", {"url": url})
            webhook = f"/webhooks/{discord_api.application_id}/{interaction['token']}"
            [followup] = await discord_api.wait_for_request("POST", webhook)
            webhooks.append(followup)
            await jobs_done(bot)
    assert tiktok.media_requests == 1
    first, second = webhooks
    assert second.files[0].data == first.files[0].data == h264_clip.path.read_bytes()
    assert second.json["content"] == first.json["content"]


async def test_the_cache_survives_a_restart_of_the_real_process(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    token = "424242:TEST-cache-token"
    async with FakeBotApi(token=token) as api:
        env = serving_env(tmp_path, tiktok, telegram=api)
        for round_ in (1, 2):
            process = await run_bot(tmp_path, env, stdout=asyncio.subprocess.DEVNULL)
            try:
                api.inject_message("https://vm.tiktok.com/ZMshort1/", chat_id=round_)
                await api.wait_for_call("sendVideo", count=round_, timeout=60)
            finally:
                process.send_signal(signal.SIGTERM)
                _, stderr = await asyncio.wait_for(process.communicate(), 30)
            assert process.returncode == 0, stderr.decode()
    first, second = api.calls_to("sendVideo")
    assert first.files
    assert second.files == {}
    assert tiktok.media_requests == 1
