"""Today's TikTok breakages in the stand-in, as real yt-dlp and httpx see them through its proxy:
blocked addresses, moved page data, login and cookie walls, more short link forms, and the
browser check TikTok's WAF makes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yt_dlp
from yt_dlp.utils import DownloadError

from tests.harness import run_ytdlp
from tests.standins.clips import Clip
from tests.standins.tiktok import PERMANENT_FAULTS, Fault, TikTokStandIn

# yt-dlp drops a failed media response unclosed; see tests/test_tiktok_faults.py.
pytestmark = [
    pytest.mark.filterwarnings("ignore:unclosed <ssl.SSLSocket:ResourceWarning"),
    pytest.mark.usefixtures("collect_leaked_sockets"),
]

POST = "7440000000000000001"


@pytest.fixture
async def tiktok(h264_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        tt.add_video(POST, h264_clip)
        yield tt


def client(tt: TikTokStandIn, **options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(proxy=tt.proxy_url, verify=tt.client_ssl_context(), **options)


def pages(tt: TikTokStandIn) -> list[str | None]:
    """The proxy of each post page request, in order."""
    return [r.proxy for r in tt.requests if r.host == TikTokStandIn.WEB_HOST]


def cookies_txt(path: Path, *lines: tuple[str, str, str]) -> Path:
    """A Netscape cookies.txt with (domain, name, value) lines."""
    rows = [f"{d}\tTRUE\t/\tTRUE\t2147483647\t{n}\t{v}" for d, n, v in lines]
    path.write_text("# Netscape HTTP Cookie File\n" + "\n".join(rows) + "\n")
    return path


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.BLOCKED_IP, r"\[TikTok\] \d+: Your IP address is blocked from accessing this post$"),
        # No rehydration script and no challenge: yt-dlp has nothing it knows on the page.
        (Fault.DATA_MOVED, r"\[TikTok\] \d+: Unexpected response from webpage request"),
    ],
)
async def test_page_breakages_are_errors_to_ytdlp(
    tiktok: TikTokStandIn, tmp_path: Path, fault: Fault, error: str
) -> None:
    tiktok.inject(fault)
    with pytest.raises(DownloadError, match=error):
        await run_ytdlp(tiktok, tmp_path, tiktok.post_url(POST), retries=0)
    assert [(s.fault, s.post_id) for s in tiktok.served_faults] == [(fault, POST)]
    assert tiktok.media_requests == 0


def test_the_new_page_breakages_are_permanent_page_faults() -> None:
    for fault in (Fault.BLOCKED_IP, Fault.DATA_MOVED):
        assert fault in PERMANENT_FAULTS
        assert fault.on_page


async def test_moved_data_is_a_normal_page_under_another_script(tiktok: TikTokStandIn) -> None:
    tiktok.inject(Fault.DATA_MOVED)
    async with client(tiktok) as http:
        page = (await http.get(tiktok.post_url(POST))).text
    assert page.count("<script") == 1
    assert "__UNIVERSAL_DATA_FOR_REHYDRATION__" not in page
    assert f'"id": "{POST}"' in page


async def test_each_proxy_is_its_own_way_in_and_requests_say_which(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    first = tiktok.proxy_url
    second = tiktok.add_proxy()
    assert second != first
    assert tiktok.proxy_urls == [first, second]

    info = await run_ytdlp(tiktok, tmp_path, tiktok.post_url(POST), proxy=second)

    assert Path(info["requested_downloads"][0]["filepath"]).read_bytes() == (
        h264_clip.path.read_bytes()
    )
    assert {r.proxy for r in tiktok.requests} == {second}
    assert tiktok.proxy_url == first


@pytest.mark.parametrize(
    ("fault", "error"),
    [
        (Fault.BLOCKED_IP, "Your IP address is blocked"),
        (Fault.CHALLENGE, "Unable to extract challenge data"),
    ],
)
async def test_a_blocked_proxy_gets_the_fault_on_every_page_and_the_other_does_not(
    tiktok: TikTokStandIn, tmp_path: Path, fault: Fault, error: str
) -> None:
    blocked = tiktok.proxy_url
    other = tiktok.add_proxy()
    tiktok.block_proxy(blocked, fault)

    for attempt in range(2):
        with pytest.raises(DownloadError, match=error):
            await run_ytdlp(tiktok, tmp_path / f"a{attempt}", tiktok.post_url(POST))
    await run_ytdlp(tiktok, tmp_path / "other", tiktok.post_url(POST), proxy=other)
    tiktok.unblock_proxy(blocked)
    await run_ytdlp(tiktok, tmp_path / "again", tiktok.post_url(POST))

    assert pages(tiktok) == [blocked, blocked, other, blocked]
    assert [s.fault for s in tiktok.served_faults] == [fault, fault]


async def test_only_address_blocks_block_a_proxy(tiktok: TikTokStandIn) -> None:
    with pytest.raises(ValueError, match="blocked with one of"):
        tiktok.block_proxy(tiktok.proxy_url, Fault.MEDIA_ERROR)
    with pytest.raises(ValueError, match="not one of"):
        tiktok.block_proxy("http://127.0.0.1:1")


async def test_a_page_cookie_wall_opens_with_the_cookie_from_a_cookies_file(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    tiktok.require_cookie(POST, "sessionid", "s3cr3t")

    with pytest.raises(DownloadError, match="TikTok is requiring login"):
        await run_ytdlp(tiktok, tmp_path / "without", tiktok.post_url(POST))
    jar = cookies_txt(tmp_path / "cookies.txt", (".tiktok.com", "sessionid", "s3cr3t"))
    info = await run_ytdlp(tiktok, tmp_path / "with", tiktok.post_url(POST), cookiefile=str(jar))

    assert info["id"] == POST
    page = next(r for r in reversed(tiktok.requests) if r.host == TikTokStandIn.WEB_HOST)
    assert "sessionid=s3cr3t" in page.headers["Cookie"]


async def test_a_wrong_cookie_value_still_meets_the_wall(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    tiktok.require_cookie(POST, "sessionid", "s3cr3t")
    jar = cookies_txt(tmp_path / "cookies.txt", (".tiktok.com", "sessionid", "stale"))
    with pytest.raises(DownloadError, match="TikTok is requiring login"):
        await run_ytdlp(tiktok, tmp_path, tiktok.post_url(POST), cookiefile=str(jar))


async def test_a_media_cookie_wall_answers_403_without_the_cookie(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    tiktok.require_cookie(POST, "msToken", "abc", on="media")

    with pytest.raises(DownloadError, match="HTTP Error 403"):
        await run_ytdlp(tiktok, tmp_path / "without", tiktok.post_url(POST))
    # A .tiktok.com cookie reaches the video CDN host too.
    jar = cookies_txt(tmp_path / "cookies.txt", (".tiktok.com", "msToken", "abc"))
    info = await run_ytdlp(tiktok, tmp_path / "with", tiktok.post_url(POST), cookiefile=str(jar))

    assert Path(info["requested_downloads"][0]["filepath"]).read_bytes() == (
        h264_clip.path.read_bytes()
    )


async def test_a_media_cookie_wall_still_wants_the_chain_token(tiktok: TikTokStandIn) -> None:
    tiktok.require_cookie(POST, "msToken", "abc", on="media")
    [url] = tiktok.media_urls(POST)
    async with client(tiktok, cookies={"msToken": "abc"}) as http:
        alone = await http.get(url)
        await http.get(tiktok.post_url(POST))
        with_token = await http.get(url)
    assert (alone.status_code, with_token.status_code) == (403, 200)


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("vm.tiktok.com", "https://vm.tiktok.com/ZMh-AbC12/"),
        ("vt.tiktok.com", "https://vt.tiktok.com/ZMh-AbC12/"),
        ("www.tiktok.com", "https://www.tiktok.com/t/ZMh-AbC12/"),
        ("lite.tiktok.com", "https://lite.tiktok.com/t/ZMh-AbC12/"),
    ],
)
async def test_short_links_with_dashes_and_on_lite(
    tiktok: TikTokStandIn, host: str, url: str
) -> None:
    tiktok.add_short_link("ZMh-AbC12", f"/@creator/video/{POST}", host=host)
    async with client(tiktok, headers={"User-Agent": "facebookexternalhit/1.1"}) as http:
        head = await http.head(url)
        get = await http.get(url)
        unknown = await http.head(url.replace("ZMh-AbC12", "ZMh-Other"))
    expected = f"https://www.tiktok.com/@creator/video/{POST}?_t=abc&_r=1"
    assert (head.status_code, head.headers["Location"]) == (301, expected)
    assert (get.status_code, get.headers["Location"]) == (301, expected)
    assert unknown.status_code == 404


async def test_a_lite_short_link_is_followed_by_ytdlp(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    tiktok.add_short_link("ZMh-AbC12", f"/@creator/video/{POST}", host="lite.tiktok.com")
    info = await run_ytdlp(tiktok, tmp_path, "https://lite.tiktok.com/t/ZMh-AbC12/", download=False)
    assert info["id"] == POST


async def test_ytdlp_asks_for_the_page_as_a_browser_and_for_the_media_as_itself(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    await run_ytdlp(tiktok, tmp_path, tiktok.post_url(POST))
    [page] = [r for r in tiktok.requests if r.host == TikTokStandIn.WEB_HOST]
    [media] = [r for r in tiktok.requests if r.host == TikTokStandIn.CDN_HOST]

    assert page.impersonated
    assert page.tls is not None
    assert page.tls.alpn[0] == "h2"
    assert "Sec-CH-UA" in page.headers
    # The media goes through yt-dlp's own requests/urllib handler: OpenSSL, no GREASE.
    assert not media.impersonated
    assert media.tls is not None
    assert media.tls.ciphers


async def test_httpx_does_not_look_like_a_browser_even_with_browser_headers(
    tiktok: TikTokStandIn,
) -> None:
    headers = {"Sec-CH-UA": '"Chromium";v="152"', "User-Agent": "Mozilla/5.0 Chrome/152"}
    async with client(tiktok, headers=headers) as http:
        await http.get(tiktok.post_url(POST))
    [page] = tiktok.requests
    assert page.tls is not None
    assert not page.impersonated


async def test_require_browser_challenges_clients_that_do_not_impersonate(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    tiktok.require_browser = True
    async with client(tiktok) as http:
        refused = await http.get(tiktok.post_url(POST))
    info = await run_ytdlp(tiktok, tmp_path, tiktok.post_url(POST), download=False)

    assert "Please wait..." in refused.text
    assert "__UNIVERSAL_DATA_FOR_REHYDRATION__" not in refused.text
    assert info["id"] == POST
    assert [s.fault for s in tiktok.served_faults] == [Fault.CHALLENGE]


class _PlainYoutubeDL(yt_dlp.YoutubeDL):  # type: ignore[misc]
    """yt-dlp without its curl_cffi handler: it cannot impersonate, so it warns and asks as
    itself."""

    def build_request_director(self, handlers: Any, preferences: Any = None) -> Any:
        plain = [handler for handler in handlers if handler.RH_KEY != "CurlCFFI"]
        return super().build_request_director(plain, preferences)


async def test_require_browser_challenges_ytdlp_without_impersonation(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    tiktok.require_browser = True
    options = {
        "proxy": tiktok.proxy_url,
        "nocheckcertificate": True,
        "quiet": True,
        "no_warnings": True,
        "outtmpl": str(tmp_path / "%(id)s.%(ext)s"),
    }

    def run() -> None:
        with _PlainYoutubeDL(options) as ydl:
            ydl.extract_info(tiktok.post_url(POST), download=False)

    with pytest.raises(DownloadError, match="Unable to extract challenge data"):
        await asyncio.to_thread(run)
    [page] = tiktok.requests
    assert not page.impersonated
