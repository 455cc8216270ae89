"""A local cobalt API instance (https://github.com/imputnet/cobalt, API 11.x) for tests.

What it follows, in the cobalt repository (read at a636575b, April 2026, version 11.7.1):

- ``docs/api.md``: ``POST /`` (request and answer shapes), ``GET /`` (instance info),
  ``GET /tunnel`` (a file stream; errors are bare HTTP statuses), authentication.
- ``api/src/core/api.js``: the order of the checks on ``POST /``: ``Accept`` and
  ``Content-Type`` must match ``^application/json(; charset=utf-8)?$`` (error.api.header.accept,
  error.api.header.content_type), then the API key, then the rate limit (429,
  error.api.rate_exceeded with ``context.limit``, the window in seconds), then the JSON body
  (express.json: at most 1024 bytes, an object or array, else error.api.invalid_body), then
  ``url`` (falsy: error.api.link.missing). Tunnels check ``id`` (21), ``exp`` (13), ``sig``
  (43), ``sec`` (43) and ``iv`` (22) lengths (400), then the signature (401), then that the
  stream exists and has not expired (404). Other ``GET``s redirect to ``/``.
- ``api/src/security/api-keys.js``: ``Authorization: Api-Key <lower-case UUID>``; missing ->
  error.api.auth.key.missing, another scheme -> .not_api_key, not a UUID or extra spaces ->
  .invalid, an unknown key -> .not_found. (Bearer/JWT sessions are not played.)
- ``api/src/processing/schema.js``: the strict zod schema (unknown keys, wrong enum values or
  types -> error.api.invalid_body). ``api/src/processing/url.js`` and ``service-config.js``:
  tiktok.com with no, www, vt, vm, m, t or pro subdomain, query and trailing slash dropped, paths
  ``:user/video/:postId``, ``:user/photo/:postId``, ``i18n/share/video/:postId``,
  ``v/:postId.html``, ``t/:shortLink``, ``:shortLink``; a TikTok path matching none ->
  error.api.link.unsupported (context ``service``); another host -> error.api.link.invalid.
- ``api/src/processing/services/tiktok.js``: a video is ``tiktok_<uniqueId>_<postId>.mp4``,
  always tunnelled (``match-action.js``: type proxy, because the CDN wants the page's cookie);
  a photo post is a ``picker`` of ``photo`` items (CDN URLs, or tunnels named
  ``..._photo_N.jpg`` with ``alwaysProxy``) plus ``audio``, a tunnel named
  ``tiktok_<uniqueId>_<postId>_audio_original.mp3``. Errors it gives: content.post.unavailable
  (a removed, private or unknown post: TikTok's ``statusMsg``), content.post.age,
  fetch.empty (no author in the item), fetch.fail (no page data), fetch.short_link. A photo
  post without music throws (``audio.includes`` on undefined), which ``match.js`` turns into
  error.api.fetch.critical.
- ``api/src/processing/request.js``: errors answer 400 ``{"status":"error","error":{"code",
  "context"}}``; ``critical`` ones 500 with ``"critical": true``. ``match-action.js``:
  ``alwaysProxy`` turns a redirect into a tunnel; ``localProcessing: "forced"`` answers
  ``local-processing``.

Simplifications: tunnels serve the test's file as it is (no remuxing or transcoding; audio
arrives as given, whatever ``audioFormat`` asked), ignore ``Range``, and the stream store is this
process's memory (so ``sec`` and ``iv`` are only checked for length, through the signature).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import re
import secrets
import string
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

from aiohttp import web

from tests.standins.lifecycle import StandIn, hold_until_gone, listen

_JSON_TYPE = re.compile(r"application/json(; charset=utf-8)?")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_BODY_LIMIT = 1024
_RATE_WINDOW_S = 60
_PIECE = 65536
_NANOID_ALPHABET = string.ascii_letters + string.digits + "_-"

# url-pattern's segment characters, plus the "@.:" cobalt adds (service-config.js).
_SEGMENT = r"[A-Za-z0-9\-_~ %@.:]+"
_TIKTOK_PATTERNS = tuple(
    re.compile(p)
    for p in (
        rf"(?P<user>{_SEGMENT})/video/(?P<postId>{_SEGMENT})",
        rf"i18n/share/video/(?P<postId>{_SEGMENT})",
        rf"(?P<shortLink>{_SEGMENT})",
        rf"t/(?P<shortLink>{_SEGMENT})",
        rf"(?P<user>{_SEGMENT})/photo/(?P<postId>{_SEGMENT})",
        rf"v/(?P<postId>{_SEGMENT})\.html",
    )
)
_TIKTOK_SUBDOMAINS = frozenset({"", "www", "vt", "vm", "m", "t", "pro"})

# schema.js: key -> allowed values (a tuple), bool, or a regex for optional strings.
_LANG = re.compile(r"[0-9a-zA-Z\-]{2,8}")
_SCHEMA: dict[str, tuple[str, ...] | type[bool] | re.Pattern[str]] = {
    "audioBitrate": ("320", "256", "128", "96", "64", "8"),
    "audioFormat": ("best", "mp3", "ogg", "wav", "opus"),
    "downloadMode": ("auto", "audio", "mute"),
    "filenameStyle": ("classic", "pretty", "basic", "nerdy"),
    "youtubeVideoCodec": ("h264", "av1", "vp9"),
    "youtubeVideoContainer": ("auto", "mp4", "webm", "mkv"),
    "videoQuality": ("max", "4320", "2160", "1440", "1080", "720", "480", "360", "240", "144"),
    "localProcessing": ("disabled", "preferred", "forced"),
    "youtubeDubLang": _LANG,
    "subtitleLang": _LANG,
    "disableMetadata": bool,
    "allowH265": bool,
    "convertGif": bool,
    "tiktokFullAudio": bool,
    "alwaysProxy": bool,
    "youtubeHLS": bool,
    "youtubeBetterAudio": bool,
}
# match.js adds a context to these codes.
_SERVICE_CONTEXT = frozenset(
    {
        "error.api.fetch.fail",
        "error.api.fetch.rate",
        "error.api.fetch.critical",
        "error.api.link.unsupported",
        "error.api.content.video.unavailable",
    }
)

Mode = Literal["tunnel", "redirect"]


@dataclass(frozen=True)
class CobaltRequest:
    """One HTTP request the stand-in answered; ``body`` is the parsed JSON of a ``POST /``
    (None when it was not JSON)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: Any = None


@dataclass(frozen=True)
class _VideoPost:
    file: Path
    author: str
    mode: Mode
    redirect_url: str | None


@dataclass(frozen=True)
class _PhotoPost:
    images: tuple[Path, ...]
    audio: Path | None
    author: str
    cdn_urls: tuple[str, ...] | None


@dataclass(frozen=True)
class _ErrorPost:
    code: str
    critical: bool


_Post = _VideoPost | _PhotoPost | _ErrorPost


@dataclass(frozen=True)
class _Stream:
    file: Path
    filename: str
    exp_ms: int
    content_type: str | None  # None: an ffmpeg-rendered tunnel, which sets no type or length


@dataclass
class _RateCount:
    started: float = 0.0
    used: int = 0


@dataclass
class _Knobs:
    """What tests change on a running stand-in."""

    # Tunnels send this many bytes, then nothing more until the client leaves.
    stall_tunnels_after: int | None = None
    # Tunnels answer this status and no body (cobalt passes the upstream's status through).
    tunnel_status: int | None = None


class CobaltStandIn(StandIn):
    """A cobalt API instance on 127.0.0.1 at a free port; ``async with CobaltStandIn() as c``.

    ``api_key`` (a lower-case UUID, as cobalt's key file requires) makes it require
    ``Authorization: Api-Key <key>`` (API_AUTH_REQUIRED=1; with ``auth_required=False`` a request
    without a key is served anonymously). ``rate_limit`` is RATELIMIT_MAX per 60 s window.
    ``answer_local_processing`` answers every video with ``local-processing``, as an instance
    does for ``localProcessing: "forced"``.
    """

    VERSION: ClassVar[str] = "11.7.1"

    def __init__(
        self,
        *,
        api_key: str | None = None,
        auth_required: bool = True,
        rate_limit: int | None = None,
        answer_local_processing: bool = False,
        stream_lifespan_s: float = 90.0,
    ) -> None:
        if api_key is not None and not _UUID.fullmatch(api_key):
            raise ValueError("cobalt's API keys are lower-case UUIDs")
        self.requests: list[CobaltRequest] = []
        # API_URL: what tunnel links are built on; None: this stand-in's own address.
        self.public_url: str | None = None
        self.knobs = _Knobs()
        self._api_key = api_key
        self._auth_required = auth_required
        self._rate_limit = rate_limit
        self._local_processing = answer_local_processing
        self._lifespan_ms = int(stream_lifespan_s * 1000)
        self._rate = _RateCount()
        self._posts: dict[str, _Post] = {}
        self._short_links: dict[str, str] = {}
        self._streams: dict[str, _Stream] = {}
        self._hmac_key = secrets.token_bytes(32)
        self._start_ms = int(time.time() * 1000)
        self._runner: web.AppRunner | None = None
        self._port = 0
        self._stopping = asyncio.Event()
        self._tunnel_started = asyncio.Event()

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("CobaltStandIn is already started")
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner, self._port = await listen(app, shutdown_timeout=1.0)

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        """The instance's root, ``http://127.0.0.1:PORT/`` (what COBALT_API_URL names)."""
        if not self._port:
            raise RuntimeError("CobaltStandIn is not started")
        return f"http://127.0.0.1:{self._port}/"

    # -- content ---------------------------------------------------------------------------

    def add_video(
        self,
        post_id: str,
        mp4: Path,
        *,
        author: str = "user",
        mode: Mode = "tunnel",
        redirect_url: str | None = None,
    ) -> None:
        """Answer TikTok post ``post_id`` with ``mp4``: a tunnel on this instance, or with
        ``mode="redirect"`` a redirect to ``redirect_url`` (a tunnel of ``mp4`` when the request
        asks ``alwaysProxy``, as cobalt turns redirects into tunnels then)."""
        if mode == "redirect" and not redirect_url:
            raise ValueError("a redirect needs redirect_url")
        self._posts[post_id] = _VideoPost(mp4, author, mode, redirect_url)

    def add_photos(
        self,
        post_id: str,
        images: Sequence[Path],
        audio: Path | None,
        *,
        author: str = "user",
        cdn_urls: Sequence[str] | None = None,
    ) -> None:
        """Answer post ``post_id`` with a picker of ``images`` and ``audio`` (an MP3).

        ``cdn_urls`` are the slides' TikTok CDN URLs, handed out as they are when the request
        does not ask ``alwaysProxy``; without them the slides are always tunnels. A post without
        audio answers error.api.fetch.critical, as cobalt's TikTok module throws on it.
        """
        if not images:
            raise ValueError("a photo post has at least one image")
        if cdn_urls is not None and len(cdn_urls) != len(images):
            raise ValueError("one CDN URL per image")
        self._posts[post_id] = _PhotoPost(
            tuple(images), audio, author, tuple(cdn_urls) if cdn_urls is not None else None
        )

    def add_error(self, post_id: str, code: str, *, critical: bool = False) -> None:
        """Answer post ``post_id`` with error ``code`` (e.g. "error.api.fetch.empty"), with the
        context cobalt adds to it; ``critical`` answers 500 with ``"critical": true``."""
        if not code.startswith("error.api."):
            raise ValueError(f"cobalt's codes start with 'error.api.': {code!r}")
        self._posts[post_id] = _ErrorPost(code, critical)

    def add_short_link(self, code: str, post_id: str) -> None:
        """Make vm/vt.tiktok.com/CODE lead to ``post_id``; unknown codes answer
        error.api.fetch.short_link."""
        self._short_links[code] = post_id

    # -- inspection ------------------------------------------------------------------------

    @property
    def api_requests(self) -> list[CobaltRequest]:
        """The ``POST /`` requests, in order."""
        return [r for r in self.requests if r.method == "POST" and r.path == "/"]

    @property
    def tunnel_requests(self) -> list[CobaltRequest]:
        return [r for r in self.requests if r.path == "/tunnel"]

    async def wait_for_tunnel(self, within_s: float = 10.0) -> None:
        """Return once a tunnel has started sending a file."""
        await asyncio.wait_for(self._tunnel_started.wait(), within_s)

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read() if request.method == "POST" else b""
        body: Any = None
        with contextlib.suppress(ValueError):
            body = json.loads(raw) if raw else None
        self.requests.append(
            CobaltRequest(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                headers=dict(request.headers),
                body=body,
            )
        )
        if request.method == "POST" and request.path == "/":
            return self._post(request, raw)
        if request.method in ("GET", "HEAD"):
            if request.path == "/":
                return web.Response(text=self._info(), content_type="application/json")
            if request.path == "/tunnel":
                return await self._tunnel(request)
            if request.path == "/favicon.ico":
                return web.Response(status=404)
            raise web.HTTPFound("/")
        return web.Response(status=404, text=f"Cannot {request.method} {request.path}")

    def _info(self) -> str:
        return json.dumps(
            {
                "cobalt": {
                    "version": self.VERSION,
                    "url": self.public_url or self.url,
                    "startTime": str(self._start_ms),
                    "services": ["tiktok"],
                },
                "git": {
                    "commit": "a636575b09de1fc55d9b8cd98cac88f5f2f16b42",
                    "branch": "main",
                    "remote": "imputnet/cobalt",
                },
            }
        )

    def _post(self, request: web.Request, raw: bytes) -> web.Response:
        if not _JSON_TYPE.fullmatch(request.headers.get("Accept", "")):
            return _error("error.api.header.accept")
        if not _JSON_TYPE.fullmatch(request.headers.get("Content-Type", "")):
            return _error("error.api.header.content_type")
        if self._api_key is not None:
            refused = self._auth_error(request.headers.get("Authorization"))
            if refused is not None and (
                self._auth_required or refused not in ("missing", "not_api_key")
            ):
                return _error(f"error.api.auth.key.{refused}")
        if self._rate_limit is not None and self._over_rate_limit():
            return _error(
                "error.api.rate_exceeded",
                {"limit": _RATE_WINDOW_S},
                status=429,
                headers=self._rate_headers(),
            )
        if len(raw) > _BODY_LIMIT or raw.lstrip()[:1] not in (b"{", b"[", b""):
            return _error("error.api.invalid_body")
        try:
            body: Any = json.loads(raw) if raw.strip() else {}
        except ValueError:
            return _error("error.api.invalid_body")
        if not isinstance(body, dict) or not body.get("url"):
            return _error("error.api.link.missing")
        if not _valid_options(body):
            return _error("error.api.invalid_body")
        url = _parse_url(body["url"])
        if url is None:
            return _error("error.api.invalid_body")
        return self._answer(url, body)

    def _auth_error(self, header: str | None) -> str | None:
        """api-keys.js validateAuthorization: None when the key is good, else the error."""
        if header is None:
            return "missing"
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "api-key":
            return "not_api_key"
        key = key.split(" ", 1)[0]
        if not _UUID.fullmatch(key) or f"{scheme} {key}" != header:
            return "invalid"
        if key != self._api_key:
            return "not_found"
        return None

    def _over_rate_limit(self) -> bool:
        count, now = self._rate, time.monotonic()
        if now - count.started >= _RATE_WINDOW_S:
            count.started, count.used = now, 0
        count.used += 1
        assert self._rate_limit is not None
        return count.used > self._rate_limit

    def _rate_headers(self) -> dict[str, str]:
        assert self._rate_limit is not None
        count = self._rate
        reset = max(0, round(_RATE_WINDOW_S - (time.monotonic() - count.started)))
        return {
            "RateLimit-Policy": f"{self._rate_limit};w={_RATE_WINDOW_S}",
            "RateLimit-Limit": str(self._rate_limit),
            "RateLimit-Remaining": str(max(0, self._rate_limit - count.used)),
            "RateLimit-Reset": str(reset),
        }

    def _answer(self, url: urllib.parse.SplitResult, body: dict[str, Any]) -> web.Response:
        host = (url.hostname or "").lower()
        if host != "tiktok.com" and not host.endswith(".tiktok.com"):
            return _error("error.api.link.invalid")
        if host.removesuffix("tiktok.com").rstrip(".") not in _TIKTOK_SUBDOMAINS:
            return _error("error.api.link.invalid")
        match = _match_tiktok(url.path)
        if match is None:
            return _error("error.api.link.unsupported", {"service": "tiktok"})
        post_id = match.get("postId")
        if post_id is None:
            post_id = self._short_links.get(match["shortLink"])
            if post_id is None:
                return _error("error.api.fetch.short_link")
        post = self._posts.get(post_id)
        if post is None:
            return _error("error.api.content.post.unavailable")
        if isinstance(post, _ErrorPost):
            if post.critical:
                return web.json_response(
                    {"status": "error", "error": {"code": post.code}, "critical": True},
                    status=500,
                )
            return _error(post.code, _context_for(post.code))
        base = f"tiktok_{post.author}_{post_id}"
        always_proxy = body.get("alwaysProxy") is True
        if isinstance(post, _PhotoPost):
            return self._picker(post, base, always_proxy)
        filename = f"{base}.mp4"
        if self._local_processing or body.get("localProcessing") == "forced":
            return web.json_response(
                {
                    "status": "local-processing",
                    "type": "proxy",
                    "service": "tiktok",
                    "tunnel": [self._stream(post.file, filename, "video/mp4")],
                    "output": {"type": "video/mp4", "filename": filename},
                }
            )
        if post.mode == "redirect" and not always_proxy:
            return web.json_response(
                {"status": "redirect", "url": post.redirect_url, "filename": filename}
            )
        return web.json_response(
            {
                "status": "tunnel",
                "url": self._stream(post.file, filename, "video/mp4"),
                "filename": filename,
            }
        )

    def _picker(self, post: _PhotoPost, base: str, always_proxy: bool) -> web.Response:
        if post.audio is None:
            return _error("error.api.fetch.critical", {"service": "tiktok"})
        items = []
        for n, image in enumerate(post.images, start=1):
            if post.cdn_urls is not None and not always_proxy:
                url = post.cdn_urls[n - 1]
            else:
                url = self._stream(image, f"{base}_photo_{n}.jpg", "image/jpeg")
            items.append({"type": "photo", "url": url})
        audio_name = f"{base}_audio_original.mp3"
        return web.json_response(
            {
                "status": "picker",
                "picker": items,
                "audio": self._stream(post.audio, audio_name, None),
                "audioFilename": audio_name,
            }
        )

    def _stream(self, file: Path, filename: str, content_type: str | None) -> str:
        """manage.js createStream: a signed /tunnel link on API_URL."""
        stream_id = "".join(secrets.choice(_NANOID_ALPHABET) for _ in range(21))
        exp = int(time.time() * 1000) + self._lifespan_ms
        iv = _b64(secrets.token_bytes(16))
        secret = _b64(secrets.token_bytes(32))
        self._streams[stream_id] = _Stream(file, filename, exp, content_type)
        query = urllib.parse.urlencode(
            {
                "id": stream_id,
                "exp": exp,
                "sig": self._sign(stream_id, str(exp), iv, secret),
                "sec": secret,
                "iv": iv,
            }
        )
        return urllib.parse.urljoin(self.public_url or self.url, "/tunnel") + f"?{query}"

    def _sign(self, stream_id: str, exp: str, iv: str, secret: str) -> str:
        message = f"{stream_id},{exp},{iv},{secret}".encode()
        return _b64(hmac.new(self._hmac_key, message, hashlib.sha256).digest())

    async def _tunnel(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        stream_id, exp, sig = q.get("id", ""), q.get("exp", ""), q.get("sig", "")
        sec, iv = q.get("sec", ""), q.get("iv", "")
        if (len(stream_id), len(exp), len(sig), len(sec), len(iv)) != (21, 13, 43, 43, 22):
            return web.Response(status=400)
        if q.get("p"):
            return web.Response(status=200)
        if not hmac.compare_digest(sig, self._sign(stream_id, exp, iv, sec)):
            return web.Response(status=401)
        stream = self._streams.get(stream_id)
        if stream is None or stream.exp_ms <= time.time() * 1000:
            return web.Response(status=404)
        if self.knobs.tunnel_status is not None:
            return web.Response(status=self.knobs.tunnel_status)
        return await self._send_file(request, stream)

    async def _send_file(self, request: web.Request, stream: _Stream) -> web.StreamResponse:
        data = await asyncio.to_thread(stream.file.read_bytes)
        response = web.StreamResponse(status=200)
        response.headers["Content-Disposition"] = f'attachment; filename="{stream.filename}"'
        if stream.content_type is not None:
            response.headers["Content-Type"] = stream.content_type
            response.headers["Accept-Ranges"] = "bytes"
            response.content_length = len(data)
        else:
            # ffmpeg.js render: a guess of the size, no type, chunked.
            response.headers["Estimated-Content-Length"] = str(len(data))
        await response.prepare(request)
        self._tunnel_started.set()
        stall = self.knobs.stall_tunnels_after
        end = len(data) if stall is None else min(stall, len(data))
        for start in range(0, end, _PIECE):
            await response.write(data[start : min(start + _PIECE, end)])
        if stall is not None:
            await hold_until_gone(request, self._stopping)
            return response
        await response.write_eof()
        return response


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _error(
    code: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 400,
    headers: dict[str, str] | None = None,
) -> web.Response:
    error: dict[str, Any] = {"code": code}
    if context is not None:
        error["context"] = context
    return web.json_response({"status": "error", "error": error}, status=status, headers=headers)


def _context_for(code: str) -> dict[str, Any] | None:
    if code == "error.api.content.too_long":
        return {"limit": 180.0}  # DURATION_LIMIT (10800 s) in minutes
    if code in _SERVICE_CONTEXT:
        return {"service": "tiktok"}
    return None


def _valid_options(body: dict[str, Any]) -> bool:
    """schema.js: a strict object; ``url`` a non-empty string, the rest as the table says."""
    if not isinstance(body["url"], str):
        return False
    for key, value in body.items():
        if key == "url":
            continue
        rule = _SCHEMA.get(key)
        if rule is None:
            return False
        if rule is bool:
            if not isinstance(value, bool):
                return False
        elif isinstance(rule, re.Pattern):
            if not isinstance(value, str) or not rule.fullmatch(value):
                return False
        elif value not in rule:
            return False
    return True


def _parse_url(text: str) -> urllib.parse.SplitResult | None:
    """url.js normalizeURL, as far as TikTok needs: ``new URL`` must accept it."""
    if text.startswith("https//"):
        text = "https://" + text.removeprefix("https//")
    try:
        url = urllib.parse.urlsplit(text)
        url.port  # noqa: B018 (raises on a bad port, as new URL does)
    except ValueError:
        return None
    if not url.scheme or not url.netloc or any(c.isspace() for c in text):
        return None
    return url


def _match_tiktok(path: str) -> dict[str, str] | None:
    """The first of cobalt's TikTok patterns that matches, and whether ``testers.tiktok``
    accepts it (ids and short codes of at most 21 characters)."""
    path = path.removeprefix("/").removesuffix("/")
    for pattern in _TIKTOK_PATTERNS:
        found = pattern.fullmatch(path)
        if found:
            groups = {k: v for k, v in found.groupdict().items() if v is not None}
            key = groups.get("postId") or groups.get("shortLink") or ""
            return groups if len(key) <= 21 else None
    return None
