"""An httpx transport that hands a large request body to the socket in large pieces.

httpx sends a multipart upload as it renders it: a piece for every field's header and value
and 64 KiB of the file at a time, about fifty for a 1 MB video. Each piece is a socket write
by the event loop, and a write lets go of the GIL: when download threads are busy, getting it
back can take a switch interval (5 ms). In bench.boundary's burst of 20 new clips on 2 cores,
the first uploads took 160-220 ms from sendVideo's start to the Bot API having read it; joined
into pieces of `PIECE_BYTES` (five writes for 1 MB), 40-55 ms.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx

PIECE_BYTES = 256 * 1024


class CoalescedStream(httpx.AsyncByteStream):
    """`stream` in pieces of at least `piece_bytes` (the last may be smaller), one copy each."""

    def __init__(self, stream: httpx.AsyncByteStream, piece_bytes: int = PIECE_BYTES) -> None:
        self._stream = stream
        self._piece_bytes = piece_bytes

    async def __aiter__(self) -> AsyncIterator[bytes]:
        pending: list[bytes] = []
        size = 0
        async for part in self._stream:
            pending.append(part)
            size += len(part)
            if size >= self._piece_bytes:
                yield b"".join(pending)
                pending.clear()
                size = 0
        if pending:
            yield b"".join(pending)

    async def aclose(self) -> None:
        await self._stream.aclose()


class CoalescingTransport(httpx.AsyncBaseTransport):
    """`inner`, with every request body of more than `piece_bytes` sent as `CoalescedStream`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, piece_bytes: int = PIECE_BYTES) -> None:
        self._inner = inner
        self._piece_bytes = piece_bytes

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        length = request.headers.get("content-length")
        if (
            length is not None
            and int(length) > self._piece_bytes
            and isinstance(request.stream, httpx.AsyncByteStream)
        ):
            request.stream = CoalescedStream(request.stream, self._piece_bytes)
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()
