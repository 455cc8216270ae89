"""The Service with in-memory ports: a store that fails costs a download, never the answer."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.links import Link
from bot.model import (
    Album,
    CachedMedia,
    CacheKey,
    ClipInfo,
    Media,
    Origin,
    PlatformFile,
    Reason,
    StaleHandle,
    VideoRequest,
)
from bot.service import Service
from bot.sites import SiteCatalog
from bot.stores.sqlite_cache import SqliteCache

URL = "https://www.tiktok.com/@a/video/7301234567890123456"
INFO = ClipInfo(
    clip_id="7301234567890123456", author="a", nickname="A", description="", webpage_url=URL
)


@dataclass(frozen=True)
class ChatOrigin:
    chat: int
    platform: str = "test"


class SameLink:
    async def resolve(self, link: Link) -> Link:
        return link


class OneClip:
    """A pipeline that writes a small file and counts its fetches."""

    variant = "test"

    def __init__(self) -> None:
        self.fetches = 0

    async def prepare(self, link: Link, budget_bytes: int, workdir: Path) -> Media | Album:
        self.fetches += 1
        path = workdir / "clip.mp4"
        path.write_bytes(b"v" * 10)
        return Media(path=path, width=2, height=2, duration=1.0, size=10, thumbnail=None, info=INFO)


class Recording:
    """A Replier that writes down every answer; `deliver` gives a Telegram-like file id."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, object]] = []

    async def working(self, origin: Origin) -> None:
        return None

    async def deliver(self, origin: Origin, media: Media) -> str | None:
        self.answers.append(("deliver", media.info.clip_id))
        return "file-id"

    async def resend(self, origin: Origin, cached: CachedMedia) -> None:
        self.answers.append(("resend", cached.handle))

    async def deliver_album(self, origin: Origin, album: Album) -> None:
        self.answers.append(("album", album.info.clip_id))

    async def fail(self, origin: Origin, reason: Reason) -> None:
        self.answers.append(("fail", reason))


class BrokenCache:
    """A clip cache whose backend is down."""

    async def get(self, key: CacheKey) -> CachedMedia | None:
        raise ConnectionError("cache down")

    async def put(self, key: CacheKey, media: CachedMedia) -> None:
        raise ConnectionError("cache down")

    async def forget(self, key: CacheKey) -> None:
        raise ConnectionError("cache down")

    async def close(self) -> None:
        return None


class BrokenFlights:
    """A single-flight whose backend is down."""

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        raise ConnectionError("locks down")
        yield  # pragma: no cover


class LostFlights:
    """A single-flight whose backend goes down while the job holds the clip."""

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        yield
        raise ConnectionError("locks down")


def request(n: int = 1) -> VideoRequest:
    links = tuple(SiteCatalog(["TikTok"]).find(URL))
    return VideoRequest(links=links, origin=ChatOrigin(n), budget_bytes=1_000)


async def test_a_cache_that_is_down_costs_a_download_not_a_second_answer(tmp_path: Path) -> None:
    replier = Recording()
    pipeline = OneClip()
    service = Service(
        resolver=SameLink(),
        pipeline=pipeline,
        repliers={"test": replier},
        cache=BrokenCache(),
        work_root=tmp_path,
    )
    await service.process(request())
    assert replier.answers == [("deliver", INFO.clip_id)]
    assert pipeline.fetches == 1
    await service.drain()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("flights", [BrokenFlights, LostFlights])
async def test_a_single_flight_that_is_down_costs_no_answer(
    tmp_path: Path, flights: type[BrokenFlights | LostFlights]
) -> None:
    replier = Recording()
    service = Service(
        resolver=SameLink(),
        pipeline=OneClip(),
        repliers={"test": replier},
        single_flight=flights(),
        work_root=tmp_path,
    )
    await service.process(request())
    assert replier.answers == [("deliver", INFO.clip_id)]
    await service.drain()
    assert list(tmp_path.iterdir()) == []


async def test_a_clip_delivered_once_is_resent_by_its_platform_file(tmp_path: Path) -> None:
    replier = Recording()
    pipeline = OneClip()
    cache = await SqliteCache.open(tmp_path / "cache.sqlite3", max_age_s=60)
    try:
        service = Service(
            resolver=SameLink(),
            pipeline=pipeline,
            repliers={"test": replier},
            cache=cache,
            work_root=tmp_path,
        )
        await service.process(request(1))
        await service.process(request(2))
    finally:
        await cache.close()
    assert replier.answers == [("deliver", INFO.clip_id), ("resend", PlatformFile("file-id"))]
    assert pipeline.fetches == 1


class StaleCache(BrokenCache):
    """A cache that finds a handle the platform no longer takes, and cannot drop it."""

    async def get(self, key: CacheKey) -> CachedMedia | None:
        return CachedMedia(
            handle=PlatformFile("stale"),
            width=2,
            height=2,
            duration=1.0,
            size=10,
            caption='{"clip_id": "1", "author": "", "nickname": "", "description": "",'
            ' "webpage_url": ""}',
            stored_at=0.0,
        )


class RefusesResends(Recording):
    async def resend(self, origin: Origin, cached: CachedMedia) -> None:
        raise StaleHandle("wrong file identifier")


async def test_a_refused_handle_the_cache_cannot_drop_costs_a_download(tmp_path: Path) -> None:
    replier = RefusesResends()
    pipeline = OneClip()
    service = Service(
        resolver=SameLink(),
        pipeline=pipeline,
        repliers={"test": replier},
        cache=StaleCache(),
        work_root=tmp_path,
    )
    await service.process(request())
    assert replier.answers == [("deliver", INFO.clip_id)]
    assert pipeline.fetches == 1
