"""The SSRF guard: the address classifier, and the real yt-dlp refusing what leads inside."""

from __future__ import annotations

import contextlib
import ipaddress
import re
from collections.abc import Sequence
from pathlib import Path

import imageio_ffmpeg
import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st
from yt_dlp.utils import DownloadError

from bot.download import YtDlpDownloader
from bot.links import Link, LinkKind, parse_link
from bot.model import FetchError, Reason, SlideshowPost
from bot.netguard import (
    AddressRefused,
    HostGuard,
    Resolver,
    SystemResolver,
    is_public,
    literal_address,
)
from bot.proxies import ProxyPool
from bot.sites import SiteCatalog
from tests.harness import run_ytdlp
from tests.standins.clips import Clip
from tests.standins.dns import TableResolver
from tests.standins.othersite import PlainWebSite
from tests.standins.tiktok import TikTokStandIn

METADATA = "http://169.254.169.254/latest/meta-data/"


# -- the classifier ----------------------------------------------------------------------------

REFUSED = [
    "127.0.0.1",
    "127.255.255.254",
    "10.1.2.3",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",
    "100.64.0.1",
    "0.0.0.0",  # noqa: S104 (an address to refuse, not one to bind)
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.1",
    "198.18.0.1",
    "::",
    "::1",
    "fe80::1",
    "fc00::1",
    "fd12:3456::1",
    "fec0::1",
    "ff02::1",
    "::ffff:127.0.0.1",
    "::ffff:169.254.169.254",
    "::127.0.0.1",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2001:db8::1",
    "100::1",
]
PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("text", REFUSED)
def test_non_public_addresses_are_refused(text: str) -> None:
    assert not is_public(ipaddress.ip_address(text))


@pytest.mark.parametrize("text", PUBLIC)
def test_public_addresses_pass(text: str) -> None:
    assert is_public(ipaddress.ip_address(text))


@given(st.ip_addresses(v=4))
def test_an_ipv4_address_and_its_mapped_ipv6_form_agree(address: ipaddress.IPv4Address) -> None:
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    assert is_public(mapped) == is_public(address)


@given(
    st.sampled_from(["10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12"]).flatmap(
        lambda net: st.ip_addresses(network=net)
    )
)
def test_every_address_of_a_private_network_is_refused(address: ipaddress.IPv4Address) -> None:
    assert not is_public(address)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
    ],
)
def test_odd_literal_forms_are_read_as_the_c_library_reads_them(host: str, address: str) -> None:
    assert literal_address(host) == ipaddress.ip_address(address)


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",
        "http://0x7f.1/",
        "https://127.1:8443/x",
        "http://0177.0.0.1/",
        "http://[::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:a9fe:a9fe]/",
        "http://[fe80::1%25eth0]/",
        "http://user:pw@10.0.0.1/",
        "http://169.254.169.254./latest/",
        "http://0.0.0.0:8080/",
    ],
)
def test_literal_addresses_are_refused_without_any_lookup(url: str) -> None:
    resolver = TableResolver({})
    with pytest.raises(AddressRefused):
        HostGuard(resolver).check_url(url)
    assert resolver.asked == []


@pytest.mark.parametrize("url", ["http://localhost/", "http://LOCALHOST./", "http://a.localhost/"])
def test_localhost_names_are_refused_even_when_only_a_proxy_would_resolve_them(url: str) -> None:
    with pytest.raises(AddressRefused, match="local machine"):
        HostGuard(TableResolver({})).check_url(url)


def test_a_name_is_refused_when_any_of_its_addresses_is_not_public() -> None:
    guard = HostGuard(
        TableResolver(
            {
                "inside.example": ["10.0.0.5"],
                "split.example": ["93.184.215.14", "::1"],
                "fine.example": ["93.184.215.14", "2606:4700:4700::1111"],
            }
        )
    )
    for host in ("inside.example", "split.example"):
        with pytest.raises(AddressRefused, match=host):
            guard.check_url(f"https://{host}/video")
    guard.check_url("https://fine.example/video")


def test_a_name_that_does_not_resolve_here_is_left_to_the_proxy() -> None:
    resolver = TableResolver({})
    HostGuard(resolver).check_url("https://only-the-proxy-knows.example/clip")
    assert resolver.asked == ["only-the-proxy-knows.example"]


@given(st.text(max_size=300) | st.builds("http://{}/x".format, st.text(max_size=100)))
def test_any_text_is_passed_or_refused_never_an_error(text: str) -> None:
    with contextlib.suppress(AddressRefused):
        HostGuard(TableResolver({})).check_url(text)


def test_the_system_resolver_reads_localhost_from_the_hosts_file() -> None:
    assert "127.0.0.1" in SystemResolver().addresses("localhost")


# -- the real yt-dlp, through the stand-in proxy ------------------------------------------------


@pytest.fixture
def web_site(tiktok: TikTokStandIn) -> PlainWebSite:
    return PlainWebSite.attach(tiktok)


def downloader(
    proxy: str | None, resolver: Resolver, extractors: Sequence[str] = ("tiktok", "generic")
) -> YtDlpDownloader:
    """The bot's downloader, its hosts vetted through `resolver`; by default with the generic
    extractor allowed, as ALLOWED_SITES=generic."""
    return YtDlpDownloader(
        proxies=ProxyPool([proxy] if proxy else []),
        verify_tls=False,
        timeout_s=30,
        ffmpeg_path=imageio_ffmpeg.get_ffmpeg_exe(),
        threads=1,
        max_duration_s=600,
        extractors=extractors,
        guard=HostGuard(resolver),
    )


async def fetch(tiktok: TikTokStandIn, resolver: TableResolver, url: str, workdir: Path) -> Path:
    ytdlp = downloader(tiktok.proxy_url, resolver)
    link = parse_link(url) or Link("generic", LinkKind.VIDEO, url, None, url)
    workdir.mkdir()
    try:
        return (await ytdlp.fetch(link, workdir, 50_000_000)).path
    finally:
        ytdlp.close()


def hosts_reached(tiktok: TikTokStandIn) -> set[str]:
    """Every host the proxy was asked for: served, refused, or plain-HTTP."""
    asked = {r.host for r in tiktok.requests}
    for target in [*tiktok.refused, *tiktok.plain_requests]:
        host = target.split("://", 1)[-1].split("/", 1)[0]
        asked.add(host.rpartition(":")[0].strip("[]") if ":" in host else host)
    return asked


async def test_a_redirect_to_the_metadata_address_is_refused_before_it_is_sent(
    tiktok: TikTokStandIn, web_site: PlainWebSite, tmp_path: Path
) -> None:
    url = web_site.add_redirect("www.example.net", "/watch/1", METADATA)
    with pytest.raises(FetchError) as caught:
        await fetch(tiktok, TableResolver({}), url, tmp_path / "job")
    assert caught.value.reason is Reason.UNSAFE_ADDRESS
    assert [(r.host, r.path) for r in tiktok.requests] == [("www.example.net", "/watch/1")]
    assert "169.254.169.254" not in hosts_reached(tiktok)


async def test_without_the_guard_that_redirect_reaches_the_proxy(
    tiktok: TikTokStandIn, web_site: PlainWebSite, tmp_path: Path
) -> None:
    """The control for the test above: plain yt-dlp follows the redirect."""
    url = web_site.add_redirect("www.example.net", "/watch/1", METADATA)
    with pytest.raises(Exception, match="405"):
        await run_ytdlp(tiktok, tmp_path, url, allowed_extractors=["generic"])
    assert "169.254.169.254" in hosts_reached(tiktok)


async def test_a_link_whose_name_resolves_to_loopback_is_refused(
    tiktok: TikTokStandIn, web_site: PlainWebSite, h264_clip: Clip, tmp_path: Path
) -> None:
    # The stand-in serves the host; only the guard's lookup tells it is 127.0.0.1.
    url = web_site.add_media("inside.example.net", "/clip.mp4", h264_clip)
    resolver = TableResolver({"inside.example.net": ["127.0.0.1"]})
    with pytest.raises(FetchError) as caught:
        await fetch(tiktok, resolver, url, tmp_path / "job")
    assert caught.value.reason is Reason.UNSAFE_ADDRESS
    assert "inside.example.net" in resolver.asked
    assert hosts_reached(tiktok) == set()


async def test_localhost_is_refused_by_the_real_resolver_too(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    ytdlp = downloader(tiktok.proxy_url, SystemResolver(), ["generic"])
    url = "https://localhost/clip.mp4"
    try:
        with pytest.raises(FetchError) as caught:
            await ytdlp.fetch(Link("generic", LinkKind.VIDEO, url, None, url), tmp_path, 10**7)
    finally:
        ytdlp.close()
    assert caught.value.reason is Reason.UNSAFE_ADDRESS
    assert re.search(r"resolves to (127\.0\.0\.1|::1)", caught.value.detail)
    assert hosts_reached(tiktok) == set()


async def test_media_a_page_points_inside_is_refused_after_the_page(
    tiktok: TikTokStandIn, web_site: PlainWebSite, h264_clip: Clip, tmp_path: Path
) -> None:
    inside = web_site.add_media("inside.example.net", "/clip.mp4", h264_clip)
    page = web_site.add_page("www.example.net", "/post", inside)
    resolver = TableResolver({"inside.example.net": ["10.0.0.7"]})
    with pytest.raises(FetchError) as caught:
        await fetch(tiktok, resolver, page, tmp_path / "job")
    assert caught.value.reason is Reason.UNSAFE_ADDRESS
    assert hosts_reached(tiktok) == {"www.example.net"}


async def test_a_public_page_and_its_redirected_media_still_download(
    tiktok: TikTokStandIn, web_site: PlainWebSite, h264_clip: Clip, tmp_path: Path
) -> None:
    media = web_site.add_media("cdn.example.net", "/clip.mp4", h264_clip)
    hop = web_site.add_redirect("go.example.net", "/latest.mp4", media)
    page = web_site.add_page("www.example.net", "/post", hop)
    resolver = TableResolver({"cdn.example.net": ["93.184.215.14"]})
    path = await fetch(tiktok, resolver, page, tmp_path / "job")
    assert path.read_bytes() == h264_clip.path.read_bytes()
    assert {"www.example.net", "go.example.net", "cdn.example.net"} <= hosts_reached(tiktok)
    assert "cdn.example.net" in resolver.asked


async def test_tiktok_jobs_are_not_vetted(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    """TikTok's own hosts come from TikTok's page: no lookups, no change on the hot path."""
    tiktok.add_video("7300000000000000001", h264_clip)
    resolver = TableResolver({})
    path = await fetch(tiktok, resolver, tiktok.post_url("7300000000000000001"), tmp_path / "j")
    assert path.is_file()
    assert resolver.asked == []


async def test_media_that_ffmpeg_would_fetch_itself_is_refused(
    tiktok: TikTokStandIn, web_site: PlainWebSite, tmp_path: Path
) -> None:
    """rtsp (and rtmp, live HLS) go to ffmpeg or rtmpdump, which connect past the guard."""
    page = web_site.add_page("www.example.net", "/cam", "rtsp://cams.example.net/stream.mp4")
    with pytest.raises(FetchError) as caught:
        await fetch(tiktok, TableResolver({}), page, tmp_path / "job")
    assert caught.value.reason is Reason.UNSUPPORTED_SITE
    assert "rtsp media" in caught.value.detail
    assert hosts_reached(tiktok) == {"www.example.net"}
    assert list((tmp_path / "job").iterdir()) == []


class RebindingResolver:
    """A name whose DNS answer turns from public to loopback after the first lookup."""

    def __init__(self) -> None:
        self.asked = 0

    def addresses(self, host: str) -> list[str]:
        self.asked += 1
        return ["93.184.215.14"] if self.asked == 1 else ["127.0.0.1"]


async def test_without_a_proxy_the_connection_uses_the_vetted_address(tmp_path: Path) -> None:
    """DNS rebinding: the link passes the first lookup, the connection's lookup says 127.0.0.1,
    and a server listening there gets nothing."""
    seen: list[str] = []

    async def record(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(body=b"not a video", content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    resolver = RebindingResolver()
    ytdlp = downloader(None, resolver, ["generic"])
    url = f"http://rebind.example.net:{site.port}/clip.mp4"
    try:
        with pytest.raises(FetchError) as caught:
            await ytdlp.fetch(Link("generic", LinkKind.VIDEO, url, None, url), tmp_path, 10**7)
    finally:
        ytdlp.close()
        await runner.cleanup()
    assert caught.value.reason is Reason.UNSAFE_ADDRESS
    assert "127.0.0.1" in caught.value.detail
    assert resolver.asked == 2
    assert seen == []


async def test_a_page_with_only_a_video_tag_downloads_and_its_media_is_vetted(
    tiktok: TikTokStandIn, web_site: PlainWebSite, h264_clip: Clip, tmp_path: Path
) -> None:
    """ALLOWED_SITES=generic brings yt-dlp's "html5" extractor along, for plain <video> tags;
    its media requests pass the guard like the rest."""
    media = web_site.add_media("cdn.example.net", "/clip.mp4", h264_clip)
    page = web_site.add_page("www.example.net", "/plain", media, og_video=False)
    resolver = TableResolver({"cdn.example.net": ["93.184.215.14"]})
    ytdlp = downloader(tiktok.proxy_url, resolver, SiteCatalog(["generic"]).ytdlp_extractors)
    try:
        download = await ytdlp.fetch(
            Link("generic", LinkKind.VIDEO, page, None, page), tmp_path, 10**8
        )
    finally:
        ytdlp.close()
    assert download.path.read_bytes() == h264_clip.path.read_bytes()
    assert "cdn.example.net" in resolver.asked


SAMPLE_AES_PLAYLIST = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:0
#EXT-X-KEY:METHOD=SAMPLE-AES,URI="https://cdn.example.net/key.bin"
#EXTINF:2.0,
https://cdn.example.net/seg0.ts
#EXT-X-ENDLIST
"""


@pytest.mark.parametrize("vetted", [True, False])
async def test_ffmpeg_taking_over_an_hls_download_opens_no_network_input(
    tiktok: TikTokStandIn, web_site: PlainWebSite, tmp_path: Path, vetted: bool
) -> None:
    """yt-dlp's native HLS downloader hands a SAMPLE-AES playlist to ffmpeg, which would fetch
    it (and its segments, from anywhere) itself, past the guard: plain yt-dlp lets it, a vetted
    job does not. ffmpeg's CONNECT is told apart by its HTTP/1.1 (urllib3 sends HTTP/1.0)."""
    playlist = web_site.add_file(
        "cdn.example.net", "/v.m3u8", SAMPLE_AES_PLAYLIST, "application/vnd.apple.mpegurl"
    )
    page = web_site.add_page("www.example.net", "/hls", playlist)
    if vetted:
        with pytest.raises(FetchError, match="ffmpeg exited"):
            await fetch(tiktok, TableResolver({}), page, tmp_path / "job")
    else:
        ffmpeg = imageio_ffmpeg.get_ffmpeg_exe()
        with pytest.raises(DownloadError, match="ffmpeg exited"):
            await run_ytdlp(
                tiktok, tmp_path, page, allowed_extractors=["generic"], ffmpeg_location=ffmpeg
            )
    ffmpeg_tunnels = [
        head
        for head in tiktok.proxy_heads
        if head.startswith("CONNECT cdn.example.net:443 HTTP/1.1\r\n")
    ]
    assert len(ffmpeg_tunnels) == (0 if vetted else 1)


async def test_audio_only_media_of_another_site_is_not_handed_to_gallery_dl(
    tiktok: TikTokStandIn, web_site: PlainWebSite, tmp_path: Path
) -> None:
    """gallery-dl fetches past the guard: only a TikTok job may become a photo post for it."""
    url = web_site.add_file("www.example.net", "/photo.jpg", "ID3" + "x" * 100, "audio/mpeg")
    with pytest.raises(FetchError) as caught:
        await fetch(tiktok, TableResolver({}), url, tmp_path / "job")
    assert not isinstance(caught.value, SlideshowPost)
    assert caught.value.reason is Reason.NOT_A_VIDEO
