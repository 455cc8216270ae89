"""TikTok photo posts in the stand-in, checked with real gallery-dl and yt-dlp through its proxy.

The gallery-dl command line here is the recipe the bot uses: no user config, no cache file,
urllib3's TLS warnings off, slides as 1..N.<ext> and the music as 0.mp3 in one directory, and
the post's itemStruct (desc, author, ...) in info.json.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from yt_dlp.utils import DownloadError

from tests.harness import run_ytdlp
from tests.standins.clips import make_image, make_music
from tests.standins.tiktok import TikTokStandIn

POST_ID = "7430000000000000042"


@dataclass(frozen=True)
class Slideshow:
    images: tuple[Path, ...]
    music: Path


@dataclass(frozen=True)
class GalleryDl:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def slideshow(tmp_path_factory: pytest.TempPathFactory) -> Slideshow:
    """Three distinct 720x960 slides and 3 s of music."""
    folder = tmp_path_factory.mktemp("slides")
    images = tuple(
        make_image(folder / f"slide{i}.jpeg", width=720, height=960, seed=i) for i in range(3)
    )
    return Slideshow(images=images, music=make_music(folder / "music.mp3", duration=3.0))


@pytest.fixture
async def tiktok() -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        yield tt


def gallery_dl_command(proxy_url: str, directory: Path, url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gallery_dl",
        "--config-ignore",
        "--cache-file",
        ":memory:",
        "-o",
        "warnings=ignore",
        "--proxy",
        proxy_url,
        "--no-check-certificate",
        "-D",
        str(directory),
        "-f",
        "{num}.{extension}",
        "--write-info-json",
        url,
    ]


async def run_gallery_dl(tt: TikTokStandIn, directory: Path, url: str) -> GalleryDl:
    process = await asyncio.create_subprocess_exec(
        *gallery_dl_command(tt.proxy_url, directory, url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await process.communicate()
    assert process.returncode is not None
    return GalleryDl(process.returncode, stdout.decode(), stderr.decode())


def names(paths: Sequence[Path]) -> list[str]:
    return sorted(p.name for p in paths)


async def test_images_are_distinct_jpegs(slideshow: Slideshow) -> None:
    data = [p.read_bytes() for p in slideshow.images]
    assert all(d.startswith(b"\xff\xd8\xff") for d in data)
    assert len(set(data)) == len(data)
    assert slideshow.music.read_bytes()[:3] == b"ID3"


@pytest.mark.parametrize("form", ["photo", "video"])
async def test_gallery_dl_downloads_every_slide_and_the_music(
    tiktok: TikTokStandIn, slideshow: Slideshow, tmp_path: Path, form: str
) -> None:
    tiktok.add_photo_post(
        POST_ID, slideshow.images, slideshow.music, author="someone", desc="three slides"
    )
    url = (tiktok.photo_url if form == "photo" else tiktok.post_url)(POST_ID, "someone")
    out = tmp_path / "out"

    result = await run_gallery_dl(tiktok, out, url)

    assert (result.returncode, result.stderr) == (0, "")
    # gallery-dl prints each file it wrote; it names JPEGs .jpg whatever the URL says.
    assert result.stdout.splitlines() == [
        str(out / n) for n in ("1.jpg", "2.jpg", "3.jpg", "0.mp3")
    ]
    for i, image in enumerate(slideshow.images, 1):
        assert (out / f"{i}.jpg").read_bytes() == image.read_bytes()
    assert (out / "0.mp3").read_bytes() == slideshow.music.read_bytes()
    info = json.loads((out / "info.json").read_text())
    assert (info["desc"], info["user"], info["author"]["nickname"]) == (
        "three slides",
        "someone",
        "Creator",
    )
    assert (info["post_type"], info["id"], info["music"]["duration"]) == ("image", POST_ID, 3)
    assert [(i["imageWidth"], i["imageHeight"]) for i in info["imagePost"]["images"]] == [
        (720, 960)
    ] * 3
    # gallery-dl rewrites /photo/ to /video/ itself; the CDNs saw no TikTok cookie.
    assert tiktok.count(host="www.tiktok.com", path_prefix="/@someone/video/") == 1
    assert (tiktok.image_requests, tiktok.music_requests, tiktok.media_requests) == (3, 1, 0)
    cdn = [r for r in tiktok.requests if r.host != "www.tiktok.com"]
    assert all("tt_chain_token" not in r.headers.get("Cookie", "") for r in cdn)
    assert tiktok.refused == []


async def test_gallery_dl_reports_a_post_without_music_but_keeps_the_slides(
    tiktok: TikTokStandIn, slideshow: Slideshow, tmp_path: Path
) -> None:
    tiktok.add_photo_post(POST_ID, slideshow.images[:2], None)
    out = tmp_path / "out"

    result = await run_gallery_dl(tiktok, out, tiktok.photo_url(POST_ID))

    # Exit status 0 all the same: only stderr tells.
    assert result.returncode == 0
    assert "Failed to extract post (KeyError: 'playUrl')" in result.stderr
    assert names(list(out.iterdir())) == ["1.jpg", "2.jpg", "info.json"]
    assert tiktok.music_url(POST_ID) is None


async def test_gallery_dl_exits_zero_on_an_error_status(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    tiktok.add_status(POST_ID, 10216)
    out = tmp_path / "out"

    result = await run_gallery_dl(tiktok, out, tiktok.photo_url(POST_ID))

    assert (result.returncode, result.stdout) == (0, "")
    assert "[tiktok][error]" in result.stderr
    assert "Received unknown error code 10216" in result.stderr
    assert not out.exists()


async def test_ytdlp_gets_only_the_music_of_a_photo_post(
    tiktok: TikTokStandIn, slideshow: Slideshow, tmp_path: Path
) -> None:
    tiktok.add_photo_post(POST_ID, slideshow.images, slideshow.music, desc="three slides")

    info = await run_ytdlp(tiktok, tmp_path, tiktok.post_url(POST_ID))

    assert [(f["format_id"], f["vcodec"], f["acodec"], f["ext"]) for f in info["formats"]] == [
        ("audio", "none", "aac", "m4a")
    ]
    assert (info["vcodec"], info["duration"], info["description"]) == ("none", 3, "three slides")
    assert info["url"] == tiktok.music_url(POST_ID)
    # Named .m4a, but the bytes are the MP3 the music URL serves.
    assert (tmp_path / f"{POST_ID}.m4a").read_bytes() == slideshow.music.read_bytes()
    assert (tiktok.image_requests, tiktok.music_requests) == (0, 1)


async def test_ytdlp_finds_no_formats_without_music(
    tiktok: TikTokStandIn, slideshow: Slideshow, tmp_path: Path
) -> None:
    tiktok.add_photo_post(POST_ID, slideshow.images, None)

    with pytest.raises(DownloadError, match=r"\[TikTok\] \d+: No video formats found!"):
        await run_ytdlp(tiktok, tmp_path, tiktok.post_url(POST_ID))


async def test_ytdlp_rejects_photo_urls_and_video_only_formats(
    tiktok: TikTokStandIn, slideshow: Slideshow, tmp_path: Path
) -> None:
    tiktok.add_photo_post(POST_ID, slideshow.images, slideshow.music)

    with pytest.raises(DownloadError, match="No suitable extractor found for URL"):
        await run_ytdlp(tiktok, tmp_path, tiktok.photo_url(POST_ID), allowed_extractors=["tiktok"])
    with pytest.raises(DownloadError, match="Requested format is not available"):
        await run_ytdlp(
            tiktok, tmp_path, tiktok.post_url(POST_ID), format="bv*[vcodec^=avc]+ba/b[vcodec^=avc]"
        )
    assert tiktok.music_requests == 0


async def test_image_cdn_needs_the_signature_not_a_cookie(
    tiktok: TikTokStandIn, slideshow: Slideshow
) -> None:
    tiktok.add_photo_post(POST_ID, slideshow.images, slideshow.music)
    first = tiktok.image_urls(POST_ID)[0]
    unsigned = first.partition("?")[0]
    tampered = first.replace("x-expires=", "x-expires=9")
    music_url = tiktok.music_url(POST_ID)
    assert music_url is not None

    async with httpx.AsyncClient(
        proxy=tiktok.proxy_url, verify=tiktok.client_ssl_context()
    ) as client:
        denied = [await client.get(u) for u in (unsigned, tampered)]
        page = await client.get(tiktok.photo_url(POST_ID))
        still_denied = await client.get(unsigned)
        signed = await client.get(first)
        other_host = await client.get(first.replace("p16-sign-va", "p19-sign-va"))
        music = await client.get(music_url)

    assert [r.status_code for r in denied] == [403, 403]
    assert page.status_code == 200
    assert '"imagePost"' in page.text
    assert "tt_chain_token" in page.cookies
    assert still_denied.status_code == 403
    assert (signed.status_code, signed.headers["Content-Type"]) == (200, "image/jpeg")
    assert signed.content == other_host.content == slideshow.images[0].read_bytes()
    assert (music.status_code, music.headers["Content-Type"]) == (200, "audio/mpeg")
    assert music.content == slideshow.music.read_bytes()
    assert tiktok.image_requests == 5
