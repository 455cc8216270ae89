"""cobalt (github.com/imputnet/cobalt) as the second path: one ``POST /`` to the operator's
instance, then its tunnel, redirect or picker answer into the job directory.

What the instance does is in its ``docs/api.md`` and ``api/src/processing/services/tiktok.js``
(tests/standins/cobalt.py cites the details). TikTok videos always come as tunnels on the
instance, named ``tiktok_<author>_<id>.mp4``; photo posts as a picker of slides plus an audio
tunnel. We ask ``alwaysProxy`` so slides come through the instance too: the instance just got
the post from TikTok, so its tunnels work where our own address may be refused. Redirects (and
slides handed out as CDN URLs) are fetched like user links: through DOWNLOAD_PROXY, each hop
vetted by the SSRF guard. A tunnel must be on the instance's own origin, so an answer cannot send
us elsewhere with the instance's trust.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bot.links import Link, LinkKind
from bot.model import Album, ClipInfo, Download, FailureKind, FetchError, Reason
from bot.netguard import AddressRefused, HostGuard, literal_address
from bot.proxies import read_timeout_s

__all__ = ["CobaltDownloader"]

log = logging.getLogger(__name__)

# schema.js keys, each also in cobalt 10.6+ (2025-01). H.264 is what plays everywhere: TikTok's
# HEVC only with allowH265. The post's own sound, not the "original sound" (tiktokFullAudio).
_OPTIONS: Mapping[str, Any] = {
    "videoQuality": "1080",
    "downloadMode": "auto",
    "allowH265": False,
    "tiktokFullAudio": False,
    "youtubeVideoCodec": "h264",
}
_MAX_HOPS = 5
_PIECE = 65536
# tiktok.js: "tiktok_<uniqueId>_<postId>" + ".mp4", or "_audio[_original].<format>".
_FILENAME = re.compile(r"tiktok_([A-Za-z0-9_.]{1,64})_([0-9]{1,25})(?:_audio(?:_original)?)?\.\w+")

_IMAGE_TYPES = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/heic": ".heic",
    "image/avif": ".avif",
}
_AUDIO_TYPES = {
    "audio/mpeg": ".mp3",
    "audio/mp3": ".mp3",
    "audio/mp4": ".m4a",
    "audio/x-m4a": ".m4a",
    "audio/aac": ".aac",
    "audio/ogg": ".ogg",
    "audio/opus": ".opus",
}


@dataclass(frozen=True, slots=True)
class _Refusal:
    reason: Reason
    kind: FailureKind | None = None
    # Set when the operator must change something: logged once per failed request.
    fix: str | None = None


_KEY_REFUSED = _Refusal(Reason.FAILED, fix="cobalt refused the API key: check COBALT_API_KEY")
_KEY_WANTED = _Refusal(
    Reason.FAILED, fix="cobalt requires an API key: set COBALT_API_KEY to a key of the instance"
)
_NOT_UNDERSTOOD = _Refusal(
    Reason.FAILED,
    fix="cobalt did not accept our request: the instance may be older than 10.6 (2025-01)",
)

# Error codes (docs/api.md, web/i18n/en/error/api.json; tiktok.js gives content.post.unavailable,
# content.post.age, fetch.empty, fetch.fail and fetch.short_link), first the exact ones.
_ERRORS: Mapping[str, _Refusal] = {
    "content.post.unavailable": _Refusal(Reason.REMOVED),
    "content.video.unavailable": _Refusal(Reason.REMOVED),
    "fetch.short_link": _Refusal(Reason.REMOVED),
    "content.post.private": _Refusal(Reason.PRIVATE),
    "content.video.private": _Refusal(Reason.PRIVATE),
    "content.post.age": _Refusal(Reason.LOGIN_REQUIRED, FailureKind.LOGIN_WALL),
    "content.video.age": _Refusal(Reason.LOGIN_REQUIRED, FailureKind.LOGIN_WALL),
    "content.region": _Refusal(Reason.REGION_LOCKED),
    "content.video.region": _Refusal(Reason.REGION_LOCKED),
    "content.too_long": _Refusal(Reason.TOO_LONG),
    "content.video.live": _Refusal(Reason.NOT_A_VIDEO),
    # TikTok's item came without an author, or the instance was rate limited: TikTok refuses
    # the instance's address.
    "fetch.empty": _Refusal(Reason.BLOCKED, FailureKind.BLOCKED_IP),
    "fetch.rate": _Refusal(Reason.BLOCKED, FailureKind.BLOCKED_IP),
    # The page came without its data, or the module threw.
    "fetch.fail": _Refusal(Reason.BLOCKED, FailureKind.SERVER_ERROR),
    "fetch.critical": _Refusal(Reason.BLOCKED, FailureKind.SERVER_ERROR),
    "fetch.critical.core": _Refusal(Reason.FAILED, FailureKind.SERVER_ERROR),
    "generic": _Refusal(Reason.FAILED, FailureKind.SERVER_ERROR),
    "link.invalid": _Refusal(Reason.UNSUPPORTED_SITE),
    "service.unsupported": _Refusal(Reason.UNSUPPORTED_SITE),
    "link.unsupported": _Refusal(Reason.NOT_A_VIDEO),
    "service.disabled": _Refusal(
        Reason.FAILED, fix="cobalt has TikTok disabled: remove it from DISABLED_SERVICES there"
    ),
    "rate_exceeded": _Refusal(
        Reason.FAILED, fix="cobalt's own rate limit refused us: give our API key a higher limit"
    ),
    "auth.key.missing": _KEY_WANTED,
    "auth.key.not_api_key": _KEY_WANTED,
    "auth.jwt.missing": _KEY_WANTED,
    "auth.jwt.invalid": _KEY_WANTED,
    "header.accept": _NOT_UNDERSTOOD,
    "header.content_type": _NOT_UNDERSTOOD,
    "invalid_body": _NOT_UNDERSTOOD,
    "link.missing": _NOT_UNDERSTOOD,
}


@dataclass(frozen=True, slots=True)
class _Origin:
    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, url: httpx.URL) -> _Origin:
        default = 443 if url.scheme == "https" else 80
        return cls(url.scheme, url.host.lower(), url.port or default)


class _Quota:
    """The bytes one fetch may still write, over all its files."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.used = 0

    def take(self, n: int) -> None:
        self.used += n
        if self.used > self.max_bytes:
            raise FetchError(Reason.TOO_LARGE, f"over {self.max_bytes} bytes")


class CobaltDownloader:
    """Implements the `SecondPath` port with a cobalt instance's JSON API (httpx)."""

    def __init__(
        self,
        *,
        api_url: str,
        api_key: str | None,
        proxy: str | None,
        verify_tls: bool,
        timeout_s: float,
        max_bytes: int,
        guard: HostGuard,
        always_proxy: bool = True,
    ) -> None:
        self._api_url = httpx.URL(api_url)
        if self._api_url.scheme not in ("http", "https") or not self._api_url.host:
            raise ValueError("COBALT_API_URL must be an http(s) URL")
        self._origin = _Origin.of(self._api_url)
        self._api_key = api_key
        self._proxy = proxy or None
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._guard = guard
        self._options = {**_OPTIONS, "alwaysProxy": always_proxy}
        timeout = httpx.Timeout(timeout_s, read=read_timeout_s(timeout_s))
        # The instance is the operator's own configuration: reached directly, never proxied.
        self._api = httpx.AsyncClient(timeout=timeout, follow_redirects=False, trust_env=False)
        # Redirect targets are on TikTok's (or anyone's) CDN: fetched as user links are.
        self._direct = httpx.AsyncClient(
            proxy=self._proxy,
            verify=verify_tls,
            timeout=timeout,
            follow_redirects=False,
            trust_env=False,
        )

    async def aclose(self) -> None:
        await self._api.aclose()
        await self._direct.aclose()

    async def fetch(self, link: Link, workdir: Path, budget_bytes: int) -> Download | Album:
        """The post as a file (or an album) in `workdir`. `budget_bytes` is not asked of the
        instance (TikTok offers one rendition); the caller fits what comes to it."""
        if link.kind is LinkKind.NOT_VIDEO:
            raise FetchError(Reason.NOT_A_VIDEO, f"{link.kind.value} link")
        written: list[Path] = []
        try:
            async with asyncio.timeout(self._timeout_s):
                answer = await self._ask(link)
                return await self._collect(answer, link, workdir, written)
        except (TimeoutError, httpx.TimeoutException):
            _remove(written)
            raise FetchError(Reason.TIMED_OUT, f"cobalt: over {self._timeout_s:.0f} s") from None
        except httpx.HTTPError as err:
            _remove(written)
            raise FetchError(
                Reason.FAILED, f"cobalt media: {type(err).__name__}", FailureKind.SERVER_ERROR
            ) from None
        except BaseException:
            _remove(written)
            raise

    # -- the API ---------------------------------------------------------------------------

    async def _ask(self, link: Link) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Content-Type": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Api-Key {self._api_key}"
        body = json.dumps({"url": link.url, **self._options})
        try:
            response = await self._api.post(self._api_url, content=body, headers=headers)
        except httpx.TimeoutException:
            raise FetchError(Reason.TIMED_OUT, "cobalt API") from None
        except httpx.HTTPError as err:
            log.warning(
                "cobalt at %s is unreachable (%s): check COBALT_API_URL",
                self._where(),
                type(err).__name__,
            )
            raise FetchError(Reason.FAILED, f"cobalt unreachable: {type(err).__name__}") from None
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict) or not isinstance(answer.get("status"), str):
            raise FetchError(
                Reason.FAILED,
                f"cobalt answered {response.status_code} without its JSON",
                FailureKind.SERVER_ERROR if response.status_code >= 500 else None,
            )
        if answer["status"] == "error":
            raise self._refused(answer)
        return answer

    def _refused(self, answer: Mapping[str, Any]) -> FetchError:
        error = answer.get("error")
        code = str(error.get("code", "")) if isinstance(error, dict) else ""
        short = code.removeprefix("error.api.")
        refusal = _ERRORS.get(short)
        if refusal is None and short.startswith("auth.key."):
            refusal = _KEY_REFUSED
        if refusal is None:
            refusal = _Refusal(Reason.FAILED)
        if refusal.fix is not None:
            log.warning("%s (%s from %s)", refusal.fix, code, self._where())
        return FetchError(refusal.reason, f"cobalt: {code or 'no error code'}", refusal.kind)

    def _where(self) -> str:
        """The instance's origin, for logs: never a path, user info or key."""
        origin = self._origin
        return f"{origin.scheme}://{origin.host}:{origin.port}"

    # -- the answer ------------------------------------------------------------------------

    async def _collect(
        self, answer: Mapping[str, Any], link: Link, workdir: Path, written: list[Path]
    ) -> Download | Album:
        status = answer["status"]
        quota = _Quota(self._max_bytes)
        if status in ("tunnel", "redirect"):
            url = _text(answer.get("url"))
            path = workdir / "clip.mp4"
            written.append(path)
            if status == "tunnel":
                await self._tunnel(url, path, quota)
            else:
                await self._outside(url, path, quota)
            return Download(path=path, info=_info(link, _text(answer.get("filename")), "video"))
        if status == "picker":
            return await self._album(answer, link, workdir, written, quota)
        if status == "local-processing":
            log.warning(
                "cobalt at %s answers local-processing, which leaves the remux to us: "
                "turn FORCE_LOCAL_PROCESSING off on the instance so that it tunnels",
                self._where(),
            )
            raise FetchError(
                Reason.FAILED, "cobalt answered local-processing: configure it to tunnel"
            )
        raise FetchError(Reason.FAILED, f"cobalt answered an unknown status {status!r}")

    async def _album(
        self,
        answer: Mapping[str, Any],
        link: Link,
        workdir: Path,
        written: list[Path],
        quota: _Quota,
    ) -> Album:
        items = answer.get("picker")
        if not isinstance(items, list) or not items:
            raise FetchError(Reason.NOT_A_VIDEO, "cobalt answered an empty picker")
        images: list[Path] = []
        for n, item in enumerate(items, start=1):
            if not isinstance(item, dict) or item.get("type") != "photo":
                raise FetchError(Reason.NOT_A_VIDEO, "cobalt's picker holds more than photos")
            part = workdir / f"{n}.part"
            written.append(part)
            kind = await self._fetch_any(_text(item.get("url")), part, quota)
            path = part.with_suffix(_IMAGE_TYPES.get(kind) or _image_suffix(part))
            part.replace(path)
            written.append(path)
            images.append(path)
        audio: Path | None = None
        if answer.get("audio"):
            part = workdir / "audio.part"
            written.append(part)
            # The audio is always a tunnel (match-action.js createStream), even without
            # alwaysProxy.
            kind = await self._tunnel(_text(answer.get("audio")), part, quota)
            audio = part.with_suffix(_AUDIO_TYPES.get(kind) or _audio_suffix(part))
            part.replace(audio)
            written.append(audio)
        info = _info(link, _text(answer.get("audioFilename")), "photo")
        return Album(images=tuple(images), audio=audio, info=info)

    async def _fetch_any(self, url: str, path: Path, quota: _Quota) -> str:
        """A picker item: a tunnel when on the instance's origin, else a CDN URL."""
        if _Origin.of(_parse(url)) == self._origin:
            return await self._tunnel(url, path, quota)
        return await self._outside(url, path, quota)

    async def _tunnel(self, url: str, path: Path, quota: _Quota) -> str:
        target = _parse(url)
        if _Origin.of(target) != self._origin:
            raise FetchError(
                Reason.FAILED,
                f"cobalt's tunnel is on {target.scheme}://{target.host}, not the instance's "
                "origin: set the instance's API_URL to COBALT_API_URL",
            )
        async with self._api.stream("GET", target) as response:
            return await self._save(response, path, quota)

    async def _outside(self, url: str, path: Path, quota: _Quota) -> str:
        """A URL off the instance, fetched as user links are: vetted hop by hop."""
        target = _parse(url)
        for _ in range(_MAX_HOPS):
            request = await self._vetted(target)
            response = await self._direct.send(request, stream=True)
            try:
                if not response.is_redirect:
                    return await self._save(response, path, quota)
                location = response.headers.get("location")
                if not location:
                    raise FetchError(Reason.FAILED, "a redirect without a Location")
                target = _parse(str(target.join(location)))
            finally:
                await response.aclose()
        raise FetchError(Reason.FAILED, "cobalt's redirect: too many hops")

    async def _vetted(self, url: httpx.URL) -> httpx.Request:
        """A request for `url` once the guard allows it. Without a proxy we connect, so the
        connection goes to the very address vetted (TLS still names the host)."""
        if url.scheme not in ("http", "https"):
            raise FetchError(Reason.UNSAFE_ADDRESS, f"a {url.scheme} URL")
        try:
            await asyncio.to_thread(self._guard.check_url, str(url))
            if self._proxy is not None or literal_address(url.host) is not None:
                return self._direct.build_request("GET", url)
            address = await asyncio.to_thread(self._guard.address_for, url.host)
        except AddressRefused as err:
            raise FetchError(err.reason, str(err)) from None
        except OSError as err:
            raise FetchError(Reason.FAILED, f"cobalt's redirect: {err}") from None
        request = self._direct.build_request(
            "GET", url.copy_with(host=address), headers={"Host": url.netloc.decode("ascii")}
        )
        request.extensions["sni_hostname"] = url.host
        return request

    async def _save(self, response: httpx.Response, path: Path, quota: _Quota) -> str:
        """Stream the body into `path` within the quota; the media type it was sent as."""
        _check_status(response.status_code)
        announced = response.headers.get("content-length", "")
        if announced.isdigit() and quota.used + int(announced) > quota.max_bytes:
            raise FetchError(Reason.TOO_LARGE, f"{announced} bytes announced")
        size = 0
        with path.open("wb") as out:
            async for piece in response.aiter_bytes(_PIECE):
                quota.take(len(piece))
                size += len(piece)
                out.write(piece)
        if size == 0:
            raise FetchError(Reason.FAILED, "cobalt sent an empty file", FailureKind.SERVER_ERROR)
        return str(response.headers.get("content-type", "")).split(";")[0].strip().lower()


def _check_status(status: int) -> None:
    """cobalt passes the upstream's status through its tunnels (stream/proxy.js)."""
    if status == 200:
        return
    if status in (403, 429):
        raise FetchError(Reason.BLOCKED, f"media answered {status}", FailureKind.BLOCKED_IP)
    if status >= 500:
        raise FetchError(Reason.FAILED, f"media answered {status}", FailureKind.SERVER_ERROR)
    raise FetchError(Reason.FAILED, f"media answered {status}")


def _parse(url: str) -> httpx.URL:
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise FetchError(Reason.FAILED, "cobalt answered an invalid URL") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise FetchError(Reason.FAILED, "cobalt answered a URL that is not http(s)")
    return parsed


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _info(link: Link, filename: str, kind: str) -> ClipInfo:
    """Caption facts: cobalt says only the author's handle, in its file name."""
    author, clip_id = "", link.clip_id or ""
    found = _FILENAME.fullmatch(filename)
    if found and found[1] != "undefined" and (not clip_id or found[2] == clip_id):
        author, clip_id = found[1], found[2]
    url = f"https://www.tiktok.com/@{author}/{kind}/{clip_id}" if author else link.url
    return ClipInfo(
        clip_id=clip_id, author=author, nickname=author, description="", webpage_url=url
    )


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(16)


def _image_suffix(path: Path) -> str:
    head = _head(path)
    if head.startswith(b"\x89PNG"):
        return ".png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return ".webp"
    return ".jpg"


def _audio_suffix(path: Path) -> str:
    """ffmpeg-rendered tunnels send no Content-Type: tell the format by its first bytes."""
    head = _head(path)
    if head[4:8] == b"ftyp":
        return ".m4a"
    if head.startswith(b"OggS"):
        return ".ogg"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return ".wav"
    return ".mp3"


def _remove(paths: list[Path]) -> None:
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)
