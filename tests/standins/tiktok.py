"""A local TikTok for end-to-end tests: an HTTPS-intercepting proxy that real yt-dlp talks to.

yt-dlp (and httpx, gallery-dl) get ``proxy=stand_in.proxy_url`` and TLS verification off (or
``client_ssl_context()``). The proxy answers ``CONNECT`` for TikTok hosts (and the domains of sites
added with ``add_site``) only and pipes the tunnel into a local aiohttp HTTPS server whose
certificates come from a throwaway trustme CA. That server plays www.tiktok.com (post pages with
the rehydration JSON, the /login wall, /t/ short links), vm/vt.tiktok.com (short links), the video
CDN (mp4 behind the ``tt_chain_token`` cookie) and, for photo posts, the image CDN (signed URLs)
and the music CDN (public ``.mp3`` objects).

What yt-dlp 2026.10.26 makes of it (``TikTokIE._real_extract``, ``_extract_web_formats``):

- Each clip of a post becomes one ``bitrateInfo`` entry whose ``UrlKey`` names its real codec
  (``h264`` or ``bytevc1``, which yt-dlp reports as ``h265``), resolution and bitrate, with the real
  file size as ``DataSize``. ``playAddr`` repeats the first clip's URL, so yt-dlp drops it as a
  duplicate and every format it lists is truthful.
- ``music`` has no ``playUrl``: yt-dlp lists no separate audio-only format.
- There are no cover images, subtitles or a ``downloadAddr``, so yt-dlp makes no other requests.

Photo posts (``add_photo_post``), as TikTok serves them:

- The same page at ``/@user/photo/ID`` and ``/@user/video/ID``; ``itemStruct`` carries
  ``imagePost.images[]`` (``imageURL.urlList``, ``imageWidth``, ``imageHeight``), an empty
  ``video`` (duration 0, no ``playAddr``/``bitrateInfo``) and ``music.playUrl``.
- Slides live on p16-sign-va / p19-sign-va.tiktokcdn.com as
  ``/tos-maliva-i-photomode-us/HEX~tplv-photomode-image.jpeg?lk3s=..&x-expires=..&x-signature=..``.
  The signature is what the CDN checks (403 without it, or once expired): the page's
  ``tt_chain_token`` is a tiktok.com cookie and never reaches a tiktokcdn.com host.
- The music is a public object, ``https://sf16-ies-music-va.tiktokcdn.com/obj/ies-music-ttp-dup-us/
  ID.mp3``, served as audio/mpeg.
- yt-dlp (only ``/video/`` URLs; it rejects ``/photo/`` as unsupported) lists one format:
  ``format_id`` "audio", ``vcodec`` "none", ``acodec`` "aac", ``ext`` "m4a" (its default when the
  URL has no ``mime_type``), so it saves the MP3 bytes as ``ID.m4a``. The duration is the
  music's. Without music it raises "No video formats found!".
- gallery-dl's ``tiktok`` extractor downloads every ``urlList[0]`` slide and, with its default
  ``audio: true``, the music (``num`` 1..N for slides, 0 for the music).

Ways in and the breakages that close them (what yt-dlp 2026.11 says, after "[TikTok] ID: "):

- Several proxies (``add_proxy``), each another exit address into the same TikTok; every
  ``RecordedRequest`` names the proxy it came through. ``block_proxy`` makes TikTok refuse one:
  ``Fault.BLOCKED_IP`` (statusCode 10204: "Your IP address is blocked from accessing this post")
  or ``Fault.CHALLENGE`` ("Unable to extract challenge data").
- ``Fault.DATA_MOVED``: the page's data under another script id ("Unexpected response from
  webpage request": no rehydration data and no challenge either).
- ``require_cookie``: a post page (login redirect) or its media (403) behind a cookie, as a
  cookies.txt gives it.
- ``RecordedRequest.tls`` is the ClientHello that opened the tunnel. curl_cffi impersonating
  Chrome (yt-dlp's page request) offers GREASE and h2; Python's ssl (httpx, requests, yt-dlp's
  media request) does neither. ``require_browser`` challenges page requests without GREASE.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import enum
import hashlib
import hmac
import html
import json
import random
import re
import secrets
import socket
import ssl
import time
import urllib.parse
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import av
import trustme
from aiohttp import web

from tests.standins.clips import Clip
from tests.standins.lifecycle import StandIn, hold_until_gone, listen

_POST_PATH = re.compile(r"/@[^/]*/(?:video|photo)/(\d+)/?")
# TikTok's short codes hold letters, digits, "_" and "-" (ZMh-AbC12).
_SHORT_PATH = re.compile(r"/([\w-]+)/?")
_WWW_SHORT_PATH = re.compile(r"/t/([\w-]+)/?")
_MEDIA_PATH = re.compile(r"/video/tos/([0-9a-f]+)/?")
_SLIDE_PREFIX = "/tos-maliva-i-photomode-us/"
_MUSIC_PREFIX = "/obj/ies-music-ttp-dup-us/"
_SIGNED_FOR_S = 6 * 3600  # TikTok's image URLs stay valid for hours, not days.
_CREATE_TIME = 1767225600  # 2026-01-01T00:00:00Z; fixed so metadata is reproducible.
_MEDIA_PIECE = 65536


class Fault(enum.Enum):
    """What the stand-in does instead of answering a post page or a media request.

    Transient faults are what a retry gets past when they strike once (TikTok's CDN and front
    ends do this now and then); permanent ones are what TikTok keeps answering, so retrying
    only wastes time. A stall is transient only while a client's read timeout is short enough
    to retry within its deadline.
    """

    PAGE_ERROR = "page_error"  # 502 on the post page
    PAGE_SILENT = "page_silent"  # the page request gets no answer at all, not even headers
    CHALLENGE = "challenge"  # 200 with a "Please wait..." page without the rehydration data
    BLOCKED_IP = "blocked_ip"  # the rehydration data with statusCode 10204, as for a blocked IP
    DATA_MOVED = "data_moved"  # 200 with the post's data under another script id: a page change
    MEDIA_FORBIDDEN = "media_forbidden"  # 403 on the media, as the CDN answers a blocked client
    MEDIA_ERROR = "media_error"  # 503 on the media
    MEDIA_RESET = "media_reset"  # headers and half the body, then the connection is cut
    MEDIA_STALL = "media_stall"  # headers and half the body, then nothing more
    MEDIA_SILENT = "media_silent"  # the media request gets no answer at all

    @property
    def on_page(self) -> bool:
        return self in _PAGE_FAULTS


_PAGE_FAULTS: frozenset[Fault] = frozenset(
    {Fault.PAGE_ERROR, Fault.PAGE_SILENT, Fault.CHALLENGE, Fault.BLOCKED_IP, Fault.DATA_MOVED}
)
PERMANENT_FAULTS: frozenset[Fault] = frozenset(
    {Fault.CHALLENGE, Fault.MEDIA_FORBIDDEN, Fault.BLOCKED_IP, Fault.DATA_MOVED}
)
# What a proxy whose address TikTok refuses gets instead of post pages (``block_proxy``).
PROXY_BLOCKS: frozenset[Fault] = frozenset({Fault.BLOCKED_IP, Fault.CHALLENGE})
TRANSIENT_FAULTS: frozenset[Fault] = frozenset(Fault) - PERMANENT_FAULTS


@dataclass
class _FaultRule:
    fault: Fault
    post_id: str | None
    remaining: int | None  # None: every matching request until cleared


@dataclass(frozen=True)
class _Chaos:
    rng: random.Random
    rate: float
    kinds: tuple[Fault, ...]


@dataclass(frozen=True)
class ServedFault:
    """A fault the stand-in served, and for which post."""

    fault: Fault
    post_id: str


@dataclass(frozen=True)
class ClientHello:
    """What a client offered in the TLS ClientHello that opened its tunnel.

    Browsers (BoringSSL, and curl_cffi impersonating Chrome) put GREASE values (RFC 8701) among
    their cipher suites and extensions and offer h2; OpenSSL-based clients (Python's ssl, so
    httpx, requests, urllib) never send GREASE. TikTok's WAF tells browsers apart this way.
    """

    ciphers: tuple[int, ...]
    extensions: tuple[int, ...]
    alpn: tuple[str, ...]

    @property
    def grease(self) -> bool:
        return any(_is_grease(value) for value in (*self.ciphers, *self.extensions))


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP request the stand-in answered inside a CONNECT tunnel.

    ``proxy`` is the URL of the proxy listener the tunnel came through; ``tls`` what the client
    offered when it opened the tunnel's TLS connection (None when it could not be read).
    """

    method: str
    host: str
    path: str
    headers: dict[str, str]
    query: str = ""
    proxy: str | None = None
    tls: ClientHello | None = None
    # time.monotonic() when the request reached the stand-in (benchmarks time stages by it).
    at: float = field(default_factory=time.monotonic)

    @property
    def impersonated(self) -> bool:
        """Whether a browser-impersonating client (curl_cffi) sent it: by the TLS fingerprint
        (GREASE), which headers alone cannot fake."""
        return self.tls is not None and self.tls.grease


@dataclass
class _Tunnel:
    proxy: str
    hello: ClientHello | None = None


@dataclass(frozen=True)
class _RequiredCookie:
    name: str
    value: str


@dataclass(frozen=True)
class _Media:
    token: str
    post_id: str
    clip: Clip
    size: int
    content_length: bool = True
    trailing_bytes: int = 0
    bytes_per_s: int | None = None


@dataclass(frozen=True)
class _Video:
    media: tuple[_Media, ...]
    author: str
    nickname: str
    desc: str
    listed_duration: float | None = None
    listed_size: int | None = None


@dataclass(frozen=True)
class _Status:
    code: int


@dataclass(frozen=True)
class _LoginWall:
    pass


@dataclass(frozen=True)
class _Slide:
    cdn_path: str
    file: Path
    width: int
    height: int


@dataclass(frozen=True)
class _Music:
    id: str
    cdn_path: str
    file: Path | None
    duration: float


@dataclass(frozen=True)
class _Photo:
    slides: tuple[_Slide, ...]
    music: _Music
    author: str
    nickname: str
    desc: str


_Post = _Video | _Photo | _Status | _LoginWall


class InterceptedSite(Protocol):
    """Another site the same proxy plays (see ``TikTokStandIn.add_site``), so one proxy URL
    serves every site a test needs, as DOWNLOAD_PROXY does for the bot."""

    @property
    def domains(self) -> tuple[str, ...]:
        """Registrable domains; the site answers for each and all of its subdomains."""
        ...

    async def handle(self, request: web.Request, host: str) -> web.StreamResponse:
        """Answer one request that came through the tunnel for ``host`` (lower-case)."""
        ...


def is_tiktok_host(host: str) -> bool:
    """Whether the proxy opens a tunnel to ``host``: tiktok.com, *.tiktok.com, *.tiktokcdn.com."""
    host = host.lower().rstrip(".")
    return host == "tiktok.com" or host.endswith((".tiktok.com", ".tiktokcdn.com"))


def in_domain(host: str, domain: str) -> bool:
    """Whether ``host`` is ``domain`` or one of its subdomains."""
    host = host.lower().rstrip(".")
    return host == domain or host.endswith(f".{domain}")


class TikTokStandIn(StandIn):
    """TikTok behind a local HTTPS-intercepting proxy; use as ``async with TikTokStandIn() as tt``.

    Ports are picked by the OS, so several stand-ins (and pytest-xdist workers) run side by side.
    """

    WEB_HOST: ClassVar[str] = "www.tiktok.com"
    CDN_HOST: ClassVar[str] = "v16-webapp-prime.tiktok.com"
    SHORT_HOSTS: ClassVar[frozenset[str]] = frozenset({"vm.tiktok.com", "vt.tiktok.com"})
    # TikTok Lite shares https://lite.tiktok.com/t/CODE/, redirecting as www's /t/ does.
    LITE_HOST: ClassVar[str] = "lite.tiktok.com"
    # Photo posts list each slide on both hosts (``urlList``); gallery-dl takes the first.
    IMAGE_HOSTS: ClassVar[tuple[str, ...]] = (
        "p16-sign-va.tiktokcdn.com",
        "p19-sign-va.tiktokcdn.com",
    )
    MUSIC_HOST: ClassVar[str] = "sf16-ies-music-va.tiktokcdn.com"

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        # CONNECT targets ("host:port") the proxy refused, and the targets of plain-HTTP requests
        # (absolute URLs, never served), so tests can see stray traffic.
        self.refused: list[str] = []
        self.plain_requests: list[str] = []
        # The head of every request made to the proxy itself (CONNECT or not), as received.
        self.proxy_heads: list[str] = []
        self._posts: dict[str, _Post] = {}
        self._short_links: dict[tuple[str, str], str] = {}
        self._media_by_token: dict[str, _Media] = {}
        self._chain_tokens: set[str] = set()
        self._slides_by_path: dict[str, _Slide] = {}
        self._music_files: dict[str, Path] = {}
        self._url_key = secrets.token_bytes(32)
        self._sites: dict[str, InterceptedSite] = {}
        self._site_ssl: dict[str, ssl.SSLContext] = {}
        self._ca = trustme.CA()
        self._server_ssl = self._server_context("tiktok.com", "*.tiktok.com", "*.tiktokcdn.com")
        # Other sites get their own certificate, picked by the name the client asks for.
        self._server_ssl.sni_callback = self._pick_certificate
        self._runner: web.AppRunner | None = None
        self._https_port = 0
        # Proxy listeners (being opened, then open) and their URLs, the first is ``proxy_url``.
        self._proxy_servers: list[asyncio.Task[asyncio.Server]] = []
        self._proxy_urls: list[str] = []
        self._tunnels: set[asyncio.Task[Any]] = set()
        # The tunnel behind each connection to the HTTPS server, by the connection's local port.
        self._tunnel_by_port: dict[int, _Tunnel] = {}
        self._blocked_proxies: dict[str, Fault] = {}
        self._required_cookies: dict[tuple[str, str], list[_RequiredCookie]] = {}
        # When set, page requests from clients that do not look like a browser get the challenge.
        self.require_browser = False
        # Seconds the CDN waits before answering a media request, so tests can catch a job
        # mid-download; and how many media answers were in flight at once, at most.
        self.media_delay_s = 0.0
        # Seconds before each slide image is answered.
        self.slide_delay_s = 0.0
        self.max_concurrent_media = 0
        self._media_in_flight = 0
        self._media_requested = asyncio.Event()
        # Media bytes handed to the connection, over every request (ranges and cut-offs too).
        self.media_bytes_sent = 0
        # (post id, time.monotonic()) each time a whole media body was sent (for benchmarks).
        self.media_sent_at: list[tuple[str, float]] = []
        self.served_faults: list[ServedFault] = []
        self._fault_rules: list[_FaultRule] = []
        self._chaos: _Chaos | None = None
        self._stopping = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("TikTokStandIn is already started")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self._https_port = await listen(
            app, shutdown_timeout=1.0, ssl_context=self._server_ssl
        )
        self.add_proxy()
        await self._proxy_servers[0]

    async def stop(self) -> None:
        # Stalled answers end now, so shutting down does not wait for them.
        self._stopping.set()
        servers = [await opening for opening in self._proxy_servers]
        for server in servers:
            server.close()
        for task in list(self._tunnels):
            task.cancel()
        await asyncio.gather(*self._tunnels, return_exceptions=True)
        for server in servers:
            await server.wait_closed()
        self._proxy_servers.clear()
        self._proxy_urls.clear()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def proxy_url(self) -> str:
        """``http://127.0.0.1:PORT``, for yt-dlp's ``proxy`` param or httpx's ``proxy=``."""
        if not self._proxy_urls:
            raise RuntimeError("TikTokStandIn is not started")
        return self._proxy_urls[0]

    @property
    def proxy_urls(self) -> list[str]:
        """Every proxy listener's URL, ``proxy_url`` first, then in the order added."""
        return list(self._proxy_urls)

    def add_proxy(self) -> str:
        """Open one more proxy listener (another exit address, as a second DOWNLOAD_PROXY
        entry would be) into the same TikTok; returns its ``http://127.0.0.1:PORT``.

        The socket listens on return (connections wait in its backlog until the server runs).
        """
        if self._runner is None:
            raise RuntimeError("TikTokStandIn is not started")
        # IPPROTO_TCP explicitly: the sockets accepted from it inherit this proto, and asyncio
        # sets TCP_NODELAY only on sockets whose proto is IPPROTO_TCP. Without it, Nagle holds
        # a TLS 1.3 response back behind the server's session tickets until the client's
        # delayed ACK (~40 ms a request).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"

        async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve_proxy_client(reader, writer, url)

        self._proxy_servers.append(asyncio.ensure_future(asyncio.start_server(serve, sock=sock)))
        self._proxy_urls.append(url)
        return url

    def block_proxy(self, url: str, fault: Fault = Fault.BLOCKED_IP) -> None:
        """Answer every post page requested through proxy ``url`` with ``fault``
        (BLOCKED_IP or CHALLENGE), as TikTok answers an address it refuses; media and
        short links still pass."""
        if fault not in PROXY_BLOCKS:
            raise ValueError(
                f"a proxy is blocked with one of {sorted(f.value for f in PROXY_BLOCKS)}"
            )
        if url not in self.proxy_urls:
            raise ValueError(f"{url} is not one of this stand-in's proxies")
        self._blocked_proxies[url] = fault

    def unblock_proxy(self, url: str) -> None:
        """Serve pages through proxy ``url`` normally again."""
        self._blocked_proxies.pop(url, None)

    def client_ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts the stand-in's CA, for clients that keep verification on."""
        ctx = ssl.create_default_context()
        self._ca.configure_trust(ctx)
        return ctx

    def add_site(self, site: InterceptedSite) -> None:
        """Let the proxy tunnel to ``site.domains`` too and hand their requests to ``site``.

        Works before or after start(); requests to the site are recorded in ``requests`` and
        counted by ``count`` like TikTok's.
        """
        for domain in site.domains:
            domain = domain.lower().rstrip(".")
            if is_tiktok_host(domain) or is_tiktok_host(f"x.{domain}"):
                raise ValueError(f"{domain} is TikTok's")
            if any(in_domain(domain, d) or in_domain(d, domain) for d in self._sites):
                raise ValueError(f"{domain} overlaps a site already added")
            self._site_ssl[domain] = self._server_context(domain, f"*.{domain}")
            self._sites[domain] = site

    # -- content ---------------------------------------------------------------------------

    def add_video(
        self,
        post_id: str,
        clip: Clip,
        *,
        author: str = "creator",
        nickname: str = "Creator",
        desc: str = "a clip",
        extra_clips: Sequence[Clip] = (),
        listed_duration: float | None = None,
        listed_size: int | None = None,
        content_length: bool = True,
        trailing_bytes: int = 0,
        bytes_per_s: int | None = None,
    ) -> None:
        """Serve a video post at https://www.tiktok.com/@<any handle>/video/<post_id>.

        ``extra_clips`` are further encodings of the same post (real posts list e.g. a 1080p
        bytevc1 and a 540p h264); each becomes its own format in yt-dlp, after ``clip``.
        ``listed_duration`` and ``listed_size`` make the page lie about the first clip
        (0 leaves the duration out, as yt-dlp then reports none); ``content_length=False``
        streams the media chunked, without saying how long it is. ``trailing_bytes`` of
        filler follow the first clip's bytes: a file far larger than any socket buffer, so that
        ``media_bytes_sent`` shows whether a client stopped reading early. ``bytes_per_s``
        paces each of the post's media to that rate, as a slow CDN would.
        """
        media = []
        for each in (clip, *extra_clips):
            item = _Media(
                token=secrets.token_hex(12),
                post_id=post_id,
                clip=each,
                size=each.path.stat().st_size,
                content_length=content_length,
                trailing_bytes=trailing_bytes if each is clip else 0,
                bytes_per_s=bytes_per_s,
            )
            self._media_by_token[item.token] = item
            media.append(item)
        self._posts[post_id] = _Video(
            media=tuple(media),
            author=author,
            nickname=nickname,
            desc=desc,
            listed_duration=listed_duration,
            listed_size=listed_size,
        )

    def add_photo_post(
        self,
        post_id: str,
        images: Sequence[Path],
        music: Path | None,
        *,
        author: str = "creator",
        nickname: str = "Creator",
        desc: str = "a slideshow",
        music_duration: float | None = None,
    ) -> None:
        """Serve a photo post (slideshow) at https://www.tiktok.com/@<any>/photo/<post_id> and
        .../video/<post_id>: ``images`` (JPEGs) in order, with ``music`` (an MP3) behind it.

        ``music=None`` is a post without sound: ``music`` then has no ``playUrl``.
        ``music_duration`` defaults to the file's own length, as TikTok reports it.
        """
        if not images:
            raise ValueError("a photo post has at least one image")
        slides = []
        for image in images:
            width, height = _picture_size(image)
            name = f"{secrets.token_hex(16)}~tplv-photomode-image.jpeg"
            slide = _Slide(cdn_path=_SLIDE_PREFIX + name, file=image, width=width, height=height)
            self._slides_by_path[slide.cdn_path] = slide
            slides.append(slide)
        music_id = str(7_300_000_000_000_000_000 + secrets.randbelow(10**17))
        if music_duration is None:
            music_duration = _media_duration(music) if music is not None else 0.0
        sound = _Music(
            id=music_id,
            cdn_path=f"{_MUSIC_PREFIX}{music_id}.mp3",
            file=music,
            duration=music_duration,
        )
        if music is not None:
            self._music_files[sound.cdn_path] = music
        self._posts[post_id] = _Photo(
            slides=tuple(slides), music=sound, author=author, nickname=nickname, desc=desc
        )

    def add_status(self, post_id: str, status_code: int) -> None:
        """Serve a post page whose video-detail carries ``status_code`` and no item.

        yt-dlp 2026.10.26 then raises (DownloadError text, after "ERROR: [TikTok] ID: "):

        - 10216 (private post), 10222 (private account): "You do not have permission to view this
          post. Log into an account that has access. Use --cookies-from-browser or --cookies ..."
        - 10204 (removed; TikTok also uses it for IP blocks): "Your IP address is blocked from
          accessing this post"
        - anything else, e.g. 10231 (region-locked): "Video not available, status code 10231"

        Post ids that were never added behave like 10204, as on TikTok.
        """
        self._posts[post_id] = _Status(status_code)

    def require_cookie(self, post_id: str, name: str, value: str, *, on: str = "page") -> None:
        """Let only requests carrying cookie ``name=value`` through: ``on="page"`` redirects the
        post page to /login without it (as ``add_login_wall``); ``on="media"`` answers the
        post's media 403 without it (besides ``tt_chain_token``). A cookies.txt line for
        ``.tiktok.com`` reaches the video CDN (v16-webapp-prime.tiktok.com) too."""
        if on not in ("page", "media"):
            raise ValueError(f"on is 'page' or 'media', not {on!r}")
        self._required_cookies.setdefault((post_id, on), []).append(_RequiredCookie(name, value))

    def _has_required_cookies(self, request: web.Request, post_id: str, on: str) -> bool:
        return all(
            request.cookies.get(cookie.name) == cookie.value
            for cookie in self._required_cookies.get((post_id, on), ())
        )

    def add_login_wall(self, post_id: str) -> None:
        """Redirect the post page to /login; yt-dlp says "TikTok is requiring login for access
        to this content. Use --cookies-from-browser or --cookies ..."."""
        self._posts[post_id] = _LoginWall()

    def add_short_link(self, code: str, post_path: str, *, host: str = "vm.tiktok.com") -> None:
        """Make https://HOST/CODE/ (``host`` vm.tiktok.com or vt.tiktok.com) or, with
        ``host="www.tiktok.com"`` or ``"lite.tiktok.com"``, https://HOST/t/CODE/ answer HEAD and
        GET with a 301 to ``https://www.tiktok.com{post_path}?_t=abc&_r=1``. Codes may hold
        "-" (ZMh-AbC12). Unknown codes answer 404."""
        host = _canonical_host(host)
        if host not in self.SHORT_HOSTS and host not in (self.WEB_HOST, self.LITE_HOST):
            raise ValueError(
                f"short links live on vm/vt/lite.tiktok.com or www.tiktok.com, not {host}"
            )
        if not re.fullmatch(r"[\w-]+", code):
            raise ValueError(f"not a short link code: {code!r}")
        if not post_path.startswith("/"):
            raise ValueError(f"post_path must start with '/': {post_path!r}")
        self._short_links[host, code] = post_path

    def add_short_link_off_site(
        self, code: str, location: str, *, host: str = "vm.tiktok.com"
    ) -> None:
        """Make https://HOST/CODE/ answer with a 301 to ``location``, an absolute URL anywhere:
        what a hostile or broken redirect would do."""
        if not location.startswith(("http://", "https://")):
            raise ValueError(f"location must be an absolute http(s) URL: {location!r}")
        self._short_links[_canonical_host(host), code] = location

    # -- faults ----------------------------------------------------------------------------

    def inject(self, fault: Fault, *, post_id: str | None = None, times: int | None = 1) -> None:
        """Answer the next ``times`` page or media requests (of ``post_id``, or of any post)
        with ``fault``; ``times=None`` keeps doing it until ``clear_faults``. Rules are tried
        in the order given; a request takes at most one fault."""
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1, not {times}")
        self._fault_rules.append(_FaultRule(fault, post_id, times))

    def fail_randomly(
        self, rng: random.Random, rate: float, kinds: Collection[Fault] = TRANSIENT_FAULTS
    ) -> None:
        """Answer each page or media request that no ``inject`` rule takes with one of
        ``kinds`` (for that kind of request), with probability ``rate``, drawn from ``rng``.

        With the default transient kinds a client that retries gets every clip in the end;
        add ``PERMANENT_FAULTS`` to make some requests fail for good.
        """
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within 0..1, not {rate}")
        self._chaos = _Chaos(rng, rate, tuple(sorted(kinds, key=lambda k: k.value)))

    def clear_faults(self) -> None:
        """Answer every request normally again (rules and random faults both end)."""
        self._fault_rules.clear()
        self._chaos = None

    def _fault_for(self, post_id: str, *, page: bool) -> Fault | None:
        for rule in self._fault_rules:
            if rule.fault.on_page != page or rule.post_id not in (None, post_id):
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining == 0:
                    self._fault_rules.remove(rule)
            return self._served(rule.fault, post_id)
        chaos = self._chaos
        if chaos is not None:
            kinds = [kind for kind in chaos.kinds if kind.on_page == page]
            if kinds and chaos.rng.random() < chaos.rate:
                return self._served(chaos.rng.choice(kinds), post_id)
        return None

    def _served(self, fault: Fault, post_id: str) -> Fault:
        self.served_faults.append(ServedFault(fault, post_id))
        return fault

    def media_urls(self, post_id: str) -> list[str]:
        """The CDN URLs of a video post's clips, in the order given to add_video."""
        post = self._posts[post_id]
        if not isinstance(post, _Video):
            raise KeyError(f"post {post_id} is not a video")
        return [self._media_url(m) for m in post.media]

    def post_url(self, post_id: str, author: str = "_") -> str:
        """The canonical post URL, as yt-dlp and the bot expect it."""
        return f"https://{self.WEB_HOST}/@{author}/video/{post_id}"

    def photo_url(self, post_id: str, author: str = "_") -> str:
        """The URL the TikTok app shares for a photo post."""
        return f"https://{self.WEB_HOST}/@{author}/photo/{post_id}"

    def image_urls(self, post_id: str) -> list[str]:
        """Freshly signed URLs of a photo post's slides (first CDN host), in order."""
        return [self._slide_urls(s)[0] for s in self._photo(post_id).slides]

    def music_url(self, post_id: str) -> str | None:
        """The ``music.playUrl`` of a photo post, or None when it has no sound."""
        music = self._photo(post_id).music
        return f"https://{self.MUSIC_HOST}{music.cdn_path}" if music.file is not None else None

    def _photo(self, post_id: str) -> _Photo:
        post = self._posts[post_id]
        if not isinstance(post, _Photo):
            raise KeyError(f"post {post_id} is not a photo post")
        return post

    # -- inspection ------------------------------------------------------------------------

    def count(self, *, host: str | None = None, path_prefix: str | None = None) -> int:
        """How many tunnelled requests matched ``host`` (exact) and ``path_prefix``."""
        return sum(
            1
            for r in self.requests
            if (host is None or r.host == host.lower())
            and (path_prefix is None or r.path.startswith(path_prefix))
        )

    @property
    def media_requests(self) -> int:
        """Requests that reached the video CDN (whatever their answer)."""
        return self.count(host=self.CDN_HOST)

    @property
    def image_requests(self) -> int:
        """Requests that reached the image CDN hosts (whatever their answer)."""
        return sum(self.count(host=h) for h in self.IMAGE_HOSTS)

    @property
    def music_requests(self) -> int:
        """Requests that reached the music CDN (whatever their answer)."""
        return self.count(host=self.MUSIC_HOST)

    async def wait_for_media_request(self, within_s: float = 30.0) -> None:
        """Return once a media request (with the right cookie) has reached the CDN."""
        await asyncio.wait_for(self._media_requested.wait(), within_s)

    # -- TLS and other sites ---------------------------------------------------------------

    def _server_context(self, *names: str) -> ssl.SSLContext:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self._ca.issue_cert(*names).configure_cert(ctx)
        # Browsers (and curl_cffi impersonating them) offer h2; the stand-in speaks HTTP/1.1 only.
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx

    def _pick_certificate(
        self, conn: ssl.SSLObject, server_name: str | None, _ctx: ssl.SSLContext
    ) -> None:
        for domain, ctx in self._site_ssl.items():
            if server_name is not None and in_domain(server_name, domain):
                conn.context = ctx
                return

    def _site_for(self, host: str) -> InterceptedSite | None:
        for domain, site in self._sites.items():
            if in_domain(host, domain):
                return site
        return None

    # -- HTTPS side ------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        host = _canonical_host(request.host.rsplit(":", 1)[0] if request.host else "")
        tunnel = self._tunnel_of(request)
        self.requests.append(
            RecordedRequest(
                method=request.method,
                host=host,
                path=request.path,
                headers=dict(request.headers),
                query=request.query_string,
                proxy=tunnel.proxy if tunnel else None,
                tls=tunnel.hello if tunnel else None,
            )
        )
        path = request.path
        if (site := self._site_for(host)) is not None:
            return await site.handle(request, host)
        if host == self.WEB_HOST:
            if match := _POST_PATH.fullmatch(path):
                return await self._page(request, match.group(1))
            if match := _WWW_SHORT_PATH.fullmatch(path):
                return self._short_link(host, match.group(1))
            if path == "/login":
                return _html_response("Log in | TikTok", "<h1>Log in to TikTok</h1>")
        elif host in self.SHORT_HOSTS:
            if match := _SHORT_PATH.fullmatch(path):
                return self._short_link(host, match.group(1))
        elif host == self.LITE_HOST:
            if match := _WWW_SHORT_PATH.fullmatch(path):
                return self._short_link(host, match.group(1))
        elif host == self.CDN_HOST and (match := _MEDIA_PATH.fullmatch(path)):
            return await self._media(request, match.group(1))
        elif host in self.IMAGE_HOSTS and (slide := self._slides_by_path.get(path)):
            return await self._slide(request, slide)
        elif host == self.MUSIC_HOST and (music := self._music_files.get(path)):
            return ranged_response(request, music.read_bytes(), "audio/mpeg")
        return web.Response(status=404, text="Not Found")

    def _short_link(self, host: str, code: str) -> web.Response:
        post_path = self._short_links.get((host, code))
        if post_path is None:
            return web.Response(status=404, text="Not Found")
        location = f"https://{self.WEB_HOST}{post_path}?_t=abc&_r=1"
        if post_path.startswith(("http://", "https://")):
            location = post_path
        return web.Response(status=301, headers={"Location": location})

    def _tunnel_of(self, request: web.Request) -> _Tunnel | None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        return self._tunnel_by_port.get(peer[1]) if peer else None

    async def _page(self, request: web.Request, post_id: str) -> web.StreamResponse:
        tunnel = self._tunnel_of(request)
        blocked = self._blocked_proxies.get(tunnel.proxy) if tunnel else None
        if blocked is not None:
            fault: Fault | None = self._served(blocked, post_id)
        elif self.require_browser and not (tunnel and tunnel.hello and tunnel.hello.grease):
            fault = self._served(Fault.CHALLENGE, post_id)
        else:
            fault = self._fault_for(post_id, page=True)
        if fault is Fault.PAGE_ERROR:
            return _html_response("502 Bad Gateway", "<h1>502 Bad Gateway</h1>", status=502)
        if fault is Fault.PAGE_SILENT:
            await hold_until_gone(request, self._stopping)
            return web.Response(status=504)
        if fault is Fault.CHALLENGE:
            # What TikTok's WAF sends a client it suspects: no data, no cookie, a script to run.
            return _html_response("Please wait...", "<p>Please wait...</p><script></script>")
        if fault is Fault.BLOCKED_IP:
            return self._post_page(request, post_id, _Status(10204))
        return self._post_page(request, post_id, moved=fault is Fault.DATA_MOVED)

    def _post_page(
        self, request: web.Request, post_id: str, post: _Post | None = None, *, moved: bool = False
    ) -> web.Response:
        """The post page; ``post`` in place of the one added; ``moved``: the data under
        another script id, as after one of TikTok's page changes."""
        post = post or self._posts.get(post_id, _Status(10204))
        if not self._has_required_cookies(request, post_id, "page"):
            post = _LoginWall()
        if isinstance(post, _LoginWall):
            query = urllib.parse.urlencode(
                {"redirect_url": str(request.url), "lang": "en", "enter_method": "mandatory"}
            )
            return web.Response(
                status=302, headers={"Location": f"https://{self.WEB_HOST}/login?{query}"}
            )
        if isinstance(post, _Status):
            detail: dict[str, Any] = {"statusCode": post.code, "statusMsg": ""}
            title = "TikTok - Make Your Day"
        else:
            item = (
                self._item_struct(post_id, post)
                if isinstance(post, _Video)
                else self._photo_item_struct(post_id, post)
            )
            detail = {"statusCode": 0, "statusMsg": "", "itemInfo": {"itemStruct": item}}
            title = f"{post.desc} | TikTok"
        data = {
            "__DEFAULT_SCOPE__": {
                "webapp.app-context": {"language": "en", "region": "US"},
                "webapp.video-detail": detail,
            }
        }
        # "</" inside a JSON string would end the script element early.
        payload = json.dumps(data, ensure_ascii=False).replace("</", "<\\/")
        script_id = "__APP_STATE_V2__" if moved else "__UNIVERSAL_DATA_FOR_REHYDRATION__"
        response = _html_response(
            title,
            f'<div id="app"></div><script id="{script_id}" type="application/json">'
            f"{payload}</script>",
        )
        token = secrets.token_urlsafe(24)
        self._chain_tokens.add(token)
        response.set_cookie(
            "tt_chain_token",
            token,
            domain=".tiktok.com",
            path="/",
            max_age=15_552_000,
            secure=True,
            httponly=True,
        )
        return response

    def _item_struct(self, post_id: str, post: _Video) -> dict[str, Any]:
        main = post.media[0]
        clip = main.clip
        listed = clip.duration if post.listed_duration is None else post.listed_duration
        duration = round(listed)
        return {
            "id": post_id,
            "desc": post.desc,
            "createTime": str(_CREATE_TIME),
            "author": _author(post.author, post.nickname),
            "video": {
                "id": post_id,
                "width": clip.width,
                "height": clip.height,
                "duration": duration,
                "ratio": _resolution(clip),
                "definition": _resolution(clip),
                "format": "mp4",
                "codecType": _codec_type(clip),
                "encodedType": "normal",
                "videoQuality": "normal",
                "bitrate": _bitrate(main),
                "size": post.listed_size or main.size,
                "playAddr": self._media_url(main),
                "bitrateInfo": [
                    self._bitrate_info(m, post.listed_size if i == 0 else None)
                    for i, m in enumerate(post.media)
                ],
            },
            "stats": _stats(),
            "music": {
                "id": str(int(post_id) + 1) if post_id.isdigit() else "1",
                "title": f"original sound - {post.author}",
                "authorName": post.nickname,
                "original": True,
                "duration": duration,
            },
            "isAd": False,
            "privateItem": False,
        }

    def _photo_item_struct(self, post_id: str, post: _Photo) -> dict[str, Any]:
        first = post.slides[0]
        music: dict[str, Any] = {
            "id": post.music.id,
            "title": f"original sound - {post.author}",
            "authorName": post.nickname,
            "original": True,
            "duration": round(post.music.duration),
        }
        if post.music.file is not None:
            music["playUrl"] = f"https://{self.MUSIC_HOST}{post.music.cdn_path}"
        return {
            "id": post_id,
            "desc": post.desc,
            "createTime": str(_CREATE_TIME),
            "author": _author(post.author, post.nickname),
            # A slideshow has no video of its own: no play address, duration 0.
            "video": {
                "id": "",
                "width": first.width,
                "height": first.height,
                "duration": 0,
                "ratio": f"{min(first.width, first.height)}p",
                "playAddr": "",
                "downloadAddr": "",
            },
            "imagePost": {
                "images": [
                    {
                        "imageURL": {"urlList": self._slide_urls(slide)},
                        "imageWidth": slide.width,
                        "imageHeight": slide.height,
                    }
                    for slide in post.slides
                ],
                "title": "",
            },
            "stats": _stats(),
            "music": music,
            "isAd": False,
            "privateItem": False,
        }

    def _slide_urls(self, slide: _Slide) -> list[str]:
        expires = int(time.time()) + _SIGNED_FOR_S
        query = urllib.parse.urlencode(
            {
                "lk3s": "81f88b70",
                "x-expires": expires,
                "x-signature": self._sign(slide.cdn_path, expires),
            }
        )
        return [f"https://{host}{slide.cdn_path}?{query}" for host in self.IMAGE_HOSTS]

    def _sign(self, path: str, expires: int) -> str:
        digest = hmac.digest(self._url_key, f"{path}|{expires}".encode(), "sha1")
        return base64.b64encode(digest).decode()

    async def _slide(self, request: web.Request, slide: _Slide) -> web.Response:
        expires = request.query.get("x-expires", "")
        signature = request.query.get("x-signature", "")
        valid = (
            expires.isdigit()
            and int(expires) > time.time()
            and hmac.compare_digest(signature, self._sign(slide.cdn_path, int(expires)))
        )
        if not valid:
            return web.Response(status=403, text="Access Denied")
        if self.slide_delay_s:
            await asyncio.sleep(self.slide_delay_s)
        return ranged_response(request, slide.file.read_bytes(), "image/jpeg")

    def _bitrate_info(self, media: _Media, listed_size: int | None) -> dict[str, Any]:
        clip = media.clip
        codec = "bytevc1" if clip.vcodec == "hevc" else "h264"
        uri = f"v12044gd0000{media.token}"
        return {
            "Bitrate": _bitrate(media),
            "CodecType": _codec_type(clip),
            "GearName": f"normal_{min(clip.width, clip.height)}_0",
            "QualityType": 20,
            "PlayAddr": {
                "DataSize": listed_size or media.size,
                "Width": clip.width,
                "Height": clip.height,
                "Uri": uri,
                # yt-dlp reads codec, resolution and bitrate from this key.
                "UrlKey": f"{uri}_{codec}_{_resolution(clip)}_{_bitrate(media)}",
                "UrlList": [self._media_url(media)],
            },
        }

    def _media_url(self, media: _Media) -> str:
        return f"https://{self.CDN_HOST}/video/tos/{media.token}/?mime_type=video_mp4"

    async def _media(self, request: web.Request, token: str) -> web.StreamResponse:
        media = self._media_by_token.get(token)
        if media is None:
            return web.Response(status=404, text="Not Found")
        if request.cookies.get("tt_chain_token") not in self._chain_tokens:
            return web.Response(status=403, text="Access Denied")
        if not self._has_required_cookies(request, media.post_id, "media"):
            return web.Response(status=403, text="Access Denied")
        self._media_requested.set()
        self._media_in_flight += 1
        self.max_concurrent_media = max(self.max_concurrent_media, self._media_in_flight)
        try:
            if self.media_delay_s:
                await asyncio.sleep(self.media_delay_s)
        finally:
            self._media_in_flight -= 1
        fault = self._fault_for(media.post_id, page=False)
        if fault is Fault.MEDIA_FORBIDDEN:
            return web.Response(status=403, text="Access Denied")
        if fault is Fault.MEDIA_ERROR:
            return web.Response(status=503, text="Service Unavailable")
        if fault is Fault.MEDIA_SILENT:
            await hold_until_gone(request, self._stopping)
            return web.Response(status=504)
        return await self._stream_media(request, media, fault)

    async def _stream_media(
        self, request: web.Request, media: _Media, fault: Fault | None
    ) -> web.StreamResponse:
        """The mp4 (or the range asked for) in pieces; a reset or stall strikes halfway."""
        data = media.clip.path.read_bytes()
        total = len(data) + media.trailing_bytes
        start, stop, status, headers = _byte_range(request, total, "video/mp4")
        if status == 416:
            return web.Response(status=status, headers=headers)
        response = web.StreamResponse(status=status, headers=headers)
        if media.content_length:
            response.content_length = stop - start
        else:
            response.enable_chunked_encoding()
        await response.prepare(request)
        cut = start + (stop - start) // 2 if fault is not None else stop
        rate = media.bytes_per_s
        # Paced media goes in tenths of a second's worth, so a client sees it arrive steadily.
        piece_size = min(_MEDIA_PIECE, max(1, rate // 10)) if rate else _MEDIA_PIECE
        began = asyncio.get_running_loop().time()
        for offset in range(start, cut, piece_size):
            end = min(offset + piece_size, cut)
            if rate:
                due = began + (offset - start) / rate
                await asyncio.sleep(max(0.0, due - asyncio.get_running_loop().time()))
            piece = data[offset:end] + bytes(max(0, end - max(offset, len(data))))
            await response.write(piece)
            self.media_bytes_sent += len(piece)
        if fault is Fault.MEDIA_STALL:
            await hold_until_gone(request, self._stopping)
        elif fault is Fault.MEDIA_RESET and request.transport is not None:
            request.transport.abort()
        if fault is None:
            await response.write_eof()
            self.media_sent_at.append((media.post_id, time.monotonic()))
        return response

    # -- proxy side ------------------------------------------------------------------------

    async def _serve_proxy_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, proxy: str
    ) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tunnels.add(task)
        try:
            await self._tunnel(reader, writer, proxy)
        except asyncio.CancelledError:
            # stop() cancels open tunnels; ending normally spares Python 3.11's streams callback,
            # which calls task.exception() on the handler task and logs a cancelled one as an error.
            pass
        finally:
            if task is not None:
                self._tunnels.discard(task)

    async def _tunnel(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, proxy: str
    ) -> None:
        upstream: asyncio.StreamWriter | None = None
        try:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
                return
            method, _, rest = head.decode("latin-1").partition(" ")
            target = rest.partition(" ")[0]
            self.proxy_heads.append(head.decode("latin-1"))
            if method != "CONNECT":
                self.plain_requests.append(target)
                await _reply(writer, "405 Method Not Allowed", "Allow: CONNECT\r\n")
                return
            host = target.rpartition(":")[0].strip("[]") if ":" in target else target
            if not (is_tiktok_host(host) or self._site_for(host) is not None):
                self.refused.append(target)
                await _reply(writer, "403 Forbidden")
                return
            up_reader, upstream = await asyncio.open_connection("127.0.0.1", self._https_port)
            tunnel = _Tunnel(proxy)
            # The HTTPS server sees this connection's local port as its peer's.
            self._tunnel_by_port[upstream.get_extra_info("sockname")[1]] = tunnel
            writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
            await writer.drain()
            # The client's first TLS record (its ClientHello) is read whole and looked at before
            # it goes on, so the tunnel knows it before any request inside it is handled.
            first = await _read_tls_record(reader)
            tunnel.hello = _parse_client_hello(first)
            upstream.write(first)
            await upstream.drain()
            await asyncio.gather(_pipe(reader, upstream), _pipe(up_reader, writer))
        except OSError:
            pass
        finally:
            for each in (upstream, writer):
                if each is None:
                    continue
                if self._stopping.is_set():
                    # A client that stopped reading (a download given up on without closing
                    # its connection) would keep a graceful close waiting for ever.
                    each.transport.abort()
                else:
                    each.close()
            for each in (upstream, writer):
                if each is not None:
                    with contextlib.suppress(OSError):
                        await each.wait_closed()


def _canonical_host(host: str) -> str:
    host = host.lower().rstrip(".")
    return "www.tiktok.com" if host == "tiktok.com" else host


def _resolution(clip: Clip) -> str:
    # TikTok names a rendition after its short side; yt-dlp reads "540p" as 576 pixels wide.
    return f"{min(clip.width, clip.height)}p"


def _codec_type(clip: Clip) -> str:
    return "h265_hvc1" if clip.vcodec == "hevc" else "h264"


def _bitrate(media: _Media) -> int:
    return round(media.size * 8 / media.clip.duration) if media.clip.duration > 0 else 0


def _author(unique_id: str, nickname: str) -> dict[str, Any]:
    author_id = str(int(hashlib.sha256(unique_id.encode()).hexdigest(), 16) % 10**19)
    return {
        "id": author_id,
        "uniqueId": unique_id,
        "nickname": nickname,
        "secUid": f"MS4wLjABAAAA{hashlib.sha256(author_id.encode()).hexdigest()}",
        "verified": False,
    }


def _stats() -> dict[str, int]:
    return {
        "diggCount": 1200,
        "shareCount": 34,
        "commentCount": 56,
        "playCount": 7890,
        "collectCount": 12,
    }


def _picture_size(path: Path) -> tuple[int, int]:
    """Width and height of an image, as TikTok lists them next to each slide."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return stream.codec_context.width, stream.codec_context.height


def _media_duration(path: Path) -> float:
    with av.open(str(path)) as container:
        if container.duration is None:
            raise ValueError(f"{path} has no duration")
        return container.duration / av.time_base


def ranged_response(request: web.Request, data: bytes, content_type: str) -> web.Response:
    """The bytes, or the part a Range header asks for (206), as CDNs answer downloaders.

    Not FileResponse: its sendfile path over TLS trips a CPython 3.11 bug when a client closes
    the connection right after the last byte.
    """
    start, stop, status, headers = _byte_range(request, len(data), content_type)
    return web.Response(status=status, body=data[start:stop], headers=headers)


def _byte_range(
    request: web.Request, total: int, content_type: str
) -> tuple[int, int, int, dict[str, str]]:
    """Which of ``total`` bytes to answer with, the status and headers: all of them (200), the
    part a Range header asks for (206), or none past the end (416)."""
    headers = {"Content-Type": content_type, "Accept-Ranges": "bytes"}
    wanted = request.http_range
    if request.headers.get("Range") is None or (wanted.start is None and wanted.stop is None):
        return 0, total, 200, headers
    start, stop, _ = wanted.indices(total)
    if start >= total:
        headers["Content-Range"] = f"bytes */{total}"
        return total, total, 416, headers
    headers["Content-Range"] = f"bytes {start}-{stop - 1}/{total}"
    return start, stop, 206, headers


def _html_response(title: str, body: str, *, status: int = 200) -> web.Response:
    return web.Response(
        status=status,
        text=(
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(title)}</title></head><body>{body}</body></html>"
        ),
        content_type="text/html",
    )


async def _reply(writer: asyncio.StreamWriter, status: str, extra_headers: str = "") -> None:
    head = f"HTTP/1.1 {status}\r\n{extra_headers}Content-Length: 0\r\nConnection: close\r\n\r\n"
    writer.write(head.encode())
    await writer.drain()


async def _read_tls_record(reader: asyncio.StreamReader) -> bytes:
    """One TLS record as it came (header and body), or what arrived before EOF."""
    try:
        header = await reader.readexactly(5)
    except asyncio.IncompleteReadError as err:
        return err.partial
    try:
        return header + await reader.readexactly(int.from_bytes(header[3:5], "big"))
    except asyncio.IncompleteReadError as err:
        return header + err.partial


def _is_grease(value: int) -> bool:
    """RFC 8701's reserved values: 0x0A0A, 0x1A1A, ... 0xFAFA."""
    return value & 0x0F0F == 0x0A0A and value >> 8 == value & 0xFF


def _parse_client_hello(record: bytes) -> ClientHello | None:
    """The cipher suites, extension types and ALPN protocols of a TLS ClientHello record."""
    try:
        if record[0] != 0x16 or record[5] != 0x01:  # handshake record, client_hello
            return None
        at = 5 + 4 + 2 + 32  # handshake header, legacy version, random
        at += 1 + record[at]  # session id
        size = int.from_bytes(record[at : at + 2], "big")
        ciphers = tuple(
            int.from_bytes(record[i : i + 2], "big") for i in range(at + 2, at + 2 + size, 2)
        )
        at += 2 + size
        at += 1 + record[at]  # compression methods
        end = at + 2 + int.from_bytes(record[at : at + 2], "big")
        at += 2
        extensions: list[int] = []
        alpn: list[str] = []
        while at + 4 <= min(end, len(record)):
            kind = int.from_bytes(record[at : at + 2], "big")
            size = int.from_bytes(record[at + 2 : at + 4], "big")
            body = record[at + 4 : at + 4 + size]
            extensions.append(kind)
            if kind == 0x0010:  # application_layer_protocol_negotiation
                i = 2
                while i < len(body):
                    alpn.append(body[i + 1 : i + 1 + body[i]].decode("latin-1"))
                    i += 1 + body[i]
            at += 4 + size
    except IndexError:
        return None
    return ClientHello(ciphers=ciphers, extensions=tuple(extensions), alpn=tuple(alpn))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction of a tunnel until EOF, then pass the half-close on."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:
        pass
