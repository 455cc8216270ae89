"""PTB's HTTP client for the Bot API, on aiohttp (already loaded for the webhook and /metrics).

PTB's own HTTPXRequest goes through httpx, httpcore, anyio and h11: on this machine kind a small
call costs it ~710 µs of CPU against ~230 µs here, a 1.1 MB upload ~3070 against ~740 µs
(`python -m bench.bot_api_client`), and before each request httpcore asks every idle connection
whether the server closed it, two system calls each. Each cached clip costs two calls
(getUpdates and sendVideo), and each new one three.

An upload is one body of our own (`MultipartUpload`): the fields and part headers rendered at
once, and the file read on the loop in pieces of `PIECE_BYTES`, so a 1 MB video is five socket
writes. A write lets go of the GIL, and when download threads are busy, getting it back can take
a switch interval (5 ms): in bench.boundary's burst of 20 new clips, httpx's fifty writes per
upload made the first uploads take 160-220 ms from sendVideo's start to the Bot API having it.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import ssl
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Mapping
from typing import IO, Any

import aiohttp
import certifi
from telegram._utils.defaultvalue import DefaultValue
from telegram._utils.types import ODVInput
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

PIECE_BYTES = 256 * 1024


class NotSent(Exception):
    """Why a call failed before it went out whole: the Bot API cannot have acted on it (the
    `__cause__` of PTB's error, for adapters.telegram.outbound.core_error)."""


class MayHaveArrived(Exception):
    """Why a call failed once the Bot API may have had it whole (PTB's error's `__cause__`)."""


# Failures before the request reached the server: no connection, or none free in time.
_NOT_CONNECTED = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)


def _given(value: ODVInput[float], default: float | None) -> float | None:
    """A timeout PTB passed on, or ours when it passed its "not given" marker."""
    return default if isinstance(value, DefaultValue) else value


def _quoted(text: str) -> str:
    """A name or file name in a part's header, as browsers (and httpx) write it."""
    return text.replace("\\", "\\\\").replace('"', "%22").replace("\r", "%0D").replace("\n", "%0A")


def _left(file: IO[bytes]) -> int:
    """Bytes from the file's position to its end."""
    at = file.tell()
    try:
        end = os.fstat(file.fileno()).st_size
    except (AttributeError, OSError, ValueError):
        end = file.seek(0, os.SEEK_END)
        file.seek(at)
    return max(0, end - at)


class MultipartUpload(aiohttp.Payload):
    """A multipart/form-data body: `fields` (name -> text) and `files` (name -> (file name,
    bytes or a binary file read from its position, MIME type)), written in pieces of at least
    `piece_bytes` (the last may be smaller), each within `write_timeout` seconds."""

    def __init__(
        self,
        fields: Mapping[str, str],
        files: Mapping[str, tuple[str | None, bytes | IO[bytes], str | None]],
        *,
        write_timeout: float | None,
        piece_bytes: int = PIECE_BYTES,
    ) -> None:
        boundary = secrets.token_hex(16)
        segments: list[bytes | IO[bytes]] = []
        size = 0
        for name, value in fields.items():
            head = f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"'
            segments.append(f"{head}\r\n\r\n{value}\r\n".encode())
        for name, (filename, content, mime) in files.items():
            head = f'--{boundary}\r\nContent-Disposition: form-data; name="{_quoted(name)}"'
            if filename is not None:
                head += f'; filename="{_quoted(filename)}"'
            head += f"\r\nContent-Type: {mime or 'application/octet-stream'}\r\n\r\n"
            segments += [head.encode(), content, b"\r\n"]
        segments.append(f"--{boundary}--\r\n".encode())
        for segment in segments:
            size += len(segment) if isinstance(segment, bytes) else _left(segment)
        super().__init__(None, content_type=f"multipart/form-data; boundary={boundary}")
        self._segments = segments
        self._size = size
        self._write_timeout = write_timeout
        self._piece_bytes = piece_bytes
        # Every byte handed to the connection: from here on the Bot API may act on the call.
        self.written = False

    async def pieces(self) -> AsyncIterator[bytes]:
        """The body, in the pieces `write` hands to the connection."""
        pending: list[bytes] = []
        size = 0
        for segment in self._segments:
            while True:
                part = (
                    segment
                    if isinstance(segment, bytes)
                    else segment.read(max(1, self._piece_bytes - size))
                )
                if part:
                    pending.append(part)
                    size += len(part)
                if size >= self._piece_bytes:
                    yield b"".join(pending)
                    pending.clear()
                    size = 0
                if isinstance(segment, bytes) or not part:
                    break
        if pending:
            yield b"".join(pending)

    async def write(self, writer: Any) -> None:
        async for piece in self.pieces():
            async with asyncio.timeout(self._write_timeout):
                await writer.write(piece)
        self.written = True

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        raise TypeError("an upload is not text")


class AiohttpRequest(BaseRequest):
    """PTB's `BaseRequest` on one aiohttp session; a timeout is PTB's `TimedOut`, any other
    failure of the connection its `NetworkError`, as with HTTPXRequest, caused by `NotSent`
    when the call cannot have reached the Bot API whole."""

    def __init__(
        self,
        *,
        connections: int,
        connect_timeout: float | None,
        read_timeout: float | None,
        write_timeout: float | None,
        pool_timeout: float | None,
    ) -> None:
        self._connections = connections
        self._connect_timeout = connect_timeout
        self._read_timeout = read_timeout
        self._write_timeout = write_timeout
        self._pool_timeout = pool_timeout
        self._session: aiohttp.ClientSession | None = None
        self._proxies: dict[tuple[str, str], str | None] = {}

    @property
    def read_timeout(self) -> float | None:
        return self._read_timeout

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            # As PTB's httpx client did: certifi's roots unless SSL_CERT_FILE names others.
            tls = ssl.create_default_context(
                cafile=os.environ.get("SSL_CERT_FILE") or certifi.where()
            )
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._connections, limit_per_host=0, ssl=tls),
                headers={"User-Agent": self.USER_AGENT},
            )

    async def shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        write_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        connect_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
        pool_timeout: ODVInput[float] = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        session = self._session
        if session is None or session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        read_s = _given(read_timeout, self._read_timeout)
        write_s = _given(write_timeout, self._write_timeout)
        connect_s = _given(connect_timeout, self._connect_timeout)
        pool_s = _given(pool_timeout, self._pool_timeout)
        data: MultipartUpload | dict[str, str] | None = None
        if request_data is not None:
            data = (
                MultipartUpload(
                    request_data.json_parameters,
                    request_data.multipart_data,
                    write_timeout=write_s,
                )
                if request_data.contains_files
                else request_data.json_parameters
            )
        timeout = aiohttp.ClientTimeout(
            # aiohttp's `connect` covers the wait for a free connection and the connecting.
            connect=None if pool_s is None or connect_s is None else pool_s + connect_s,
            sock_connect=connect_s,
            # From the body's last byte on, as httpx's read timeout.
            sock_read=read_s,
        )
        try:
            async with session.request(
                method, url, data=data, timeout=timeout, proxy=self._proxy_for(url)
            ) as response:
                return response.status, await response.read()
        except (TimeoutError, aiohttp.ClientError) as err:
            # Some of aiohttp's errors name the URL, and its path holds the bot's token: the
            # error is told in words without it, and not chained (a traceback would show it).
            path = urllib.parse.urlsplit(url).path
            what = f"aiohttp.{type(err).__name__}: {str(err).replace(path, '/...')}"
            not_sent = isinstance(err, _NOT_CONNECTED) or (
                isinstance(data, MultipartUpload) and not data.written
            )
            cause = NotSent(what) if not_sent else MayHaveArrived(what)
            if isinstance(err, TimeoutError):
                raise TimedOut(f"Timed out ({what})") from cause
            raise NetworkError(what) from cause

    def _proxy_for(self, url: str) -> str | None:
        """The proxy HTTPS_PROXY and its kin (NO_PROXY too) name for `url`, as httpx honoured
        them for PTB; read once per host. aiohttp's own `trust_env` reads them, and ~/.netrc,
        on every call: ~440 µs of CPU each (bench.bot_api_client)."""
        parts = urllib.parse.urlsplit(url)
        where = (parts.scheme, parts.hostname or "")
        if where not in self._proxies:
            proxies = urllib.request.getproxies_environment()
            bypass = not where[1] or bool(urllib.request.proxy_bypass(where[1]))
            self._proxies[where] = None if bypass else proxies.get(where[0]) or proxies.get("all")
        return self._proxies[where]
