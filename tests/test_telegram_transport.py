"""The Bot API client's transport: an upload's body goes out in large pieces, byte for byte the
body httpx rendered, and small requests go out as they are."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web

from adapters.telegram.transport import PIECE_BYTES, CoalescedStream, CoalescingTransport


def upload(path: Path, url: str = "http://127.0.0.1/botT/sendVideo") -> httpx.Request:
    """A multipart request as PTB makes one for sendVideo: small fields and a file."""
    return httpx.Request(
        "POST",
        url,
        data={"chat_id": "5", "width": "720", "height": "1280", "caption": "@author ☺"},
        # A file object, as PTB hands over a video: httpx reads it 64 KiB at a time.
        files={"video": ("clip.mp4", io.BytesIO(path.read_bytes()), "video/mp4")},
    )


async def pieces(stream: httpx.AsyncByteStream) -> list[bytes]:
    return [piece async for piece in stream]


@pytest.mark.parametrize("size", [0, 1, PIECE_BYTES - 1, PIECE_BYTES, 3 * PIECE_BYTES + 17])
async def test_a_body_comes_out_whole_in_pieces_of_at_least_the_piece_size(
    tmp_path: Path, size: int
) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(os.urandom(size))
    request = upload(video)
    assert isinstance(request.stream, httpx.AsyncByteStream)
    # httpx renders a multipart body afresh each time, the file read from its start.
    rendered = b"".join(await pieces(request.stream))
    out = await pieces(CoalescedStream(request.stream))

    assert b"".join(out) == rendered
    assert all(len(piece) >= PIECE_BYTES for piece in out[:-1])
    # httpx alone writes the file 64 KiB at a time, with pieces for each field around it.
    assert len(out) <= len(rendered) // PIECE_BYTES + 1


@pytest.fixture
async def receiver() -> AsyncIterator[str]:
    """A server that answers each upload with the SHA-256 of its file and its fields."""

    async def take(request: web.Request) -> web.Response:
        form = await request.post()
        field = form["video"]
        assert isinstance(field, web.FileField)
        return web.json_response(
            {
                "sha256": hashlib.sha256(field.file.read()).hexdigest(),
                "caption": form["caption"],
                "length": request.content_length,
            }
        )

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/botT/sendVideo", take)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/botT/sendVideo"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("size", [10_000, 5 * PIECE_BYTES + 3])
async def test_an_upload_through_the_transport_arrives_intact(
    tmp_path: Path, receiver: str, size: int
) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(os.urandom(size))
    transport = CoalescingTransport(httpx.AsyncHTTPTransport())
    async with httpx.AsyncClient(transport=transport) as client:
        for _ in range(2):  # the second over the kept connection
            request = upload(video, receiver)
            answer = await client.send(request)
            assert answer.status_code == 200
            got = answer.json()
            assert got["sha256"] == hashlib.sha256(video.read_bytes()).hexdigest()
            assert got["caption"] == "@author ☺"
            assert got["length"] == int(request.headers["content-length"])


async def test_a_small_body_is_sent_as_httpx_rendered_it(tmp_path: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"x" * 100)
    request = upload(video)
    rendered = request.stream

    class Recording(httpx.AsyncBaseTransport):
        """Where the request would go to the network: keeps it, answers 200."""

        sent: httpx.Request | None = None

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            self.sent = request
            return httpx.Response(200)

    inner = Recording()
    await CoalescingTransport(inner).handle_async_request(request)
    assert inner.sent is not None
    assert inner.sent.stream is rendered
