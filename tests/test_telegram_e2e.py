"""The real bot (python-telegram-bot, yt-dlp, ffmpeg) against the TikTok and Bot API stand-ins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.runtime import Reshare
from tests.harness import answers, assert_plays, jobs_done, uploaded_video
from tests.standins.clips import Clip
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import TikTokStandIn

TOKEN = "123456:TEST-e2e-token"
POST = "7301234567890123456"
HEVC_POST = "7301234567890123457"
SECOND_POST = "7301234567890123458"
PRIVATE_POST = "7301234567890000001"
REMOVED_POST = "7301234567890000002"
REGION_POST = "7301234567890000003"
LOGIN_POST = "7301234567890000004"


@pytest.fixture
async def tiktok(h264_clip: Clip, hevc_clip: Clip, tall_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        tt.add_video(POST, h264_clip, author="dancer", desc="a small dance #fyp")
        tt.add_video(HEVC_POST, hevc_clip, author="hevcfan", desc="hevc only")
        tt.add_video(SECOND_POST, tall_clip, author="second", desc="the second clip")
        tt.add_status(PRIVATE_POST, 10216)
        tt.add_status(REMOVED_POST, 10204)
        tt.add_status(REGION_POST, 10231)
        tt.add_login_wall(LOGIN_POST)
        tt.add_short_link("ZMshort1", f"/@dancer/video/{POST}")
        tt.add_short_link("ZTshort2", f"/@dancer/video/{POST}", host="vt.tiktok.com")
        tt.add_short_link("ZPshort3", f"/@dancer/video/{POST}", host="www.tiktok.com")
        yield tt


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(token=TOKEN) as server:
        yield server


def assert_shaped_like(params: dict[str, Any], clip: Clip) -> None:
    assert (params["width"], params["height"]) == (clip.width, clip.height)
    assert params["duration"] == round(clip.duration)
    assert params["supports_streaming"] is True


@pytest.mark.parametrize(
    "link",
    [
        f"https://www.tiktok.com/@dancer/video/{POST}",
        f"https://www.tiktok.com/@dancer/video/{POST}?is_from_webapp=1&sender_device=pc",
        f"tiktok.com/@dancer/video/{POST}",
        f"https://m.tiktok.com/v/{POST}.html",
        f"https://www.tiktok.com/embed/v2/{POST}",
        f"https://www.tiktok.com/share/video/{POST}",
        "https://vm.tiktok.com/ZMshort1/",
        "https://vt.tiktok.com/ZTshort2/",
        "https://www.tiktok.com/t/ZPshort3/",
    ],
)
async def test_every_link_form_comes_back_as_the_clip(
    bot: Reshare, api: FakeBotApi, h264_clip: Clip, tmp_path: Path, link: str
) -> None:
    sent = api.inject_message(f"look at this: {link}!", chat_id=501)
    [call] = await api.wait_for_call("sendVideo")
    assert call.params["chat_id"] == 501
    assert call.params["reply_parameters"]["message_id"] == sent["message_id"]
    assert_shaped_like(call.params, h264_clip)
    caption = call.params["caption"]
    assert caption.startswith("@dancer: a small dance #fyp")
    assert caption.endswith(f"https://www.tiktok.com/@dancer/video/{POST}")
    assert "thumbnail" in call.files or str(call.params.get("thumbnail", "")).startswith(
        "attach://"
    )
    assert_plays(uploaded_video(api, call, tmp_path), h264_clip)
    actions = api.calls_to("sendChatAction")
    assert actions
    assert actions[0].params["action"] == "upload_video"


async def test_hevc_source_arrives_as_h264(
    bot: Reshare, api: FakeBotApi, hevc_clip: Clip, tmp_path: Path
) -> None:
    api.inject_message(f"https://www.tiktok.com/@hevcfan/video/{HEVC_POST}")
    [call] = await api.wait_for_call("sendVideo")
    assert_shaped_like(call.params, hevc_clip)
    assert_plays(uploaded_video(api, call, tmp_path), hevc_clip)


@pytest.mark.parametrize(
    ("post", "reason"),
    [
        (PRIVATE_POST, "This video is private."),
        (REMOVED_POST, "This post was removed or isn't available here."),
        (REGION_POST, "TikTok doesn't show this post in the bot's region."),
        (LOGIN_POST, "TikTok wants a login to show this post."),
    ],
)
async def test_failures_get_one_short_reason(
    bot: Reshare, api: FakeBotApi, tiktok: TikTokStandIn, post: str, reason: str
) -> None:
    sent = api.inject_message(f"https://www.tiktok.com/@someone/video/{post}", chat_id=777)
    [call] = await api.wait_for_call("sendMessage")
    assert call.params["text"] == reason
    assert call.params["chat_id"] == 777
    assert call.params["reply_parameters"]["message_id"] == sent["message_id"]
    assert api.calls_to("sendVideo") == []
    assert tiktok.media_requests == 0


async def test_unknown_short_link_is_reported_removed(bot: Reshare, api: FakeBotApi) -> None:
    api.inject_message("https://vm.tiktok.com/ZMnothere/")
    [call] = await api.wait_for_call("sendMessage")
    assert call.params["text"] == "This post was removed or isn't available here."


async def test_two_links_give_two_videos_in_order(
    bot: Reshare, api: FakeBotApi, h264_clip: Clip, tall_clip: Clip, tmp_path: Path
) -> None:
    api.inject_message(
        f"first https://www.tiktok.com/@second/video/{SECOND_POST} "
        f"then https://vm.tiktok.com/ZMshort1/",
        chat_id=-100500,
        chat_type="supergroup",
    )
    first, second = await api.wait_for_call("sendVideo", count=2)
    assert first.params["caption"].startswith("@second:")
    assert second.params["caption"].startswith("@dancer:")
    assert_plays(uploaded_video(api, first, tmp_path), tall_clip)
    assert_plays(uploaded_video(api, second, tmp_path), h264_clip)


async def test_private_chat_without_a_link_gets_one_line(bot: Reshare, api: FakeBotApi) -> None:
    api.inject_message("hello there, https://example.com/video/1")
    [call] = await api.wait_for_call("sendMessage")
    assert "TikTok" in call.params["text"]
    assert "\n" not in call.params["text"]


async def test_start_and_help_explain_the_bot(bot: Reshare, api: FakeBotApi) -> None:
    api.inject_message("/start", entities=[{"type": "bot_command", "offset": 0, "length": 6}])
    api.inject_message("/help", entities=[{"type": "bot_command", "offset": 0, "length": 5}])
    calls = await api.wait_for_call("sendMessage", count=2)
    for call in calls:
        assert "TikTok link" in call.params["text"]


async def test_group_message_without_a_link_makes_no_call(
    bot: Reshare, api: FakeBotApi, tiktok: TikTokStandIn
) -> None:
    api.inject_message("just chatting, see example.com", chat_id=-100200, chat_type="group")
    api.inject_message("/start@otherbot", chat_id=-100200, chat_type="group", entities=[])
    # A marker message proves the first two were read before we look at the calls.
    api.inject_message(f"https://www.tiktok.com/@x/video/{PRIVATE_POST}", chat_id=-100201,
                       chat_type="group")  # fmt: skip
    await api.wait_for_call("sendMessage")
    assert {call.params["chat_id"] for call in answers(api)} == {-100201}


async def test_bots_and_edits_are_ignored(bot: Reshare, api: FakeBotApi) -> None:
    link = f"https://www.tiktok.com/@dancer/video/{POST}"
    api.inject_message(link, chat_id=-100300, chat_type="group", is_bot=True)
    api.inject_edited_message(link, chat_id=-100300, chat_type="group")
    api.inject_message(f"https://www.tiktok.com/@x/video/{PRIVATE_POST}", chat_id=-100301,
                       chat_type="group")  # fmt: skip
    await api.wait_for_call("sendMessage")
    assert api.calls_to("sendVideo") == []
    assert {call.params["chat_id"] for call in answers(api)} == {-100301}


async def test_link_to_no_post_gets_a_reason_in_private_and_silence_in_groups(
    bot: Reshare, api: FakeBotApi
) -> None:
    api.inject_message("https://www.tiktok.com/@dancer", chat_id=-100400, chat_type="group")
    api.inject_message("https://www.tiktok.com/@dancer?lang=en", chat_id=888)
    [call] = await api.wait_for_call("sendMessage")
    assert call.params["chat_id"] == 888
    assert call.params["text"] == "That link doesn't lead to a video."
    assert {c.params["chat_id"] for c in answers(api)} == {888}


async def test_at_most_three_links_per_message(
    bot: Reshare, api: FakeBotApi, tiktok: TikTokStandIn
) -> None:
    api.inject_message(
        " ".join(
            f"https://www.tiktok.com/@a/video/{post}"
            for post in (POST, SECOND_POST, HEVC_POST, PRIVATE_POST)
        )
    )
    videos = await api.wait_for_call("sendVideo", count=3)
    # The request is handled to the end: a fourth link would have had its answer by now.
    await jobs_done(bot)
    assert [v.params["caption"].split(":")[0] for v in videos] == ["@dancer", "@second", "@hevcfan"]
    assert api.calls_to("sendMessage") == []
    assert tiktok.count(path_prefix=f"/@_/video/{PRIVATE_POST}") == 0
