"""The Bot API client on aiohttp: uploads arrive whole and go out in large pieces, small calls
as forms, and every way a call can fail is PTB's TimedOut or NetworkError, as with httpx."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable
from email.parser import BytesParser
from email.policy import HTTP
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from telegram import InputFile
from telegram.error import NetworkError, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from adapters.telegram.outbound import core_error
from adapters.telegram.request import PIECE_BYTES, AiohttpRequest, MultipartUpload
from bot.retry import Unavailable, Unconfirmed

CAPTION = '@author ☺ "quoted"\nsecond line'


def upload_data(
    video: Path, stack: contextlib.ExitStack, filename: str = "clip.mp4"
) -> RequestData:
    """sendVideo's parameters as PTB makes them: small fields and a file handle."""
    handle = stack.enter_context(video.open("rb"))
    return RequestData(
        [
            RequestParameter.from_input("chat_id", 5),
            RequestParameter.from_input("caption", CAPTION),
            RequestParameter.from_input("width", 720),
            RequestParameter.from_input(
                "video", InputFile(handle, filename=filename, read_file_handle=False)
            ),
        ]
    )


def new_client(**timeouts: float) -> AiohttpRequest:
    settings: dict[str, float | None] = {
        "connect_timeout": 5.0,
        "read_timeout": 5.0,
        "write_timeout": 5.0,
        "pool_timeout": 5.0,
    }
    settings.update(timeouts)
    return AiohttpRequest(connections=4, **settings)


@pytest.fixture
async def client() -> AsyncIterator[AiohttpRequest]:
    request = new_client()
    await request.initialize()
    try:
        yield request
    finally:
        await request.shutdown()


@pytest.mark.parametrize("size", [0, 1, PIECE_BYTES - 1, PIECE_BYTES, 3 * PIECE_BYTES + 17])
async def test_an_upload_is_written_in_pieces_of_at_least_the_piece_size(
    tmp_path: Path, size: int
) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(os.urandom(size))
    with contextlib.ExitStack() as stack:
        data = upload_data(video, stack)
        body = MultipartUpload(data.json_parameters, data.multipart_data, write_timeout=None)
        pieces = [piece async for piece in body.pieces()]

    assert sum(map(len, pieces)) == body.size
    assert all(len(piece) >= PIECE_BYTES for piece in pieces[:-1])
    assert len(pieces) == body.size // PIECE_BYTES + (body.size % PIECE_BYTES > 0)
    assert video.read_bytes() in b"".join(pieces)


async def serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.AppRunner:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def url_of(runner: web.AppRunner, method: str = "sendVideo") -> str:
    return f"http://127.0.0.1:{runner.addresses[0][1]}/botT/{method}"


@pytest.fixture
async def receiver() -> AsyncIterator[web.AppRunner]:
    """The Bot API's side of an upload: the file's SHA-256, the fields, the body's length."""

    async def take(request: web.Request) -> web.Response:
        raw = await request.read()
        result: dict[str, Any] = {
            "length": len(raw),
            "declared": request.content_length,
            "fields": {},
            "user_agent": request.headers.get("User-Agent", ""),
            "host": request.host,
        }
        if request.content_type == "multipart/form-data":
            # The standard library's MIME parser, not aiohttp's: a second opinion on the body.
            head = f"Content-Type: {request.headers['Content-Type']}\r\n\r\n".encode()
            message = BytesParser(policy=HTTP).parsebytes(head + raw)
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                content = part.get_payload(decode=True)
                assert isinstance(content, bytes)
                if part.get_filename() is None:
                    result["fields"][name] = content.decode()
                else:
                    result["sha256"] = hashlib.sha256(content).hexdigest()
                    result["filename"] = part.get_filename()
                    result["type"] = part.get_content_type()
        else:
            result["fields"] = dict(await request.post())
        return web.json_response({"ok": True, "result": result})

    runner = await serve(take)
    try:
        yield runner
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("size", [10_000, 5 * PIECE_BYTES + 3])
async def test_an_upload_arrives_intact(
    tmp_path: Path, receiver: web.AppRunner, client: AiohttpRequest, size: int
) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(os.urandom(size))
    for _ in range(2):  # the second over the kept connection
        with contextlib.ExitStack() as stack:
            got = await client.post(url_of(receiver), upload_data(video, stack, 'a "b".mp4'))
        assert isinstance(got, dict)
        assert got["sha256"] == hashlib.sha256(video.read_bytes()).hexdigest()
        assert got["length"] == got["declared"]
        assert got["fields"] == {"chat_id": "5", "caption": CAPTION, "width": "720"}
        assert got["filename"] == "a %22b%22.mp4"
        assert got["type"] == "video/mp4"
        assert "python-telegram-bot" in got["user_agent"]


def small_call() -> RequestData:
    return RequestData(
        [
            RequestParameter.from_input("chat_id", 5),
            RequestParameter.from_input("action", "upload_video"),
            RequestParameter.from_input("reply_parameters", {"message_id": 7}),
        ]
    )


async def test_a_call_without_files_is_a_form(
    receiver: web.AppRunner, client: AiohttpRequest
) -> None:
    got = await client.post(url_of(receiver, "sendChatAction"), small_call())
    assert isinstance(got, dict)
    assert got["fields"] == {
        "chat_id": "5",
        "action": "upload_video",
        "reply_parameters": '{"message_id": 7}',
    }
    assert got["length"] == got["declared"]


async def test_an_answer_slower_than_the_read_timeout_is_timed_out() -> None:
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.json_response({"ok": True, "result": True})

    runner = await serve(slow)
    request = new_client(read_timeout=0.2)
    await request.initialize()
    try:
        with pytest.raises(TimedOut):
            await request.post(url_of(runner), RequestData([]))
        # A call may say how long it waits: PTB's long poll does.
        with pytest.raises(TimedOut):
            await request.post(url_of(runner), RequestData([]), read_timeout=0.1)
    finally:
        await request.shutdown()
        await runner.cleanup()


@contextlib.asynccontextmanager
async def raw_server(
    on_connection: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    """A TCP server below HTTP, for the failures a proper server never shows."""
    writers: list[asyncio.StreamWriter] = []

    async def connected(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await on_connection(reader, writer)

    server = await asyncio.start_server(connected, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        # A token in the path, as the Bot API's URLs have (errors must not show it).
        yield f"http://127.0.0.1:{port}/bot123:SECRET/sendVideo"
    finally:
        server.close()
        for writer in writers:
            writer.close()
        await server.wait_closed()


async def test_a_connection_closed_without_an_answer_is_a_network_error(
    client: AiohttpRequest,
) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async with raw_server(hang_up) as url:
        with pytest.raises(NetworkError) as caught:
            await client.post(url, RequestData([]))
    assert not isinstance(caught.value, TimedOut)
    assert "aiohttp." in caught.value.message


async def test_nobody_listening_is_a_network_error(client: AiohttpRequest) -> None:
    async with raw_server(lambda reader, writer: asyncio.sleep(0)) as url:
        pass  # closed again: its port now refuses
    with pytest.raises(NetworkError) as caught:
        await client.post(url, RequestData([]))
    assert not isinstance(caught.value, TimedOut)


async def test_an_upload_nobody_reads_is_timed_out_after_the_write_timeout(
    tmp_path: Path,
) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0" * (64 * 1024 * 1024))  # more than the sockets' buffers hold
    taken = asyncio.Event()

    async def never_read(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        taken.set()
        await asyncio.sleep(30)

    request = new_client(write_timeout=0.3, read_timeout=30.0)
    await request.initialize()
    try:
        async with raw_server(never_read) as url:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with contextlib.ExitStack() as stack, pytest.raises(TimedOut):
                await request.post(url, upload_data(video, stack))
            assert taken.is_set()
            assert loop.time() - started < 10
    finally:
        await request.shutdown()


async def test_a_client_not_initialized_or_shut_down_refuses_and_comes_back(
    receiver: web.AppRunner,
) -> None:
    request = new_client()
    with pytest.raises(RuntimeError):
        await request.do_request(url_of(receiver), "POST")
    await request.initialize()
    assert request.read_timeout == 5.0
    assert isinstance(await request.post(url_of(receiver), RequestData([])), dict)
    await request.shutdown()
    with pytest.raises(RuntimeError):
        await request.do_request(url_of(receiver), "POST")
    await request.initialize()
    try:
        assert isinstance(await request.post(url_of(receiver), RequestData([])), dict)
    finally:
        await request.shutdown()


async def test_each_failure_tells_whether_the_bot_api_may_have_acted(tmp_path: Path) -> None:
    """What bot.retry may send again: only a call that cannot have reached the Bot API whole."""
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"\0" * (64 * 1024 * 1024))

    async def caught(url: str, data: RequestData, request: AiohttpRequest) -> Exception:
        await request.initialize()
        try:
            with pytest.raises(NetworkError) as raised:
                await request.post(url, data)
        finally:
            await request.shutdown()
        # The token is in the URL's path: no word of the error may carry it.
        assert "SECRET" not in "".join(traceback.format_exception(raised.value))
        return core_error(raised.value)

    async def answer_late(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 2x0 Nope\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()

    async def cut_off(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readexactly(1024 * 1024)
        writer.transport.abort()  # a reset, the upload half written

    async with raw_server(answer_late) as gone:
        pass
    # Nobody listening.
    assert isinstance(await caught(gone, RequestData([]), new_client()), Unavailable)
    with contextlib.ExitStack() as stack:
        async with raw_server(answer_late) as url:
            # An upload nobody reads: the body never went out whole.
            quick_write = new_client(write_timeout=0.3, read_timeout=30.0)
            assert isinstance(
                await caught(url, upload_data(video, stack), quick_write), Unavailable
            )
            # Asked in full, never answered.
            quick_read = new_client(read_timeout=0.3)
            assert isinstance(await caught(url, RequestData([]), quick_read), Unconfirmed)
            # The one connection busy: the second call waits for it in vain.
            single = AiohttpRequest(
                connections=1,
                connect_timeout=5.0,
                read_timeout=30.0,
                write_timeout=5.0,
                pool_timeout=0.3,
            )
            await single.initialize()
            first = asyncio.create_task(single.post(url, RequestData([])))
            await asyncio.sleep(0.1)
            try:
                with pytest.raises(TimedOut) as pool:
                    await single.post(url, RequestData([]))
                assert isinstance(core_error(pool.value), Unavailable)
            finally:
                first.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await first
                await single.shutdown()
        async with raw_server(hang_up) as url:
            # Asked in full, then the connection closed: it may have been acted on.
            assert isinstance(await caught(url, RequestData([]), new_client()), Unconfirmed)
        async with raw_server(cut_off) as url:
            # The connection reset under an upload: never whole.
            assert isinstance(
                await caught(url, upload_data(video, stack), new_client()), Unavailable
            )
        async with raw_server(garbage) as url:
            # An answer that is no HTTP (aiohttp's error names the URL, token and all).
            assert isinstance(await caught(url, RequestData([]), new_client()), Unconfirmed)


@pytest.fixture
def clean_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    return monkeypatch


async def test_the_environment_proxy_carries_the_calls(
    receiver: web.AppRunner, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    # The receiver stands in for a forward proxy: aiohttp routes an absolute-form request by
    # its path and reports the host it was meant for.
    clean_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{receiver.addresses[0][1]}")
    request = new_client()
    await request.initialize()
    try:
        got = await request.post("http://bot-api.invalid/botT/sendChatAction", small_call())
    finally:
        await request.shutdown()
    assert isinstance(got, dict)
    assert got["host"] == "bot-api.invalid"


async def test_no_proxy_keeps_a_host_off_the_proxy(
    receiver: web.AppRunner, clean_proxy_env: pytest.MonkeyPatch
) -> None:
    async with raw_server(lambda reader, writer: asyncio.sleep(0)) as gone:
        pass  # a proxy nobody answers for: only a bypassed call goes through
    clean_proxy_env.setenv("HTTP_PROXY", gone.removesuffix("/bot123:SECRET/sendVideo"))
    clean_proxy_env.setenv("NO_PROXY", "127.0.0.1")
    request = new_client()
    await request.initialize()
    try:
        got = await request.post(url_of(receiver, "sendChatAction"), small_call())
    finally:
        await request.shutdown()
    assert isinstance(got, dict)
    assert got["host"].startswith("127.0.0.1")
