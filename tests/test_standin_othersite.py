"""Streamable, served by the TikTok stand-in's proxy, checked with the real yt-dlp."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from aiohttp import web
from yt_dlp.utils import DownloadError

from tests.harness import run_ytdlp
from tests.standins.clips import Clip
from tests.standins.othersite import StreamableSite
from tests.standins.tiktok import TikTokStandIn

VIDEO_ID = "dnd1"


@pytest.fixture
def streamable(tiktok: TikTokStandIn) -> StreamableSite:
    return StreamableSite.attach(tiktok)


@pytest.mark.parametrize("form", ["https://streamable.com/{}", "https://streamable.com/e/{}"])
async def test_ytdlp_downloads_the_clip(
    tiktok: TikTokStandIn,
    streamable: StreamableSite,
    h264_clip: Clip,
    tmp_path: Path,
    form: str,
) -> None:
    url = streamable.add_other_video(VIDEO_ID, h264_clip, title="A goal", uploader="teabaker")
    assert url == f"https://streamable.com/{VIDEO_ID}"

    info = await run_ytdlp(
        tiktok,
        tmp_path,
        form.format(VIDEO_ID),
        allowed_extractors=[StreamableSite.EXTRACTOR, "tiktok"],
    )

    assert (info["extractor_key"], info["id"], info["title"], info["uploader"]) == (
        "Streamable",
        VIDEO_ID,
        "A goal",
        "teabaker",
    )
    assert (info["vcodec"], info["acodec"], info["width"], info["height"]) == (
        "h264",
        "aac",
        360,
        640,
    )
    assert (info["duration"], info["filesize"]) == (2.0, h264_clip.size)
    assert (tmp_path / f"{VIDEO_ID}.mp4").read_bytes() == h264_clip.path.read_bytes()
    assert [(r.host, r.path) for r in tiktok.requests] == [
        ("ajax.streamable.com", f"/videos/{VIDEO_ID}"),
        ("cdn-cf-east.streamable.com", f"/video/mp4/{VIDEO_ID}.mp4"),
    ]
    assert tiktok.refused == []


async def test_only_allowed_extractors_take_the_link(
    tiktok: TikTokStandIn, streamable: StreamableSite, h264_clip: Clip, tmp_path: Path
) -> None:
    url = streamable.add_other_video(VIDEO_ID, h264_clip, title="A goal", uploader="teabaker")

    with pytest.raises(DownloadError, match="No suitable extractor found for URL"):
        await run_ytdlp(tiktok, tmp_path, url, allowed_extractors=["tiktok"])
    assert tiktok.requests == []


async def test_unready_and_unknown_videos(
    tiktok: TikTokStandIn, streamable: StreamableSite, tmp_path: Path
) -> None:
    processing = streamable.add_other_status("proc1", 1)

    with pytest.raises(DownloadError, match="It may still be uploading or processing"):
        await run_ytdlp(tiktok, tmp_path, processing, allowed_extractors=["streamable"])
    with pytest.raises(DownloadError, match="HTTP Error 404"):
        await run_ytdlp(
            tiktok, tmp_path, streamable.video_url("nope1"), allowed_extractors=["streamable"]
        )
    assert tiktok.count(host=StreamableSite.CDN_HOST) == 0


async def test_cdn_wants_a_signed_url_and_serves_ranges(
    tiktok: TikTokStandIn, streamable: StreamableSite, h264_clip: Clip
) -> None:
    page_url = streamable.add_other_video(VIDEO_ID, h264_clip, title="A <goal>", uploader="x")
    media_url = streamable.media_url(VIDEO_ID)

    async with httpx.AsyncClient(
        proxy=tiktok.proxy_url, verify=tiktok.client_ssl_context()
    ) as client:
        unsigned = await client.get(media_url.partition("?")[0])
        forged = await client.get(media_url.replace("Signature=", "Signature=x"))
        part = await client.get(media_url, headers={"Range": "bytes=0-99"})
        page = await client.get(page_url)
        # TikTok keeps working through the same proxy.
        tiktok_page = await client.get(tiktok.post_url("1"))

    assert (unsigned.status_code, forged.status_code) == (403, 403)
    assert part.status_code == 206
    assert part.content == h264_clip.path.read_bytes()[:100]
    assert 'content="A &lt;goal&gt;"' in page.text
    assert tiktok_page.status_code == 200


async def test_add_site_refuses_tiktok_and_overlaps(
    tiktok: TikTokStandIn, streamable: StreamableSite
) -> None:
    with pytest.raises(ValueError, match="overlaps"):
        StreamableSite.attach(tiktok)
    with pytest.raises(ValueError, match="TikTok's"):
        tiktok.add_site(_Claims("tiktokcdn.com"))


class _Claims:
    def __init__(self, domain: str) -> None:
        self._domain = domain

    @property
    def domains(self) -> tuple[str, ...]:
        return (self._domain,)

    async def handle(self, request: web.Request, host: str) -> web.StreamResponse:
        raise AssertionError("never called")
