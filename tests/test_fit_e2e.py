"""Every clip fits the upload limit: a format that fits, a re-encode, or a reason up front."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.media import probe
from tests.harness import link, running_bot
from tests.standins.clips import Clip
from tests.standins.discord_api import FakeDiscord
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import TikTokStandIn

LARGE_POST = "7301234567890123459"
TWO_FORMATS_POST = "7301234567890123460"
SMALL_POST = "7301234567890123461"
TEN_MIB = 10 * 1024 * 1024


@pytest.fixture
async def tiktok(
    large_clip: Clip, small_rendition: Clip, h264_clip: Clip
) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        tt.add_video(SMALL_POST, h264_clip, author="small")
        tt.add_video(LARGE_POST, large_clip, author="big", desc="large")
        tt.add_video(TWO_FORMATS_POST, large_clip, author="two", extra_clips=[small_rendition])
        yield tt


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


async def test_a_large_clip_is_re_encoded_to_fill_a_10_mib_discord_budget(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, large_clip: Clip, tmp_path: Path
) -> None:
    assert large_clip.size > TEN_MIB
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        interaction = discord_api.inject_slash_command(
            "download", {"url": link(LARGE_POST)}, attachment_size_limit=TEN_MIB
        )
        webhook = f"/webhooks/{discord_api.application_id}/{interaction['token']}"
        [followup] = await discord_api.wait_for_request("POST", webhook, timeout=120)
    [upload] = followup.files
    assert 0.85 * TEN_MIB <= len(upload.data) <= TEN_MIB
    received = tmp_path / "received.mp4"
    received.write_bytes(upload.data)
    found = probe(received)
    assert found.playable
    assert (found.vcodec, found.pix_fmt, found.acodec) == ("h264", "yuv420p", "aac")
    assert found.duration == pytest.approx(large_clip.duration, abs=0.2)
    assert found.width * large_clip.height == found.height * large_clip.width


async def test_a_format_that_fits_is_sent_as_served(
    tiktok: TikTokStandIn,
    discord_api: FakeDiscord,
    small_rendition: Clip,
    tmp_path: Path,
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        interaction = discord_api.inject_slash_command(
            "download", {"url": link(TWO_FORMATS_POST)}, attachment_size_limit=TEN_MIB
        )
        webhook = f"/webhooks/{discord_api.application_id}/{interaction['token']}"
        [followup] = await discord_api.wait_for_request("POST", webhook, timeout=60)
    [upload] = followup.files
    assert sha256(upload.data) == sha256(small_rendition.path.read_bytes())
    assert tiktok.media_requests == 1


async def test_telegram_budget_counts_decimal_megabytes_and_encodes_block_no_one(
    tiktok: TikTokStandIn, large_clip: Clip, tmp_path: Path
) -> None:
    async with FakeBotApi() as api:
        async with running_bot(
            tiktok, tmp_path / "data", telegram=api, telegram_upload_limit_mb=10
        ):
            api.inject_message(link(LARGE_POST), chat_id=1001)
            await tiktok.wait_for_media_request()
            # While the large clip is re-encoded, a clip that fits is fetched and sent.
            api.inject_message(link(SMALL_POST), chat_id=1002)
            first, second = await api.wait_for_call("sendVideo", count=2, timeout=120)
        data = api.video_bytes(second)
    assert (first.params["chat_id"], second.params["chat_id"]) == (1002, 1001)
    assert 8_500_000 <= len(data) <= 10_000_000
    received = tmp_path / "received.mp4"
    received.write_bytes(data)
    found = probe(received)
    assert found.playable
    assert (second.params["width"], second.params["height"]) == (found.width, found.height)
    assert second.params["duration"] == round(found.duration)


async def test_a_clip_longer_than_allowed_gets_the_reason_without_a_media_request(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api, max_duration_s=20):
        interaction = discord_api.inject_slash_command("download", {"url": link(LARGE_POST)})
        webhook = f"/webhooks/{discord_api.application_id}/{interaction['token']}"
        [followup] = await discord_api.wait_for_request("POST", webhook)
    assert followup.json["content"] == "This video is too long for me to send."
    assert tiktok.media_requests == 0


async def test_a_budget_too_small_for_a_watchable_encode_is_refused_before_download(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        interaction = discord_api.inject_slash_command(
            "download", {"url": link(LARGE_POST)}, attachment_size_limit=200_000
        )
        webhook = f"/webhooks/{discord_api.application_id}/{interaction['token']}"
        [followup] = await discord_api.wait_for_request("POST", webhook)
    assert followup.json["content"] == "This video is too large for this server's upload limit."
    assert tiktok.media_requests == 0
