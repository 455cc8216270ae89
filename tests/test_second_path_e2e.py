"""The second path, end to end: the real bot and yt-dlp meet a TikTok that refuses them, and a
cobalt instance (the stand-in speaks its API) brings the clip, which goes through the same
playable and fit checks as any other."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.media import probe
from bot.model import Reason
from tests.harness import jobs_done, link, running_bot, until, uploaded_video
from tests.standins.clips import Clip, make_image, make_music
from tests.standins.cobalt import CobaltStandIn
from tests.standins.telegram_api import ApiCall, FakeBotApi
from tests.standins.tiktok import Fault, TikTokStandIn

# See tests/test_tiktok_faults.py: yt-dlp leaves a refused media response's socket unclosed.
pytestmark = [
    pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning"),
    pytest.mark.usefixtures("collect_leaked_sockets"),
]

POST = "7320000000000000001"
PHOTO_POST = "7320000000000000002"
API_KEY = "3f2a8c1e-5b7d-4e9f-a1c3-0d6b8e2f4a71"
FAST: dict[str, Any] = {"download_timeout_s": 15, "download_retry_delay_s": 0.01}


@pytest.fixture
async def cobalt() -> AsyncIterator[CobaltStandIn]:
    async with CobaltStandIn(api_key=API_KEY) as server:
        yield server


def replies(api: FakeBotApi) -> list[ApiCall]:
    return [c for c in api.calls if c.method in ("sendVideo", "sendMessage", "sendMediaGroup")]


async def answer(
    tiktok: TikTokStandIn, api: FakeBotApi, cobalt: CobaltStandIn, data: Path, text: str
) -> tuple[ApiCall, str]:
    """The one answer to `text` from a bot whose second path is `cobalt`, and its metrics."""
    async with running_bot(
        tiktok,
        data,
        telegram=api,
        cobalt_api_url=cobalt.url,
        cobalt_api_key=API_KEY,
        **FAST,
    ) as bot:
        api.inject_message(text)
        await until(lambda: bool(replies(api)), within_s=60)
        await jobs_done(bot)
        metrics = bot.engine.metrics.render().decode()
    [reply] = replies(api)
    return reply, metrics


async def test_a_challenged_clip_comes_by_cobalt_and_is_made_playable(
    tiktok: TikTokStandIn,
    api: FakeBotApi,
    cobalt: CobaltStandIn,
    hevc_clip: Clip,
    h264_clip: Clip,
    tmp_path: Path,
) -> None:
    tiktok.add_video(POST, h264_clip, author="dancer")
    tiktok.inject(Fault.CHALLENGE, times=None)
    # cobalt hands over TikTok's HEVC rendition: the bot must not send it as it is.
    cobalt.add_video(POST, hevc_clip.path, author="dancer")
    reply, metrics = await answer(tiktok, api, cobalt, tmp_path / "data", link(POST, "dancer"))
    assert reply.method == "sendVideo"
    found = probe(uploaded_video(api, reply, tmp_path))
    assert (found.vcodec, found.pix_fmt, found.acodec, found.is_mp4) == (
        "h264",
        "yuv420p",
        "aac",
        True,
    )
    assert (found.width, found.height) == (hevc_clip.width, hevc_clip.height)
    assert "@dancer" in str(reply.params["caption"])
    [asked] = cobalt.api_requests
    assert asked.headers["Authorization"] == f"Api-Key {API_KEY}"
    assert asked.body["url"] == f"https://www.tiktok.com/@_/video/{POST}"
    assert 'reshare_second_path_total{outcome="ok"} 1.0' in metrics
    # The first path's failure still counts for the operator.
    assert 'reshare_fetches_total{outcome="challenge",site="tiktok"} 1.0' in metrics


async def test_a_post_s_own_failure_is_not_asked_of_cobalt(
    tiktok: TikTokStandIn, api: FakeBotApi, cobalt: CobaltStandIn, tmp_path: Path
) -> None:
    tiktok.add_status(POST, 10216)
    reply, _ = await answer(tiktok, api, cobalt, tmp_path / "data", link(POST))
    assert reply.params["text"] == Reason.PRIVATE.message
    assert cobalt.api_requests == []


async def test_when_cobalt_fails_too_the_user_gets_the_honest_line(
    tiktok: TikTokStandIn,
    api: FakeBotApi,
    cobalt: CobaltStandIn,
    h264_clip: Clip,
    tmp_path: Path,
) -> None:
    tiktok.add_video(POST, h264_clip)
    tiktok.inject(Fault.CHALLENGE, times=None)
    cobalt.add_error(POST, "error.api.fetch.fail")
    reply, metrics = await answer(tiktok, api, cobalt, tmp_path / "data", link(POST))
    assert reply.params["text"] == Reason.BLOCKED.message
    assert len(cobalt.api_requests) == 1
    assert 'reshare_second_path_total{outcome="blocked"} 1.0' in metrics


async def test_a_challenged_photo_post_comes_by_cobalt_s_picker(
    tiktok: TikTokStandIn, api: FakeBotApi, cobalt: CobaltStandIn, tmp_path: Path
) -> None:
    slides = [make_image(tmp_path / f"s{n}.jpg", width=320, height=480, seed=n) for n in (1, 2)]
    music = make_music(tmp_path / "music.mp3", duration=1.0)
    tiktok.add_photo_post(PHOTO_POST, slides, music=music)
    tiktok.inject(Fault.CHALLENGE, times=None)
    cobalt.add_photos(PHOTO_POST, slides, music, author="painter")
    text = f"https://www.tiktok.com/@painter/photo/{PHOTO_POST}"
    reply, _ = await answer(tiktok, api, cobalt, tmp_path / "data", text)
    assert reply.method == "sendMediaGroup"
    assert api.media_group_bytes(reply) == [slide.read_bytes() for slide in slides]
    assert len(cobalt.api_requests) == 1
