"""The bot's Bot API client (adapters.telegram.request, on aiohttp) against PTB's own HTTPXRequest.

Run: .venv/bin/python -m bench.bot_api_client
Prints: the CPU this process spends per call (user + system) and the wall time per call, for
small calls (sendChatAction's form) and for uploads of a 1.1 MB video (sendVideo's multipart, the
file read as it is sent), both clients through PTB's `BaseRequest.post`, in alternating rounds,
against a local aiohttp server in a process of its own that reads each body whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from telegram import InputFile
from telegram.request import BaseRequest, HTTPXRequest, RequestData
from telegram.request._requestparameter import RequestParameter

from adapters.telegram.request import PIECE_BYTES, AiohttpRequest
from bench.boundary import free_port

SMALL_CALLS = 1000
UPLOADS = 100
ROUNDS = 3
VIDEO_BYTES = 1_100_000


def serve(port: int) -> None:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.json_response({"ok": True, "result": True})

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/{tail:.*}", answer)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def small_call() -> RequestData:
    return RequestData(
        [
            RequestParameter.from_input("chat_id", 100001),
            RequestParameter.from_input("action", "upload_video"),
        ]
    )


def upload_call(video: Path, files: contextlib.ExitStack) -> RequestData:
    handle = files.enter_context(video.open("rb", buffering=PIECE_BYTES))
    return RequestData(
        [
            RequestParameter.from_input("chat_id", 100001),
            RequestParameter.from_input("caption", "@author https://www.tiktok.com/@a/video/1"),
            RequestParameter.from_input("width", 720),
            RequestParameter.from_input("height", 1280),
            RequestParameter.from_input(
                "video", InputFile(handle, filename="clip.mp4", read_file_handle=False)
            ),
        ]
    )


async def per_call(
    client: BaseRequest, url: str, calls: int, data: Callable[[contextlib.ExitStack], RequestData]
) -> tuple[float, float]:
    """(CPU µs, wall µs) per call."""
    cpu, wall = cpu_s(), time.perf_counter()
    for _ in range(calls):
        with contextlib.ExitStack() as files:
            await client.post(url, data(files))
    return (cpu_s() - cpu) / calls * 1e6, (time.perf_counter() - wall) / calls * 1e6


async def run(port: int, video: Path) -> None:
    base = f"http://127.0.0.1:{port}/botTOKEN"
    clients: dict[str, BaseRequest] = {
        "aiohttp (the bot's)": AiohttpRequest(
            connections=8,
            connect_timeout=5.0,
            read_timeout=5.0,
            write_timeout=5.0,
            pool_timeout=5.0,
        ),
        "httpx (PTB's)": HTTPXRequest(connection_pool_size=8),
    }
    kinds: dict[str, tuple[str, int, Callable[[contextlib.ExitStack], RequestData]]] = {
        "small call": ("sendChatAction", SMALL_CALLS, lambda _files: small_call()),
        "1.1 MB upload": ("sendVideo", UPLOADS, lambda files: upload_call(video, files)),
    }
    results: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for client in clients.values():
        await client.initialize()
        for method, _, data in kinds.values():  # warm: connections open, code paths run
            for _ in range(20):
                with contextlib.ExitStack() as files:
                    await client.post(f"{base}/{method}", data(files))
    for _ in range(ROUNDS):
        for name, client in clients.items():
            for kind, (method, calls, data) in kinds.items():
                got = await per_call(client, f"{base}/{method}", calls, data)
                results.setdefault((kind, name), []).append(got)
    for client in clients.values():
        await client.shutdown()
    print(f"{'':34s}{'CPU per call':>18s}{'wall per call':>18s}   (median of {ROUNDS} rounds)")
    for (kind, name), rounds in results.items():
        cpu = statistics.median(r[0] for r in rounds)
        wall = statistics.median(r[1] for r in rounds)
        print(f"{kind + ', ' + name:34s}{cpu:15.0f} us{wall:15.0f} us")


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--serve":
        serve(int(sys.argv[2]))
        return
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    port = free_port()
    with tempfile.TemporaryDirectory() as work:
        video = Path(work) / "clip.mp4"
        video.write_bytes(os.urandom(VIDEO_BYTES))
        server = subprocess.Popen(
            [sys.executable, "-m", "bench.bot_api_client", "--serve", str(port)]
        )
        try:
            asyncio.run(wait_for_port(port))
            asyncio.run(run(port, video))
        finally:
            server.terminate()
            server.wait()


async def wait_for_port(port: int) -> None:
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise RuntimeError("the server did not start")


if __name__ == "__main__":
    main()
