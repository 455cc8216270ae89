"""CobaltDownloader against the cobalt stand-in (and, for redirects and CDN slides, the TikTok
stand-in's proxy), with real httpx."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.cobalt import CobaltDownloader
from bot.links import Link, LinkKind, parse_link, post_link
from bot.model import Album, Download, FailureKind, FetchError, Reason
from bot.netguard import HostGuard
from tests.standins.clips import Clip, make_image
from tests.standins.cobalt import CobaltStandIn
from tests.standins.dns import TableResolver
from tests.standins.othersite import StreamableSite
from tests.standins.tiktok import TikTokStandIn

KEY = "4b5c6d7e-1a2b-4c3d-8e9f-0a1b2c3d4e5f"
OTHER_KEY = "00000000-1111-4222-8333-444444444444"
POST = "7300000000000000001"

Make = Callable[..., CobaltDownloader]


def link_to(post_id: str, *, photo: bool = False) -> Link:
    found = parse_link(post_link(post_id, photo=photo))
    assert found is not None
    return found


@pytest.fixture(scope="module")
def slides(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("slides")
    return [make_image(folder / f"s{n}.jpg", width=320, height=480, seed=n) for n in (1, 2, 3)]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "job"
    path.mkdir()
    return path


@pytest.fixture
async def make(cobalt: CobaltStandIn) -> AsyncIterator[Make]:
    """Builds downloaders (for `cobalt` unless told otherwise) and closes them after the test."""
    made: list[CobaltDownloader] = []

    def build(**overrides: object) -> CobaltDownloader:
        options: dict[str, object] = {
            "api_url": cobalt.url,
            "api_key": None,
            "proxy": None,
            "verify_tls": True,
            "timeout_s": 10.0,
            "max_bytes": 50_000_000,
            "guard": HostGuard(TableResolver({})),
        }
        options.update(overrides)
        downloader = CobaltDownloader(**options)  # type: ignore[arg-type]
        made.append(downloader)
        return downloader

    yield build
    for downloader in made:
        await downloader.aclose()


async def test_tunnel_video_lands_in_the_job_directory(
    cobalt: CobaltStandIn, make: Make, workdir: Path, h264_clip: Clip
) -> None:
    cobalt.add_video(POST, h264_clip.path, author="some.one_2")
    fetched = await make().fetch(link_to(POST), workdir, 10_000_000)
    assert isinstance(fetched, Download)
    assert fetched.path == workdir / "clip.mp4"
    assert fetched.path.read_bytes() == h264_clip.path.read_bytes()
    assert fetched.info.clip_id == POST
    assert fetched.info.author == "some.one_2"
    assert fetched.info.description == ""
    assert fetched.info.webpage_url == f"https://www.tiktok.com/@some.one_2/video/{POST}"
    [sent] = cobalt.api_requests
    assert sent.headers["Accept"] == "application/json"
    assert sent.headers["Content-Type"] == "application/json"
    assert "Authorization" not in sent.headers
    assert sent.body == {
        "url": f"https://www.tiktok.com/@_/video/{POST}",
        "videoQuality": "1080",
        "downloadMode": "auto",
        "allowH265": False,
        "tiktokFullAudio": False,
        "youtubeVideoCodec": "h264",
        "alwaysProxy": True,
    }


async def test_author_is_left_empty_when_the_filename_is_not_tiktoks(
    cobalt: CobaltStandIn, make: Make, workdir: Path, h264_clip: Clip
) -> None:
    cobalt.add_video(POST, h264_clip.path, author="a b")
    fetched = await make().fetch(link_to(POST), workdir, 10_000_000)
    assert fetched.info.author == ""
    assert fetched.info.webpage_url == f"https://www.tiktok.com/@_/video/{POST}"


async def test_api_key_is_sent_as_api_key(
    make: Make, workdir: Path, h264_clip: Clip, caplog: pytest.LogCaptureFixture
) -> None:
    async with CobaltStandIn(api_key=KEY) as cobalt:
        cobalt.add_video(POST, h264_clip.path)
        fetched = await make(api_url=cobalt.url, api_key=KEY).fetch(link_to(POST), workdir, 1)
        assert isinstance(fetched, Download)
        assert cobalt.api_requests[0].headers["Authorization"] == f"Api-Key {KEY}"
        # The tunnel is signed: the key stays between the bot and the API.
        assert "Authorization" not in cobalt.tunnel_requests[0].headers
    assert KEY not in caplog.text


@pytest.mark.parametrize(
    ("key", "fix"),
    [
        (None, "set COBALT_API_KEY"),
        (OTHER_KEY, "check COBALT_API_KEY"),
        ("x", "check COBALT_API_KEY"),
    ],
)
async def test_refused_key_fails_with_a_warning_naming_the_fix(
    make: Make, workdir: Path, caplog: pytest.LogCaptureFixture, key: str | None, fix: str
) -> None:
    async with CobaltStandIn(api_key=KEY) as cobalt:
        with (
            caplog.at_level(logging.WARNING, logger="bot.cobalt"),
            pytest.raises(FetchError) as caught,
        ):
            await make(api_url=cobalt.url, api_key=key).fetch(link_to(POST), workdir, 1)
    assert caught.value.reason is Reason.FAILED
    [warning] = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert fix in warning.getMessage()
    assert KEY not in caplog.text
    assert OTHER_KEY not in caplog.text


async def test_redirect_is_fetched_through_the_proxy_after_the_guard(
    cobalt: CobaltStandIn, make: Make, workdir: Path, tiktok: TikTokStandIn, h264_clip: Clip
) -> None:
    site = StreamableSite.attach(tiktok)
    site.add_other_video("cdn1", h264_clip, title="t", uploader="u")
    cdn_url = site.media_url("cdn1")
    cobalt.add_video(POST, h264_clip.path, author="who", mode="redirect", redirect_url=cdn_url)
    resolver = TableResolver({})
    downloader = make(
        proxy=tiktok.proxy_url, verify_tls=False, guard=HostGuard(resolver), always_proxy=False
    )
    fetched = await downloader.fetch(link_to(POST), workdir, 10_000_000)
    assert isinstance(fetched, Download)
    assert fetched.path.read_bytes() == h264_clip.path.read_bytes()
    assert fetched.info.author == "who"
    assert StreamableSite.CDN_HOST in resolver.asked
    assert tiktok.count(host=StreamableSite.CDN_HOST) == 1
    assert cobalt.tunnel_requests == []


async def test_redirect_to_tiktoks_cdn_without_the_cookie_is_blocked(
    cobalt: CobaltStandIn, make: Make, workdir: Path, tiktok: TikTokStandIn, h264_clip: Clip
) -> None:
    tiktok.add_video(POST, h264_clip)
    [media_url] = tiktok.media_urls(POST)
    cobalt.add_video(POST, h264_clip.path, mode="redirect", redirect_url=media_url)
    downloader = make(proxy=tiktok.proxy_url, verify_tls=False, always_proxy=False)
    with pytest.raises(FetchError) as caught:
        await downloader.fetch(link_to(POST), workdir, 10_000_000)
    assert (caught.value.reason, caught.value.kind) == (Reason.BLOCKED, FailureKind.BLOCKED_IP)
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize("host", ["127.0.0.1", "private.example"])
async def test_redirect_to_a_private_address_is_refused(
    cobalt: CobaltStandIn, make: Make, workdir: Path, h264_clip: Clip, host: str
) -> None:
    port = cobalt.url.rsplit(":", 1)[1].rstrip("/")
    target = f"http://{host}:{port}/tunnel"
    cobalt.add_video(POST, h264_clip.path, mode="redirect", redirect_url=target)
    guard = HostGuard(TableResolver({"private.example": ["10.0.0.7"]}))
    with pytest.raises(FetchError) as caught:
        await make(guard=guard, always_proxy=False).fetch(link_to(POST), workdir, 1)
    assert caught.value.reason is Reason.UNSAFE_ADDRESS
    assert cobalt.tunnel_requests == []
    assert list(workdir.iterdir()) == []


async def test_picker_becomes_an_album(
    cobalt: CobaltStandIn, make: Make, workdir: Path, slides: list[Path], music: Path
) -> None:
    cobalt.add_photos(POST, slides, music, author="snaps")
    fetched = await make().fetch(link_to(POST, photo=True), workdir, 10_000_000)
    assert isinstance(fetched, Album)
    assert [p.name for p in fetched.images] == ["1.jpg", "2.jpg", "3.jpg"]
    for got, slide in zip(fetched.images, slides, strict=True):
        assert got.read_bytes() == slide.read_bytes()
        assert got.parent == workdir
    assert fetched.audio == workdir / "audio.mp3"
    assert fetched.audio.read_bytes() == music.read_bytes()
    assert fetched.info.author == "snaps"
    assert fetched.info.webpage_url == f"https://www.tiktok.com/@snaps/photo/{POST}"
    assert sorted(p.name for p in workdir.iterdir()) == ["1.jpg", "2.jpg", "3.jpg", "audio.mp3"]
    assert cobalt.api_requests[0].body["url"] == f"https://www.tiktok.com/@_/photo/{POST}"


async def test_picker_of_cdn_slides_goes_through_the_proxy(
    cobalt: CobaltStandIn,
    make: Make,
    workdir: Path,
    tiktok: TikTokStandIn,
    slides: list[Path],
    music: Path,
) -> None:
    tiktok.add_photo_post(POST, slides, music)
    cobalt.add_photos(POST, slides, music, cdn_urls=tiktok.image_urls(POST))
    downloader = make(proxy=tiktok.proxy_url, verify_tls=False, always_proxy=False)
    fetched = await downloader.fetch(link_to(POST, photo=True), workdir, 10_000_000)
    assert isinstance(fetched, Album)
    assert [p.read_bytes() for p in fetched.images] == [s.read_bytes() for s in slides]
    assert tiktok.image_requests == len(slides)
    # The audio is always a tunnel on the instance.
    assert len(cobalt.tunnel_requests) == 1


@pytest.mark.parametrize(
    ("code", "reason", "kind"),
    [
        ("error.api.content.post.unavailable", Reason.REMOVED, None),
        ("error.api.content.video.unavailable", Reason.REMOVED, None),
        ("error.api.content.post.private", Reason.PRIVATE, None),
        ("error.api.content.video.private", Reason.PRIVATE, None),
        ("error.api.content.post.age", Reason.LOGIN_REQUIRED, FailureKind.LOGIN_WALL),
        ("error.api.content.video.age", Reason.LOGIN_REQUIRED, FailureKind.LOGIN_WALL),
        ("error.api.content.video.region", Reason.REGION_LOCKED, None),
        ("error.api.content.too_long", Reason.TOO_LONG, None),
        ("error.api.fetch.empty", Reason.BLOCKED, FailureKind.BLOCKED_IP),
        ("error.api.fetch.rate", Reason.BLOCKED, FailureKind.BLOCKED_IP),
        ("error.api.fetch.fail", Reason.BLOCKED, FailureKind.SERVER_ERROR),
        ("error.api.fetch.critical", Reason.BLOCKED, FailureKind.SERVER_ERROR),
        ("error.api.fetch.short_link", Reason.REMOVED, None),
        ("error.api.link.unsupported", Reason.NOT_A_VIDEO, None),
        ("error.api.service.disabled", Reason.FAILED, None),
        ("error.api.youtube.login", Reason.FAILED, None),
        ("error.api.something.new", Reason.FAILED, None),
    ],
)
async def test_error_codes_become_reasons(
    cobalt: CobaltStandIn,
    make: Make,
    workdir: Path,
    code: str,
    reason: Reason,
    kind: FailureKind | None,
) -> None:
    cobalt.add_error(POST, code)
    with pytest.raises(FetchError) as caught:
        await make().fetch(link_to(POST), workdir, 1)
    assert (caught.value.reason, caught.value.kind) == (reason, kind)
    assert code in caught.value.detail


async def test_unknown_post_is_removed(cobalt: CobaltStandIn, make: Make, workdir: Path) -> None:
    with pytest.raises(FetchError) as caught:
        await make().fetch(link_to("42"), workdir, 1)
    assert caught.value.reason is Reason.REMOVED


async def test_critical_error_is_a_server_error(
    cobalt: CobaltStandIn, make: Make, workdir: Path
) -> None:
    cobalt.add_error(POST, "error.api.fetch.critical.core", critical=True)
    with pytest.raises(FetchError) as caught:
        await make().fetch(link_to(POST), workdir, 1)
    assert (caught.value.reason, caught.value.kind) == (Reason.FAILED, FailureKind.SERVER_ERROR)


async def test_instance_rate_limit_warns(
    make: Make, workdir: Path, h264_clip: Clip, caplog: pytest.LogCaptureFixture
) -> None:
    async with CobaltStandIn(rate_limit=1) as cobalt:
        cobalt.add_video(POST, h264_clip.path)
        downloader = make(api_url=cobalt.url)
        await downloader.fetch(link_to(POST), workdir, 1)
        with caplog.at_level(logging.WARNING, logger="bot.cobalt"), pytest.raises(FetchError):
            await downloader.fetch(link_to(POST), workdir, 1)
    assert "rate limit" in caplog.text


@pytest.mark.parametrize(("status", "reason"), [(403, Reason.BLOCKED), (500, Reason.FAILED)])
async def test_tunnel_errors(
    cobalt: CobaltStandIn,
    make: Make,
    workdir: Path,
    h264_clip: Clip,
    status: int,
    reason: Reason,
) -> None:
    cobalt.add_video(POST, h264_clip.path)
    cobalt.knobs.tunnel_status = status
    with pytest.raises(FetchError) as caught:
        await make().fetch(link_to(POST), workdir, 1)
    assert caught.value.reason is reason
    assert list(workdir.iterdir()) == []


async def test_tunnel_on_another_origin_is_refused(
    cobalt: CobaltStandIn, make: Make, workdir: Path, h264_clip: Clip
) -> None:
    # The instance's API_URL names another host than the one the bot reaches it by.
    cobalt.public_url = cobalt.url.replace("127.0.0.1", "localhost")
    cobalt.add_video(POST, h264_clip.path)
    with pytest.raises(FetchError) as caught:
        await make().fetch(link_to(POST), workdir, 1)
    assert caught.value.reason is Reason.FAILED
    assert "API_URL" in caught.value.detail
    assert cobalt.tunnel_requests == []


async def test_oversize_video_is_stopped_and_removed(
    cobalt: CobaltStandIn, make: Make, workdir: Path, h264_clip: Clip
) -> None:
    cobalt.add_video(POST, h264_clip.path)
    with pytest.raises(FetchError) as caught:
        await make(max_bytes=h264_clip.size - 1).fetch(link_to(POST), workdir, 1)
    assert caught.value.reason is Reason.TOO_LARGE
    assert list(workdir.iterdir()) == []


async def test_oversize_album_without_lengths_is_stopped_and_removed(
    cobalt: CobaltStandIn, make: Make, workdir: Path, slides: list[Path], music: Path
) -> None:
    cobalt.add_photos(POST, slides, music)
    # The slides fit; the audio (sent without a length) takes the album past the cap.
    cap = sum(s.stat().st_size for s in slides) + music.stat().st_size // 2
    with pytest.raises(FetchError) as caught:
        await make(max_bytes=cap).fetch(link_to(POST), workdir, 1)
    assert caught.value.reason is Reason.TOO_LARGE
    assert list(workdir.iterdir()) == []


async def test_cancelled_download_leaves_no_partial_file(
    cobalt: CobaltStandIn, make: Make, workdir: Path, h264_clip: Clip
) -> None:
    cobalt.add_video(POST, h264_clip.path)
    cobalt.knobs.stall_tunnels_after = h264_clip.size // 2
    task = asyncio.create_task(make().fetch(link_to(POST), workdir, 1))
    await cobalt.wait_for_tunnel()
    partial = workdir / "clip.mp4"
    for _ in range(200):
        if partial.exists() and partial.stat().st_size > 0:
            break
        await asyncio.sleep(0.01)
    assert partial.stat().st_size > 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert list(workdir.iterdir()) == []


async def test_stalled_tunnel_times_out_and_leaves_nothing(
    cobalt: CobaltStandIn, make: Make, workdir: Path, h264_clip: Clip
) -> None:
    cobalt.add_video(POST, h264_clip.path)
    cobalt.knobs.stall_tunnels_after = h264_clip.size // 2
    with pytest.raises(FetchError) as caught:
        await make(timeout_s=0.5).fetch(link_to(POST), workdir, 1)
    assert caught.value.reason is Reason.TIMED_OUT
    assert list(workdir.iterdir()) == []


async def test_unreachable_instance_fails_with_a_warning(
    make: Make, workdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    downloader = make(api_url=f"http://127.0.0.1:{port}/")
    with caplog.at_level(logging.WARNING, logger="bot.cobalt"), pytest.raises(FetchError) as caught:
        await downloader.fetch(link_to(POST), workdir, 1)
    assert caught.value.reason is Reason.FAILED
    assert "COBALT_API_URL" in caplog.text


async def test_local_processing_is_refused(make: Make, workdir: Path, h264_clip: Clip) -> None:
    async with CobaltStandIn(answer_local_processing=True) as cobalt:
        cobalt.add_video(POST, h264_clip.path)
        with pytest.raises(FetchError) as caught:
            await make(api_url=cobalt.url).fetch(link_to(POST), workdir, 1)
    assert caught.value.reason is Reason.FAILED
    assert "tunnel" in caught.value.detail
    assert list(workdir.iterdir()) == []


async def test_a_link_to_no_post_is_not_asked(
    cobalt: CobaltStandIn, make: Make, workdir: Path
) -> None:
    found = parse_link("https://www.tiktok.com/@someone")
    assert found is not None
    assert found.kind is LinkKind.NOT_VIDEO
    with pytest.raises(FetchError) as caught:
        await make().fetch(found, workdir, 1)
    assert caught.value.reason is Reason.NOT_A_VIDEO
    assert cobalt.requests == []
