"""The TikTok stand-in's faults, as the real yt-dlp and httpx see them through its proxy."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from yt_dlp.utils import DownloadError

from tests.harness import run_ytdlp
from tests.standins.clips import Clip
from tests.standins.tiktok import Fault, TikTokStandIn

# yt-dlp drops a failed media response unclosed; see tests/test_tiktok_faults.py.
pytestmark = [
    pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning"),
    pytest.mark.usefixtures("collect_leaked_sockets"),
]

POST = "7430000000000000001"
OTHER = "7430000000000000002"


@pytest.fixture
async def tiktok(h264_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        tt.add_video(POST, h264_clip)
        tt.add_video(OTHER, h264_clip)
        yield tt


def client(tt: TikTokStandIn) -> httpx.AsyncClient:
    return httpx.AsyncClient(proxy=tt.proxy_url, verify=tt.client_ssl_context())


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.PAGE_ERROR, "Unable to download webpage: HTTP Error 502"),
        # The page goes through curl_cffi, whose read timeout has whole seconds.
        (Fault.PAGE_SILENT, "Operation too slow"),
        (Fault.CHALLENGE, "Unable to extract challenge data"),
        (Fault.MEDIA_FORBIDDEN, "unable to download video data: HTTP Error 403"),
        (Fault.MEDIA_ERROR, "HTTP Error 503"),
        (Fault.MEDIA_RESET, "more expected"),
        (Fault.MEDIA_STALL, "Read timed out"),
        (Fault.MEDIA_SILENT, "Read timed out"),
    ],
)
async def test_each_fault_is_an_error_to_ytdlp_without_retries(
    tiktok: TikTokStandIn, tmp_path: Path, fault: Fault, error: str
) -> None:
    tiktok.inject(fault)
    with pytest.raises(DownloadError, match=error):
        await run_ytdlp(tiktok, tmp_path, tiktok.post_url(POST), retries=0, socket_timeout=0.5)
    assert [(s.fault, s.post_id) for s in tiktok.served_faults] == [(fault, POST)]


async def test_a_fault_strikes_the_next_n_requests_of_its_post_only(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    tiktok.inject(Fault.MEDIA_ERROR, post_id=POST, times=2)

    await run_ytdlp(tiktok, tmp_path / "other", tiktok.post_url(OTHER), retries=0)
    info = await run_ytdlp(tiktok, tmp_path / "post", tiktok.post_url(POST), retries=2)

    assert Path(info["requested_downloads"][0]["filepath"]).read_bytes() == (
        h264_clip.path.read_bytes()
    )
    assert [s.post_id for s in tiktok.served_faults] == [POST, POST]
    # OTHER's media once, POST's three times.
    assert tiktok.media_requests == 4


@pytest.mark.parametrize("fault", [Fault.MEDIA_RESET, Fault.MEDIA_STALL])
async def test_after_a_cut_ytdlp_resumes_with_a_range_and_gets_the_whole_file(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path, fault: Fault
) -> None:
    tiktok.inject(fault)

    info = await run_ytdlp(tiktok, tmp_path, tiktok.post_url(POST), retries=1, socket_timeout=0.5)

    assert Path(info["requested_downloads"][0]["filepath"]).read_bytes() == (
        h264_clip.path.read_bytes()
    )
    first, resumed = [r for r in tiktok.requests if r.host == TikTokStandIn.CDN_HOST]
    assert "Range" not in first.headers
    assert resumed.headers["Range"].startswith("bytes=")
    assert tiktok.media_bytes_sent < h264_clip.size * 1.2


async def test_until_cleared_a_fault_strikes_every_time(tiktok: TikTokStandIn) -> None:
    tiktok.inject(Fault.PAGE_ERROR, times=None)
    async with client(tiktok) as http:
        statuses = [(await http.get(tiktok.post_url(POST))).status_code for _ in range(3)]
        tiktok.clear_faults()
        statuses.append((await http.get(tiktok.post_url(POST))).status_code)
    assert statuses == [502, 502, 502, 200]


async def test_random_faults_follow_the_seed(h264_clip: Clip) -> None:
    async def statuses(seed: int) -> list[int]:
        async with TikTokStandIn() as tt, client(tt) as http:
            tt.add_video(POST, h264_clip)
            tt.fail_randomly(random.Random(seed), 0.5, kinds={Fault.PAGE_ERROR, Fault.MEDIA_ERROR})
            return [(await http.get(tt.post_url(POST))).status_code for _ in range(40)]

    first, again, other = await statuses(7), await statuses(7), await statuses(8)
    assert first == again
    assert first != other
    # Only the page kind strikes a page; about half the time.
    assert set(first) == {200, 502}
    assert 8 <= first.count(502) <= 32


async def test_media_without_content_length_and_with_filler_is_streamed_chunked(
    tiktok: TikTokStandIn, h264_clip: Clip
) -> None:
    tiktok.add_video("7430000000000000003", h264_clip, content_length=False, trailing_bytes=100)
    async with client(tiktok) as http:
        await http.get(tiktok.post_url("7430000000000000003"))
        [url] = tiktok.media_urls("7430000000000000003")
        whole = await http.get(url)
        tail = await http.get(url, headers={"Range": f"bytes={h264_clip.size - 2}-"})
    assert "Content-Length" not in whole.headers
    assert whole.headers["Transfer-Encoding"] == "chunked"
    assert whole.content == h264_clip.path.read_bytes() + bytes(100)
    assert tail.status_code == 206
    assert tail.content == h264_clip.path.read_bytes()[-2:] + bytes(100)
    assert tiktok.media_bytes_sent == h264_clip.size + 100 + 102
