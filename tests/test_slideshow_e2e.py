"""TikTok photo posts on both platforms: as an album (photos + music) or made into one video."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.chat_settings import SlideshowMode
from bot.media import probe
from bot.model import Reason
from tests.harness import is_status, running_bot, until
from tests.standins.clips import make_image, make_music
from tests.standins.discord_api import FakeDiscord
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import TikTokStandIn

POST = "7430000000000000042"
BIG_POST = "7430000000000000043"
MUSIC_S = 9.0


@pytest.fixture(scope="module")
def slides(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ...]:
    folder = tmp_path_factory.mktemp("slides")
    return tuple(
        make_image(folder / f"slide{n}.jpeg", width=720, height=960, seed=n) for n in range(12)
    )


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_music(tmp_path_factory.mktemp("music") / "music.mp3", duration=MUSIC_S)


@pytest.fixture
async def tiktok(slides: tuple[Path, ...], music: Path) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        tt.add_photo_post(POST, slides[:3], music, author="painter", desc="three slides")
        tt.add_photo_post(BIG_POST, slides, music, author="painter", desc="twelve slides")
        tt.add_short_link("ZMphoto1", f"/@painter/photo/{BIG_POST}")
        yield tt


async def test_telegram_album_is_media_groups_then_the_music(
    tiktok: TikTokStandIn, slides: tuple[Path, ...], music: Path, tmp_path: Path
) -> None:
    async with FakeBotApi() as api:
        async with running_bot(tiktok, tmp_path / "data", telegram=api):
            sent = api.inject_message("https://vm.tiktok.com/ZMphoto1/")
            [audio] = await api.wait_for_call("sendAudio", timeout=60)
        first, second = api.calls_to("sendMediaGroup")
        groups = [api.media_group_bytes(first), api.media_group_bytes(second)]
    assert [len(group) for group in groups] == [10, 2]
    assert [*groups[0], *groups[1]] == [image.read_bytes() for image in slides]
    assert first.params["media"][0]["caption"].startswith("@painter: twelve slides")
    assert "caption" not in second.params["media"][0]
    assert first.params["reply_parameters"]["message_id"] == sent["message_id"]
    assert api.file_bytes(audio, "audio") == music.read_bytes()
    assert api.calls_to("sendVideo") == []
    assert first.at < second.at < audio.at


async def test_a_video_link_to_a_photo_post_is_a_slideshow_too(
    tiktok: TikTokStandIn, slides: tuple[Path, ...], tmp_path: Path
) -> None:
    async with FakeBotApi() as api:
        async with running_bot(tiktok, tmp_path / "data", telegram=api):
            api.inject_message(f"https://www.tiktok.com/@painter/video/{POST}")
            await api.wait_for_call("sendAudio", timeout=60)
        [group] = api.calls_to("sendMediaGroup")
        assert api.media_group_bytes(group) == [image.read_bytes() for image in slides[:3]]


async def test_discord_album_is_attachments_then_the_music(
    tiktok: TikTokStandIn, slides: tuple[Path, ...], music: Path, tmp_path: Path
) -> None:
    async with (
        FakeDiscord() as discord_api,
        running_bot(tiktok, tmp_path / "data", discord=discord_api),
    ):
        interaction = discord_api.inject_slash_command(
            "download", {"url": tiktok.photo_url(BIG_POST)}
        )
        webhook = f"/webhooks/{discord_api.application_id}/{interaction['token']}"
        followups = await discord_api.wait_for_request("POST", webhook, count=3, timeout=60)
    images = [f.data for call in followups[:2] for f in call.files]
    assert [len(call.files) for call in followups] == [10, 2, 1]
    assert images == [image.read_bytes() for image in slides]
    assert followups[2].files[0].data == music.read_bytes()
    assert followups[0].json["content"].startswith("@painter: twelve slides")


async def test_slideshow_mode_video_makes_one_video_as_long_as_the_music(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    async with FakeBotApi() as api:
        async with running_bot(
            tiktok, tmp_path / "data", telegram=api, slideshow_mode=SlideshowMode.VIDEO
        ):
            api.inject_message(tiktok.photo_url(POST))
            api.inject_message(tiktok.photo_url(BIG_POST))
            videos = await api.wait_for_call("sendVideo", count=2, timeout=90)
        # Two messages, two jobs: either may finish first.
        call, many = sorted(videos, key=lambda v: "twelve" in v.params["caption"])
        received = tmp_path / "slideshow.mp4"
        received.write_bytes(api.video_bytes(call))
        many_slides = tmp_path / "many.mp4"
        many_slides.write_bytes(api.video_bytes(many))
    # Twelve slides to 9 s of music: each still gets its 2 s, the video runs past the music.
    assert probe(many_slides).duration == pytest.approx(12 * 2.0, abs=0.2)
    found = probe(received)
    assert found.playable
    assert (found.vcodec, found.pix_fmt, found.acodec) == ("h264", "yuv420p", "aac")
    assert found.duration == pytest.approx(MUSIC_S, abs=0.2)
    assert (found.width, found.height) == (720, 960)
    assert api.calls_to("sendMediaGroup") == []
    assert call.params["caption"].startswith("@painter: three slides")


async def test_a_photo_post_over_the_byte_cap_is_stopped_while_it_arrives(
    tiktok: TikTokStandIn, slides: tuple[Path, ...], tmp_path: Path
) -> None:
    """Each slide is under the cap, their sum is not: gallery-dl's own size check sees one file
    at a time, so the bot measures what it wrote and stops it."""
    cap_mb = 0.2
    assert (
        max(s.stat().st_size for s in slides) < cap_mb * 1e6 < sum(s.stat().st_size for s in slides)
    )
    tiktok.slide_delay_s = 0.3
    async with (
        FakeBotApi() as api,
        running_bot(tiktok, tmp_path / "data", telegram=api, max_download_mb=cap_mb),
    ):
        api.inject_message(f"https://www.tiktok.com/@painter/photo/{BIG_POST}")
        # A job this slow may show its status first ("Downloading…"): the reason follows it.
        await until(lambda: bool(said(api)), 60)
    [reply] = said(api)
    assert reply == Reason.TOO_LARGE.message
    assert api.calls_to("sendMediaGroup") == []
    assert tiktok.image_requests < len(slides)


async def test_a_slide_announced_over_the_byte_cap_is_never_written(
    tmp_path: Path, music: Path
) -> None:
    big = make_image(tmp_path / "big.jpeg", width=2400, height=3200, seed=1)
    async with TikTokStandIn() as tt, FakeBotApi() as api:
        tt.add_photo_post(POST, [big], music, author="painter", desc="one huge slide")
        cap_mb = big.stat().st_size / 2 / 1e6
        async with running_bot(tt, tmp_path / "data", telegram=api, max_download_mb=cap_mb):
            api.inject_message(f"https://www.tiktok.com/@painter/photo/{POST}")
            [reply] = await api.wait_for_call("sendMessage", timeout=60)
    assert reply.params["text"] == Reason.TOO_LARGE.message
    assert api.calls_to("sendPhoto") == []


def said(api: FakeBotApi) -> list[str]:
    """The bot's messages that are no status line."""
    texts = [call.params["text"] for call in api.calls_to("sendMessage")]
    return [text for text in texts if not is_status(text)]
