"""Streamable behind the TikTok stand-in's proxy: a second site for ALLOWED_SITES tests.

Streamable is the simplest real yt-dlp extractor to play faithfully (``StreamableIE``, IE_NAME
"Streamable"; ``allowed_extractors=["streamable"]``, matched case-insensitively): for
``https://streamable.com/ID`` (also ``/e/ID`` and ``/s/ID/...``) yt-dlp 2026.10.26 makes one JSON
request, ``https://ajax.streamable.com/videos/ID``, and downloads the progressive H.264/AAC mp4
that ``files.<key>.url`` names (protocol-relative, on cdn-cf-east.streamable.com, a CloudFront
URL signed with ``Expires`` in milliseconds, ``Signature`` and ``Key-Pair-Id``; 403 without them).
No cookies, no impersonation, no page request.

- ``status`` other than 2 (0 uploading, 1 processing, 3 failed) -> "This video is currently
  unavailable. It may still be uploading or processing."
- An unknown id -> the API answers 404 -> "Unable to download JSON metadata: HTTP Error 404".
- ``title`` (``reddit_title`` wins when set), ``owner.user_name`` -> ``uploader``, ``duration``,
  ``date_added`` -> ``timestamp``; codecs from ``input_metadata``; ``size`` -> ``filesize``.
- There is no thumbnail (``thumbnail_url`` null), so yt-dlp asks for nothing else.
"""

from __future__ import annotations

import base64
import hmac
import html
import json
import re
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any, ClassVar

from aiohttp import web

from tests.standins.clips import Clip
from tests.standins.tiktok import TikTokStandIn, in_domain, ranged_response

_ID = re.compile(r"[a-z0-9]+")
_PAGE_PATH = re.compile(r"/(?:[es]/)?([a-z0-9]+)(?:/.*)?")
_API_PATH = re.compile(r"/videos/([a-z0-9]+)/?")
_CDN_PATH = re.compile(r"/video/mp4/([a-z0-9]+)\.mp4")
_DATE_ADDED = 1767225600.25  # 2026-01-01T00:00:00.25Z; fixed so metadata is reproducible.
_SIGNED_FOR_MS = 6 * 3600 * 1000


@dataclass(frozen=True)
class _Video:
    clip: Clip
    title: str
    uploader: str


@dataclass(frozen=True)
class _Unready:
    status: int


class StreamableSite:
    """streamable.com, ajax.streamable.com and its CDN, served through ``TikTokStandIn``'s proxy.

    Use ``StreamableSite.attach(tiktok_stand_in)``, then ``add_other_video``.
    """

    EXTRACTOR: ClassVar[str] = "streamable"
    PAGE_HOST: ClassVar[str] = "streamable.com"
    API_HOST: ClassVar[str] = "ajax.streamable.com"
    CDN_HOST: ClassVar[str] = "cdn-cf-east.streamable.com"
    KEY_PAIR_ID: ClassVar[str] = "APKAIEYUVEN4EVB2OKEQ"

    def __init__(self) -> None:
        self._videos: dict[str, _Video | _Unready] = {}
        self._url_key = secrets.token_bytes(32)

    @classmethod
    def attach(cls, proxy: TikTokStandIn) -> StreamableSite:
        """A new site served by ``proxy`` (whose ``proxy_url`` the downloader already uses)."""
        site = cls()
        proxy.add_site(site)
        return site

    @property
    def domains(self) -> tuple[str, ...]:
        return ("streamable.com",)

    # -- content ---------------------------------------------------------------------------

    def add_other_video(self, video_id: str, clip: Clip, *, title: str, uploader: str) -> str:
        """Serve ``clip`` (H.264/AAC mp4) as Streamable video ``video_id`` (lower-case letters
        and digits, like "dnd1"); returns the link a user would paste."""
        self._check_id(video_id)
        self._videos[video_id] = _Video(clip=clip, title=title, uploader=uploader)
        return self.video_url(video_id)

    def add_other_status(self, video_id: str, status: int) -> str:
        """Serve a video that is not ready (0 uploading, 1 processing, 3 failed)."""
        self._check_id(video_id)
        if status == 2:
            raise ValueError("status 2 is a ready video: use add_other_video")
        self._videos[video_id] = _Unready(status)
        return self.video_url(video_id)

    def video_url(self, video_id: str) -> str:
        return f"https://{self.PAGE_HOST}/{video_id}"

    def media_url(self, video_id: str) -> str:
        """A freshly signed CDN URL of the video's mp4, as the API hands it out (with https:)."""
        return "https:" + self._signed_media_url(video_id)

    @staticmethod
    def _check_id(video_id: str) -> None:
        if not _ID.fullmatch(video_id):
            raise ValueError(f"Streamable ids are lower-case letters and digits: {video_id!r}")

    # -- HTTPS side ------------------------------------------------------------------------

    async def handle(self, request: web.Request, host: str) -> web.StreamResponse:
        path = request.path
        if host == self.API_HOST and (match := _API_PATH.fullmatch(path)):
            return self._api(match.group(1))
        if host == self.CDN_HOST and (match := _CDN_PATH.fullmatch(path)):
            return self._media(request, match.group(1))
        if host == self.PAGE_HOST and (match := _PAGE_PATH.fullmatch(path)):
            return self._page(match.group(1))
        return web.Response(status=404, text="Not Found")

    def _api(self, video_id: str) -> web.Response:
        video = self._videos.get(video_id)
        if video is None:
            return _json({"error": "Video not found"}, status=404)
        common = {
            "shortcode": video_id,
            "url": f"streamable.com/{video_id}",
            "message": None,
            "reddit_title": None,
            "description": None,
            "thumbnail_url": None,
            "date_added": _DATE_ADDED,
            "plays": 42,
        }
        if isinstance(video, _Unready):
            return _json({**common, "status": video.status, "percent": 40, "files": {}})
        clip = video.clip
        bitrate = round(clip.size * 8 / clip.duration) if clip.duration > 0 else 0
        return _json(
            {
                **common,
                "status": 2,
                "percent": 100,
                "title": video.title,
                "duration": clip.duration,
                "owner": {"user_name": video.uploader},
                "files": {
                    "mp4": {
                        "status": 2,
                        "url": self._signed_media_url(video_id),
                        "width": clip.width,
                        "height": clip.height,
                        "bitrate": bitrate,
                        "size": clip.size,
                        "duration": clip.duration,
                        "input_metadata": {
                            "video_codec_name": "hevc" if clip.vcodec == "hevc" else "h264",
                            "audio_codec_name": "aac" if clip.has_audio else None,
                            "width": clip.width,
                            "height": clip.height,
                            "duration": clip.duration,
                        },
                    }
                },
            }
        )

    def _page(self, video_id: str) -> web.Response:
        video = self._videos.get(video_id)
        if not isinstance(video, _Video):
            return web.Response(status=404, text="Not Found")
        title = html.escape(video.title)
        return web.Response(
            text=(
                '<!DOCTYPE html><html><head><meta charset="utf-8">'
                f'<meta property="og:title" content="{title}">'
                f"<title>{title} - Streamable</title></head><body></body></html>"
            ),
            content_type="text/html",
        )

    def _media(self, request: web.Request, video_id: str) -> web.Response:
        video = self._videos.get(video_id)
        if not isinstance(video, _Video):
            return web.Response(status=404, text="Not Found")
        expires = request.query.get("Expires", "")
        valid = (
            expires.isdigit()
            and int(expires) > time.time() * 1000
            and request.query.get("Key-Pair-Id") == self.KEY_PAIR_ID
            and hmac.compare_digest(
                request.query.get("Signature", ""), self._sign(video_id, int(expires))
            )
        )
        if not valid:
            return web.Response(
                status=403,
                text=(
                    '<?xml version="1.0" encoding="UTF-8"?>'
                    "<Error><Code>AccessDenied</Code><Message>Access denied</Message></Error>"
                ),
                content_type="text/xml",
            )
        return ranged_response(request, video.clip.path.read_bytes(), "video/mp4")

    def _signed_media_url(self, video_id: str) -> str:
        expires = int(time.time() * 1000) + _SIGNED_FOR_MS
        query = urllib.parse.urlencode(
            {
                "Expires": expires,
                "Signature": self._sign(video_id, expires),
                "Key-Pair-Id": self.KEY_PAIR_ID,
            }
        )
        return f"//{self.CDN_HOST}/video/mp4/{video_id}.mp4?{query}"

    def _sign(self, video_id: str, expires: int) -> str:
        digest = hmac.digest(self._url_key, f"{video_id}|{expires}".encode(), "sha256")
        # CloudFront's URL-safe base64: + -> -, = -> _, / -> ~.
        return base64.b64encode(digest).decode().translate(str.maketrans("+=/", "-_~"))


def _json(data: dict[str, Any], *, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json.dumps(data), content_type="application/json")


class PlainWebSite:
    """Any site the generic extractor reads, served through ``TikTokStandIn``'s proxy: pages that
    name a video, mp4 files and redirects, on ``example.net`` and its subdomains.

    Use ``PlainWebSite.attach(tiktok_stand_in)``; yt-dlp needs ``allowed_extractors=["generic"]``.
    """

    DOMAIN: ClassVar[str] = "example.net"

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], web.Response | Clip] = {}

    @classmethod
    def attach(cls, proxy: TikTokStandIn) -> PlainWebSite:
        site = cls()
        proxy.add_site(site)
        return site

    @property
    def domains(self) -> tuple[str, ...]:
        return (self.DOMAIN,)

    def add_media(self, host: str, path: str, clip: Clip) -> str:
        """Serve ``clip`` as video/mp4 at https://HOST/PATH; returns that URL."""
        return self._add(host, path, clip)

    def add_page(self, host: str, path: str, video_url: str, *, og_video: bool = True) -> str:
        """An HTML page at https://HOST/PATH whose ``<video>`` plays ``video_url``, named as its
        ``og:video`` too unless ``og_video`` is false (yt-dlp's generic extractor reads og:video
        itself; ``<video>`` tags only through its separate "html5" extractor)."""
        src = html.escape(video_url, quote=True)
        meta = (
            f'<meta property="og:video" content="{src}">'
            '<meta property="og:video:type" content="video/mp4">'
            if og_video
            else ""
        )
        page = (
            '<!DOCTYPE html><html><head><meta charset="utf-8"><title>A clip</title>'
            f"{meta}</head>"
            f'<body><video controls src="{src}"></video></body></html>'
        )
        return self._add(host, path, web.Response(text=page, content_type="text/html"))

    def add_file(self, host: str, path: str, body: str, content_type: str) -> str:
        """Any text (a playlist, a key) at https://HOST/PATH."""
        return self._add(host, path, web.Response(text=body, content_type=content_type))

    def add_redirect(self, host: str, path: str, location: str, *, status: int = 302) -> str:
        """A redirect at https://HOST/PATH to ``location`` (any URL, any host)."""
        return self._add(host, path, web.Response(status=status, headers={"Location": location}))

    def _add(self, host: str, path: str, answer: web.Response | Clip) -> str:
        if not in_domain(host, self.DOMAIN) or not path.startswith("/"):
            raise ValueError(f"pages live on {self.DOMAIN} hosts at absolute paths: {host}{path}")
        self._routes[host, path] = answer
        return f"https://{host}{path}"

    async def handle(self, request: web.Request, host: str) -> web.StreamResponse:
        answer = self._routes.get((host, request.path))
        if answer is None:
            return web.Response(status=404, text="Not Found")
        if isinstance(answer, Clip):
            return ranged_response(request, answer.path.read_bytes(), "video/mp4")
        # A prepared aiohttp response is single-use: answer with a copy.
        return web.Response(
            status=answer.status,
            body=answer.body,
            headers={k: v for k, v in answer.headers.items() if k != "Content-Length"},
        )
