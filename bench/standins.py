"""The TikTok stand-in in a process of its own, for benchmarks that time at the process boundary.

`TikTokProcess` starts it (multiprocessing, spawn) serving the given posts and short links,
tells its proxy URL, and at the end hands back what the stand-in saw, on its clock
(time.monotonic(), which every process on one Linux machine shares): when each page, media and
short-link request arrived and when each media body had been sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import re
from dataclasses import dataclass
from multiprocessing.connection import Connection
from types import TracebackType
from typing import Self

from tests.standins.clips import Clip
from tests.standins.tiktok import TikTokStandIn

_PAGE = re.compile(r"/@[^/]+/video/(\d+)")
_MEDIA = re.compile(r"/video/tos/([^/]+)/")


@dataclass(frozen=True)
class Seen:
    """One request the stand-in answered: its kind (page, media, short), the post id (the short
    code for a short link) and when it arrived."""

    kind: str
    key: str
    at: float


@dataclass(frozen=True)
class Timeline:
    requests: list[Seen]
    media_sent: list[tuple[str, float]]  # (post id, when its whole body had been sent)

    def first(self, kind: str, key: str) -> float | None:
        return min((seen.at for seen in self.requests if (seen.kind, seen.key) == (kind, key)),
                   default=None)  # fmt: skip

    def sent(self, post: str) -> float | None:
        return min((at for p, at in self.media_sent if p == post), default=None)


def _serve(
    conn: Connection, videos: list[tuple[str, Clip]], short_links: list[tuple[str, str]]
) -> None:
    asyncio.run(_run(conn, videos, short_links))


async def _run(
    conn: Connection, videos: list[tuple[str, Clip]], short_links: list[tuple[str, str]]
) -> None:
    async with TikTokStandIn() as tiktok:
        token_to_post: dict[str, str] = {}
        for post, clip in videos:
            tiktok.add_video(post, clip, author="bench")
            for url in tiktok.media_urls(post):
                if match := _MEDIA.search(url):
                    token_to_post[match.group(1)] = post
        for code, path in short_links:
            tiktok.add_short_link(code, path)
        conn.send(tiktok.proxy_url)
        loop = asyncio.get_running_loop()
        while (command := await loop.run_in_executor(None, conn.recv)) != "stop":
            if command == "timeline":
                seen: list[Seen] = []
                for request in tiktok.requests:
                    if request.host == tiktok.CDN_HOST and (m := _MEDIA.fullmatch(request.path)):
                        seen.append(Seen("media", token_to_post.get(m.group(1), "?"), request.at))
                    elif request.host in tiktok.SHORT_HOSTS:
                        seen.append(Seen("short", request.path.strip("/"), request.at))
                    elif m := _PAGE.fullmatch(request.path):
                        seen.append(Seen("page", m.group(1), request.at))
                conn.send(Timeline(seen, list(tiktok.media_sent_at)))


class TikTokProcess:
    """`async with TikTokProcess(videos, short_links) as tiktok:` then `tiktok.proxy_url`."""

    def __init__(self, videos: list[tuple[str, Clip]], short_links: list[tuple[str, str]]) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(child, videos, short_links), name="tiktok-standin", daemon=True
        )
        self.proxy_url = ""

    @property
    def pid(self) -> int | None:
        return self._process.pid

    async def timeline(self) -> Timeline:
        self._conn.send("timeline")
        timeline: Timeline = await asyncio.to_thread(self._conn.recv)
        return timeline

    async def __aenter__(self) -> Self:
        self._process.start()
        self.proxy_url = await asyncio.wait_for(asyncio.to_thread(self._conn.recv), 60)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        with contextlib.suppress(OSError):
            self._conn.send("stop")
        await asyncio.to_thread(self._process.join, 10)
        if self._process.is_alive():
            self._process.terminate()
            await asyncio.to_thread(self._process.join, 5)
