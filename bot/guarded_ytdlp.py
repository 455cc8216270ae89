"""yt-dlp's requests through the SSRF guard (bot.netguard): `GuardedYoutubeDL`.

How yt-dlp is hooked (2026.10.26). `YoutubeDL.urlopen` hands every request (pages, APIs,
media, HLS/DASH fragments: the native downloaders all call `urlopen`) to the `RequestDirector`
that `YoutubeDL.build_request_director` builds, and that method is the supported seam: we
override it on our own subclass, so nothing is registered in yt-dlp's global handler registry
(`register_rh`, `register_preference` would change every YoutubeDL in the process).
Redirects are followed inside the request handlers, out of the director's sight: urllib's opener,
requests' `Session.resolve_redirects`, and libcurl (curl_cffi), which gives no hook between hops
at all. So a vetted request goes to a second director holding only a requests handler whose
session carries a response hook: requests calls it on every response, redirects included,
before it sends the next hop, and the hook refuses the `Location` there.
ffmpeg and rtmpdump connect on their own, past the director: a vetted job refuses formats whose
protocol would go to them, and the ffmpeg that yt-dlp's HLS downloader calls in for playlists it
cannot handle gets `-protocol_whitelist file,crypto,data`, so it opens no network input.
Requests of TikTok jobs skip all this: their hosts come from TikTok's page, not from the user.

A job's proxy is set per job on the YoutubeDL and put on each request by the director. Without a
proxy, the vetted handler's connections go to the very address the guard vetted (its urllib3
pools resolve through the guard).
"""

from __future__ import annotations

import contextlib
import functools
import socket
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urljoin

import urllib3
import urllib3.connection
import yt_dlp
from curl_cffi.curl import CurlError, CurlShare
from curl_cffi.requests import Session as CurlSession
from urllib3.exceptions import NameResolutionError

# yt-dlp exports no public name for its handler classes; requests comes with yt-dlp[default],
# curl_cffi with yt-dlp[curl-cffi].
from yt_dlp.networking._curlcffi import CurlCFFIRH
from yt_dlp.networking._requests import RequestsRH
from yt_dlp.networking.common import RequestDirector
from yt_dlp.networking.exceptions import RequestError
from yt_dlp.utils import determine_protocol

from bot.links import parse_link
from bot.model import Reason
from bot.netguard import AddressRefused, HostGuard

T = TypeVar("T")

# Protocols whose every request yt-dlp makes itself, through `urlopen`.
_NATIVE_PROTOCOLS = frozenset({"http", "https", "m3u8_native", "http_dash_segments"})


class RequestRefused(RequestError):  # type: ignore[misc]
    """The guard's refusal (`AddressRefused`) as yt-dlp's networking knows a failed request."""

    def __init__(self, refused: AddressRefused) -> None:
        super().__init__(str(refused))
        self.reason = refused.reason


def _refusing(check: Callable[[str], T], target: str) -> T:
    """`check(target)`, a HostGuard method, with its refusal as yt-dlp's request error."""
    try:
        return check(target)
    except AddressRefused as err:
        raise RequestRefused(err) from None


class _VettingRequestsRH(RequestsRH):  # type: ignore[misc]
    """yt-dlp's requests handler whose sessions vet each redirect target before following it."""

    def __init__(self, *args: Any, guard: HostGuard, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._guard = guard

    def _create_instance(self, *args: Any, **kwargs: Any) -> Any:
        session = super()._create_instance(*args, **kwargs)
        session.hooks["response"].append(self._vet_redirect)
        # Direct connections only: connections to DOWNLOAD_PROXY come from its own managers.
        session.get_adapter("https://").poolmanager.pool_classes_by_scheme = _pinned_pools(
            self._guard
        )
        return session

    def _vet_redirect(self, response: Any, *_args: Any, **_kwargs: Any) -> Any:
        if response.is_redirect:
            try:
                _refusing(
                    self._guard.check_url, urljoin(response.url, response.headers["location"])
                )
            except RequestRefused:
                response.close()
                raise
        return response


def _pinned_pools(guard: HostGuard) -> dict[str, type[urllib3.HTTPConnectionPool]]:
    """urllib3 pools whose connections go to the address the guard vetted, not to a second
    lookup of the name (TLS still names the host, for SNI and the certificate)."""

    class PinnedHTTPConnection(urllib3.connection.HTTPConnection):
        def _new_conn(self) -> socket.socket:
            name = self._dns_host
            try:
                address = _refusing(guard.address_for, name)
            except OSError as err:
                raise NameResolutionError(self.host, self, socket.gaierror(str(err))) from err
            self._dns_host = address
            try:
                return super()._new_conn()
            finally:
                self._dns_host = name

    class PinnedHTTPSConnection(PinnedHTTPConnection, urllib3.connection.HTTPSConnection):
        pass

    class PinnedHTTPPool(urllib3.HTTPConnectionPool):
        ConnectionCls = PinnedHTTPConnection

    class PinnedHTTPSPool(urllib3.HTTPSConnectionPool):
        ConnectionCls = PinnedHTTPSConnection

    return {"http": PinnedHTTPPool, "https": PinnedHTTPSPool}


class _PooledCurlCFFIRH(CurlCFFIRH):  # type: ignore[misc]
    """yt-dlp's curl_cffi handler (the impersonating one: TikTok's pages), keeping its
    connections between requests. yt-dlp streams every response, and curl_cffi streams on a
    copy of the session's handle that is thrown away after the response, taking its connection
    (CONNECT through the proxy, then a TLS handshake: ~3 ms a page, more in a burst) with it;
    a share handle holds the connection cache for the copies. The share's connections serve one
    thread's requests one after another (a YoutubeDL is used by one thread), as libcurl
    requires; a connection is only reused for the same proxy and TLS (impersonation) setup."""

    RH_KEY = CurlCFFIRH.RH_KEY

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sessions: list[tuple[CurlSession[Any], CurlShare]] = []

    def _create_instance(self, cookiejar: Any = None) -> CurlSession[Any]:
        share = CurlShare(connect=True)
        session: CurlSession[Any] = CurlSession(
            cookies=cookiejar, curl_share=share, use_thread_local_curl=False
        )
        self._sessions.append((session, share))
        return session

    def close(self) -> None:
        super().close()
        self._clear_instances()
        for session, share in self._sessions:
            session.close()
            # A response still being read holds the share; it closes with its last handle.
            with contextlib.suppress(CurlError):
                share.close()
        self._sessions.clear()


class _GuardedDirector(RequestDirector):  # type: ignore[misc]
    """yt-dlp's director, plus a vetted path for the requests of jobs that are not TikTok's."""

    def __init__(
        self, plain: RequestDirector, vetted: RequestDirector, ydl: GuardedYoutubeDL
    ) -> None:
        super().__init__(logger=plain.logger, verbose=plain.verbose)
        self.handlers = plain.handlers
        self.preferences = plain.preferences
        self._vetted = vetted
        self._ydl = ydl

    def send(self, request: Any) -> Any:
        # The job's proxy, per request: handlers take `request.proxies or self.proxies`, so one
        # YoutubeDL serves jobs through different proxies (yt-dlp's own per-request proxies,
        # from the Ytdl-request-proxy header, stay as they are).
        if self._ydl.proxy and not request.proxies:
            request.proxies = {"all": self._ydl.proxy}
        if not self._ydl.vet_requests:
            return super().send(request)
        _refusing(self._ydl.guard.check_url, request.url)
        return self._vetted.send(request)

    def close(self) -> None:
        super().close()
        self._vetted.close()


class GuardedYoutubeDL(yt_dlp.YoutubeDL):  # type: ignore[misc]
    """A YoutubeDL whose requests pass the guard while `vet_requests` is set, and go through
    `proxy` when it is set (one job at a time: a YoutubeDL is used by one thread)."""

    def __init__(self, params: dict[str, Any], *, guard: HostGuard) -> None:
        self.guard = guard
        self.vet_requests = True
        self.proxy: str | None = None
        super().__init__(params)

    def build_request_director(self, handlers: Any, preferences: Any = None) -> Any:
        handlers = [_PooledCurlCFFIRH if h is CurlCFFIRH else h for h in handlers]
        plain = super().build_request_director(handlers, preferences)
        vetted = super().build_request_director(
            [functools.partial(_VettingRequestsRH, guard=self.guard)], preferences
        )
        return _GuardedDirector(plain, vetted, self)

    def process_info(self, info_dict: dict[str, Any]) -> Any:
        """Refuse, in a vetted job, media that yt-dlp would hand to ffmpeg or rtmpdump: those
        connect on their own, past the director."""
        if self.vet_requests:
            if info_dict.get("is_live"):
                raise RequestRefused(
                    AddressRefused(
                        str(info_dict.get("webpage_url", "")), "a live stream", Reason.NOT_A_VIDEO
                    )
                )
            for fmt in info_dict.get("requested_formats") or [info_dict]:
                protocol = determine_protocol(fmt)
                if protocol not in _NATIVE_PROTOCOLS:
                    raise RequestRefused(
                        AddressRefused(
                            str(fmt.get("url", ""))[:100],
                            f"{protocol} media",
                            Reason.UNSUPPORTED_SITE,
                        )
                    )
        return super().process_info(info_dict)

    def vet_for(self, url: str) -> None:
        """Vet the requests of the job for `url`, unless it is a TikTok link."""
        self.vet_requests = parse_link(url) is None
        # yt-dlp's HLS downloader hands playlists it cannot handle to ffmpeg mid-download; in a
        # vetted job that ffmpeg may open local files only, no network input.
        self.params["external_downloader_args"] = (
            {"ffmpeg_i": ["-protocol_whitelist", "file,crypto,data"]} if self.vet_requests else {}
        )
