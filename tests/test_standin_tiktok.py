"""The TikTok stand-in, checked with the real yt-dlp and httpx through its proxy."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from yt_dlp.utils import DownloadError

from tests.harness import run_ytdlp
from tests.standins.clips import Clip
from tests.standins.tiktok import TikTokStandIn

POST_ID = "7430000000000000001"


@pytest.mark.parametrize(
    ("compat_opts", "connection"),
    [
        pytest.param(frozenset(), "keep-alive", id="requests"),
        pytest.param(frozenset({"prefer-legacy-http-handler"}), "close", id="urllib"),
    ],
)
async def test_h264_post_downloads_the_served_bytes(
    tiktok: TikTokStandIn,
    h264_clip: Clip,
    tmp_path: Path,
    compat_opts: frozenset[str],
    connection: str,
) -> None:
    tiktok.add_video(POST_ID, h264_clip, author="someone", nickname="Some One", desc="hi </script>")

    info = await run_ytdlp(
        tiktok, tmp_path, tiktok.post_url(POST_ID, "someone"), compat_opts=set(compat_opts)
    )

    assert (info["id"], info["vcodec"], info["width"], info["height"]) == (
        POST_ID,
        "h264",
        360,
        640,
    )
    assert (info["uploader"], info["channel"], info["description"]) == (
        "someone",
        "Some One",
        "hi </script>",
    )
    assert info["duration"] == 2
    assert info["filesize"] == h264_clip.size
    assert (tmp_path / f"{POST_ID}.mp4").read_bytes() == h264_clip.path.read_bytes()
    assert tiktok.media_requests == 1
    page, media = tiktok.requests
    # The page goes through curl_cffi (impersonating Chrome), the mp4 through requests or urllib.
    assert "Sec-CH-UA" in page.headers
    assert "Sec-CH-UA" not in media.headers
    assert media.headers["Connection"] == connection
    assert "tt_chain_token=" in media.headers["Cookie"]


async def test_paced_media_arrives_at_its_rate_in_many_pieces(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    tiktok.add_video(POST_ID, h264_clip, bytes_per_s=h264_clip.size * 2 // 3)
    arrived: list[tuple[float, int]] = []

    def hook(status: dict[str, Any]) -> None:
        if status["status"] == "downloading":
            arrived.append((time.monotonic(), int(status["downloaded_bytes"])))

    began = time.monotonic()
    await run_ytdlp(tiktok, tmp_path, tiktok.post_url(POST_ID), progress_hooks=[hook])
    took = time.monotonic() - began

    assert (tmp_path / f"{POST_ID}.mp4").read_bytes() == h264_clip.path.read_bytes()
    # 1.5 s of media at that rate; the page and the connection add a little.
    assert 1.3 <= took <= 4.0
    halfway = [at for at, size in arrived if size >= h264_clip.size // 2]
    assert halfway
    assert halfway[0] - arrived[0][0] >= 0.5
    assert len({size for _, size in arrived}) >= 5


async def test_hevc_post_is_reported_as_h265(
    tiktok: TikTokStandIn, hevc_clip: Clip, tmp_path: Path
) -> None:
    tiktok.add_video(POST_ID, hevc_clip)

    info = await run_ytdlp(tiktok, tmp_path, tiktok.post_url(POST_ID), download=False)

    assert info["vcodec"] in {"h265", "hevc"}
    assert info["format_id"].startswith("bytevc1_")
    assert info["filesize"] == hevc_clip.size
    assert tiktok.media_requests == 0


async def test_h264_sort_picks_the_h264_rendition(
    tiktok: TikTokStandIn, h264_clip: Clip, hevc_clip: Clip, tmp_path: Path
) -> None:
    tiktok.add_video(POST_ID, hevc_clip, extra_clips=(h264_clip,))

    info = await run_ytdlp(tiktok, tmp_path, tiktok.post_url(POST_ID), download=False)

    assert sorted(f["vcodec"] for f in info["formats"]) == ["h264", "h265"]
    assert info["vcodec"] == "h264"
    assert info["url"] == tiktok.media_urls(POST_ID)[1]


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (10216, "You do not have permission to view this post"),
        (10222, "You do not have permission to view this post"),
        (10204, "Your IP address is blocked from accessing this post"),
        (10231, "Video not available, status code 10231"),
    ],
)
async def test_status_pages_raise_ytdlp_errors(
    tiktok: TikTokStandIn, tmp_path: Path, status: int, message: str
) -> None:
    tiktok.add_status(POST_ID, status)

    with pytest.raises(DownloadError, match=re.escape(message)):
        await run_ytdlp(tiktok, tmp_path, tiktok.post_url(POST_ID))
    assert tiktok.media_requests == 0


async def test_unknown_post_looks_removed(tiktok: TikTokStandIn, tmp_path: Path) -> None:
    with pytest.raises(DownloadError, match="Your IP address is blocked from accessing this post"):
        await run_ytdlp(tiktok, tmp_path, tiktok.post_url(POST_ID))


async def test_login_wall(tiktok: TikTokStandIn, tmp_path: Path) -> None:
    tiktok.add_login_wall(POST_ID)

    with pytest.raises(DownloadError, match="TikTok is requiring login"):
        await run_ytdlp(tiktok, tmp_path, tiktok.post_url(POST_ID))
    assert tiktok.count(host="www.tiktok.com", path_prefix="/login") == 1


@pytest.mark.parametrize(
    ("host", "link"),
    [
        ("vm.tiktok.com", "https://vm.tiktok.com/ZMabc123/"),
        ("vt.tiktok.com", "https://vt.tiktok.com/ZMabc123/"),
        ("www.tiktok.com", "https://www.tiktok.com/t/ZMabc123/"),
    ],
)
async def test_short_link_resolves_with_head(
    tiktok: TikTokStandIn, h264_clip: Clip, host: str, link: str
) -> None:
    tiktok.add_video(POST_ID, h264_clip)
    tiktok.add_short_link("ZMabc123", f"/@creator/video/{POST_ID}", host=host)

    # Off, as the bot runs it against the stand-in (and yt-dlp with nocheckcertificate).
    async with httpx.AsyncClient(proxy=tiktok.proxy_url, verify=False) as client:  # noqa: S501
        response = await client.head(
            link, headers={"User-Agent": "facebookexternalhit/1.1"}, follow_redirects=True
        )
        unknown = await client.head(link.replace("ZMabc123", "ZMnope"))

    assert [r.status_code for r in response.history] == [301]
    assert response.status_code == 200
    assert str(response.url) == f"https://www.tiktok.com/@creator/video/{POST_ID}?_t=abc&_r=1"
    assert unknown.status_code == 404


async def test_ytdlp_follows_a_short_link(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    tiktok.add_video(POST_ID, h264_clip)
    tiktok.add_short_link("ZMabc123", f"/@creator/video/{POST_ID}")

    info = await run_ytdlp(tiktok, tmp_path, "https://vm.tiktok.com/ZMabc123/", download=False)

    assert info["id"] == POST_ID
    assert tiktok.count(host="vm.tiktok.com") == 1


async def test_media_needs_the_page_cookie_and_serves_ranges(
    tiktok: TikTokStandIn, h264_clip: Clip
) -> None:
    tiktok.add_video(POST_ID, h264_clip)
    (media_url,) = tiktok.media_urls(POST_ID)
    assert not media_url.startswith("https://www.tiktok.com/")
    verify = tiktok.client_ssl_context()

    async with httpx.AsyncClient(proxy=tiktok.proxy_url, verify=verify) as client:
        denied = await client.get(media_url)
        page = await client.get(tiktok.post_url(POST_ID, "creator"))
        full = await client.get(media_url)
        part = await client.get(media_url, headers={"Range": "bytes=100-199"})

    data = h264_clip.path.read_bytes()
    assert denied.status_code == 403
    assert page.status_code == 200
    assert '<script id="__UNIVERSAL_DATA_FOR_REHYDRATION__"' in page.text
    assert "tt_chain_token" in page.cookies
    assert (full.status_code, full.headers["Content-Type"], full.content) == (
        200,
        "video/mp4",
        data,
    )
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"bytes 100-199/{len(data)}"
    assert part.content == data[100:200]
    assert tiktok.media_requests == 3


async def test_proxy_refuses_other_hosts_and_plain_requests(tiktok: TikTokStandIn) -> None:
    verify = tiktok.client_ssl_context()
    async with httpx.AsyncClient(proxy=tiktok.proxy_url, verify=verify) as client:
        with pytest.raises(httpx.ProxyError, match="403"):
            await client.get("https://example.com/")
        plain = await client.get("http://www.tiktok.com/")

    assert plain.status_code == 405
    assert tiktok.refused == ["example.com:443"]
    assert tiktok.plain_requests == ["http://www.tiktok.com/"]
    assert tiktok.requests == []
