"""ALLOWED_SITES: other yt-dlp extractors go through the same pipeline only when allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.model import Reason
from tests.harness import answers, assert_plays, running_bot, uploaded_video
from tests.standins.clips import Clip
from tests.standins.dns import TableResolver
from tests.standins.othersite import PlainWebSite, StreamableSite
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import TikTokStandIn

METADATA = "http://169.254.169.254/latest/meta-data/"


@pytest.fixture
def streamable_link(tiktok: TikTokStandIn, tall_clip: Clip) -> str:
    site = StreamableSite.attach(tiktok)
    return site.add_other_video("dnd1", tall_clip, title="a streamable clip", uploader="maker")


async def test_an_allowed_site_goes_through_the_same_pipeline(
    tiktok: TikTokStandIn, api: FakeBotApi, streamable_link: str, tall_clip: Clip, tmp_path: Path
) -> None:
    async with running_bot(
        tiktok, tmp_path / "data", telegram=api, allowed_sites=("TikTok", "Streamable")
    ):
        api.inject_message(f"look {streamable_link}", chat_id=-1005, chat_type="group")
        [call] = await api.wait_for_call("sendVideo", timeout=60)
    assert call.params["caption"].startswith("@maker: a streamable clip")
    assert call.params["caption"].endswith(streamable_link)
    assert_plays(uploaded_video(api, call, tmp_path), tall_clip)


async def test_a_site_not_allowed_is_refused_in_private_and_ignored_in_groups(
    tiktok: TikTokStandIn, api: FakeBotApi, streamable_link: str, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", telegram=api):
        api.inject_message(streamable_link, chat_id=-1006, chat_type="group")
        api.inject_message(streamable_link, chat_id=606)
        [call] = await api.wait_for_call("sendMessage")
    assert call.params["chat_id"] == 606
    assert "links from TikTok" in call.params["text"]
    assert {c.params["chat_id"] for c in answers(api)} == {606}
    assert tiktok.requests == []


async def test_a_link_to_the_local_machine_gets_a_reason_and_sends_nothing(
    tiktok: TikTokStandIn, api: FakeBotApi, h264_clip: Clip, tmp_path: Path
) -> None:
    """With the generic extractor allowed, links to 127.0.0.1 (by name, in an odd literal form,
    by a name that resolves there) and a page redirecting to the metadata address are refused;
    the operator's proxy, on 127.0.0.1 too, keeps working for the TikTok link in the message."""
    tiktok.add_video("7300000000000000042", h264_clip)
    web_site = PlainWebSite.attach(tiktok)
    redirect = web_site.add_redirect("www.example.net", "/v/1", METADATA)
    local = (
        "https://localhost/clip.mp4",
        "http://2130706433/latest/meta-data/",
        "https://inside.example.net/clip.mp4",
    )
    async with running_bot(
        tiktok,
        tmp_path / "data",
        telegram=api,
        allowed_sites=("TikTok", "generic"),
        resolver=TableResolver({"inside.example.net": ["127.0.0.1"]}),
    ):
        # Three links a message at most.
        api.inject_message(" ".join(local), chat_id=707)
        api.inject_message(f"{redirect} {tiktok.post_url('7300000000000000042')}", chat_id=707)
        refusals = await api.wait_for_call("sendMessage", count=4)
        [video] = await api.wait_for_call("sendVideo")
    assert [c.params["text"] for c in refusals] == [Reason.UNSAFE_ADDRESS.message] * 4
    assert_plays(uploaded_video(api, video, tmp_path), h264_clip)
    allowed = {tiktok.WEB_HOST, tiktok.CDN_HOST, "www.example.net"}
    assert {r.host for r in tiktok.requests} <= allowed
    assert [r.path for r in tiktok.requests if r.host == "www.example.net"] == ["/v/1"]
    assert tiktok.refused == []
    assert tiktok.plain_requests == []
