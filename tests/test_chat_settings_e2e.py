"""Per-chat settings change what the next request does, end to end with the real bot."""

from __future__ import annotations

from pathlib import Path

from adapters.runtime import Reshare
from bot.chat_settings import AutoDetect, ChatSettings
from tests.harness import jobs_done, link, running_bot, tiktok_serving
from tests.standins.clips import Clip
from tests.standins.telegram_api import FakeBotApi

POST = "7340000000000000001"
GROUP = -500


async def on_request_only(bot: Reshare, chat: str) -> None:
    store = bot.engine.chat_settings
    assert store is not None
    await store.put(chat, ChatSettings(auto_detect=AutoDetect.ON_REQUEST))


async def test_a_group_that_wants_links_answered_on_request_only_gets_just_those(
    api: FakeBotApi, h264_clip: Clip, tmp_path: Path
) -> None:
    async with (
        tiktok_serving(h264_clip, POST) as tiktok,
        running_bot(tiktok, tmp_path / "data", telegram=api) as bot,
    ):
        await on_request_only(bot, f"telegram:chat:{GROUP}")
        pasted = api.inject_message(link(POST), chat_id=GROUP, chat_type="group")
        asked = api.inject_message(f"/download {link(POST)}", chat_id=GROUP, chat_type="group")
        [video] = await api.wait_for_call("sendVideo")
        await jobs_done(bot)
        # A private chat is the person's own: always answered.
        api.inject_message(link(POST), chat_id=501)
        await api.wait_for_call("sendVideo", count=2)
        await jobs_done(bot)
    replied_to = [
        (int(call.params["chat_id"]), call.params["reply_parameters"]["message_id"])
        for call in api.calls_to("sendVideo")
    ]
    assert video.params["reply_parameters"]["message_id"] == asked["message_id"]
    assert (GROUP, pasted["message_id"]) not in replied_to
    assert len(replied_to) == 2
    assert api.calls_to("sendMessage") == []


async def test_by_default_a_pasted_link_is_answered_in_a_group(
    api: FakeBotApi, h264_clip: Clip, tmp_path: Path
) -> None:
    async with (
        tiktok_serving(h264_clip, POST) as tiktok,
        running_bot(tiktok, tmp_path / "data", telegram=api) as bot,
    ):
        pasted = api.inject_message(link(POST), chat_id=GROUP, chat_type="group")
        [video] = await api.wait_for_call("sendVideo")
        await jobs_done(bot)
    assert video.params["reply_parameters"]["message_id"] == pasted["message_id"]
