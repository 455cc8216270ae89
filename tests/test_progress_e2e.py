"""A long job shows how far it has come: one status message (Telegram) or the interaction's own
response (Discord), changed at most every 3 s, gone once the video is there."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from bot.status import STATUS_AFTER_S, STATUS_EVERY_S
from tests.harness import answers_to, link, replies_to, running_bot, until
from tests.standins.clips import Clip, make_clip
from tests.standins.discord_api import FakeDiscord, RestCall
from tests.standins.telegram_api import ApiCall, FakeBotApi
from tests.standins.tiktok import TikTokStandIn

SLOW_POST = "7301234567890123470"
QUICK_POST = "7301234567890123471"
FAT_POST = "7301234567890123472"
SLOWER_POST = "7301234567890123473"
# The slow posts' media arrive over this long: room for a status and one or two edits.
DOWNLOAD_S = 8.0
SLOWER_DOWNLOAD_S = 11.0
STATUS_METHODS = ("sendMessage", "editMessageText")
DOWNLOADING = re.compile(r"Downloading… (\d+)%")
COMPRESSING = re.compile(r"Compressing to fit 2 MB… (\d+)%")


@pytest.fixture(scope="module")
def fat_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """36 s of 720x1280 at 3 Mbit/s (~13 MB): a re-encode to fit 2 MB takes well over the 3 s
    before a status shows, also on a fast idle machine."""
    return make_clip(
        tmp_path_factory.mktemp("clips") / "fat.mp4",
        duration=36.0,
        width=720,
        height=1280,
        bitrate="3M",
    )


@pytest.fixture
async def tiktok(h264_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        tt.add_video(SLOW_POST, h264_clip, bytes_per_s=int(h264_clip.size / DOWNLOAD_S))
        tt.add_video(SLOWER_POST, h264_clip, bytes_per_s=int(h264_clip.size / SLOWER_DOWNLOAD_S))
        tt.add_video(QUICK_POST, h264_clip)
        yield tt


def status_calls(api: FakeBotApi) -> list[ApiCall]:
    return [call for call in api.calls if call.method in STATUS_METHODS]


def assert_spaced(calls: Sequence[ApiCall | RestCall]) -> None:
    """No two status calls closer together than the status may change."""
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(calls)]
    assert all(gap >= STATUS_EVERY_S for gap in gaps), gaps


def percents(pattern: re.Pattern[str], calls: list[ApiCall]) -> list[int]:
    return [int(m.group(1)) for call in calls if (m := pattern.fullmatch(call.params["text"]))]


async def test_a_slow_download_shows_its_progress_and_the_status_goes_with_the_video(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", telegram=api):
        asked = api.inject_message(link(SLOW_POST), chat_id=601)
        [video] = await api.wait_for_call("sendVideo", timeout=30)
        [removed] = await api.wait_for_call("deleteMessage", timeout=10)
    first, *edits = status_calls(api)
    assert first.method == "sendMessage"
    assert first.params["reply_parameters"]["message_id"] == asked["message_id"]
    assert first.params["disable_notification"] is True
    assert edits
    assert {call.method for call in edits} == {"editMessageText"}
    status_id = first.result["message_id"]
    assert {call.params["message_id"] for call in edits} == {status_id}
    shown = percents(DOWNLOADING, [first, *edits])
    assert len(shown) >= 2
    assert shown == sorted(shown)
    assert shown[0] < shown[-1]
    assert_spaced([first, *edits])
    # Shown only once the request has waited (the chat action comes as the fetch starts).
    working = api.calls_to("sendChatAction")[0]
    assert first.at - working.at >= STATUS_AFTER_S - 0.5
    assert removed.params["message_id"] == status_id
    assert api.calls.index(removed) > api.calls.index(video)
    assert api.deleted(601, status_id)
    [reply] = replies_to(api, asked)
    assert "video" in reply


async def test_a_long_re_encode_shows_compressing_to_fit_the_budget(
    tiktok: TikTokStandIn, api: FakeBotApi, fat_clip: Clip, tmp_path: Path
) -> None:
    tiktok.add_video(FAT_POST, fat_clip)
    async with running_bot(tiktok, tmp_path / "data", telegram=api, telegram_upload_limit_mb=2):
        asked = api.inject_message(link(FAT_POST), chat_id=602)
        await api.wait_for_call("sendVideo", timeout=60)
        await api.wait_for_call("deleteMessage", timeout=10)
    calls = status_calls(api)
    assert percents(COMPRESSING, calls), [call.params["text"] for call in calls]
    assert_spaced(calls)
    [reply] = replies_to(api, asked)
    assert "video" in reply


async def test_a_rate_limited_status_edit_is_skipped_not_retried(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    api.fail_next("editMessageText", 429, retry_after=1)
    async with running_bot(tiktok, tmp_path / "data", telegram=api):
        asked = api.inject_message(link(SLOWER_POST), chat_id=603)
        await api.wait_for_call("sendVideo", timeout=30)
        await api.wait_for_call("deleteMessage", timeout=10)
    first, refused, *later = status_calls(api)
    assert (first.method, refused.method) == ("sendMessage", "editMessageText")
    assert refused.result is None  # answered 429
    # The next edit comes in its own time, with newer progress, not as a retry of this one.
    [after] = later[:1]
    assert after.at - refused.at >= STATUS_EVERY_S
    assert after.params["text"] != refused.params["text"]
    assert_spaced([first, refused, *later])
    assert api.deleted(603, first.result["message_id"])
    [reply] = replies_to(api, asked)
    assert "video" in reply


async def test_a_quick_job_shows_no_status_and_neither_does_a_cached_one(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", telegram=api):
        api.inject_message(link(QUICK_POST), chat_id=604)
        await api.wait_for_call("sendVideo", timeout=30)
        api.inject_message(link(QUICK_POST), chat_id=605)
        await api.wait_for_call("sendVideo", count=2, timeout=30)
    assert status_calls(api) == []
    assert api.calls_to("deleteMessage") == []
    assert tiktok.media_requests == 1


async def test_a_discord_command_shows_the_stage_in_its_response_until_the_video(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        interaction = discord_api.inject_slash_command("download", {"url": link(SLOW_POST)})
        webhook = f"/webhooks/{discord_api.application_id}/{interaction['token']}"
        [followup] = await discord_api.wait_for_request("POST", webhook, timeout=30)
        [removed] = await discord_api.wait_for_request(
            "DELETE", webhook + "/messages/@original", timeout=10
        )
        await until(lambda: bool(answers_to(discord_api, interaction)))
    edits = discord_api.requests_to("PATCH", webhook + "/messages/@original")
    assert edits
    assert all(edit.status == 200 for edit in edits)
    shown = [int(m.group(1)) for e in edits if (m := DOWNLOADING.fullmatch(e.json["content"]))]
    assert shown
    assert shown == sorted(shown)
    assert_spaced(edits)
    assert edits[-1].at < followup.at < removed.at
    [answer] = answers_to(discord_api, interaction)
    assert [attachment["filename"] for attachment in answer["attachments"]] == [f"{SLOW_POST}.mp4"]
