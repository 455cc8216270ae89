"""The Service with in-memory ports: a store that fails costs a download, never the answer."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.chat_settings import SlideshowMode
from bot.links import Link
from bot.model import (
    Album,
    Audio,
    CachedMedia,
    CacheKey,
    ClipInfo,
    Manner,
    Media,
    Origin,
    PlatformFile,
    Reason,
    StaleHandle,
    VideoRequest,
    Want,
)
from bot.progress import Progress, Reporter
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

    async def recall(self, link: Link) -> Link | None:
        return link


class OneClip:
    """A pipeline that writes a small file and counts its fetches."""

    def __init__(self) -> None:
        self.fetches = 0

    def variant(self, slideshow: SlideshowMode | None = None) -> str:
        return "test"

    async def prepare(
        self,
        link: Link,
        budget_bytes: int,
        workdir: Path,
        slideshow: SlideshowMode | None = None,
        *,
        progress: Reporter | None = None,
    ) -> Media | Album:
        self.fetches += 1
        path = workdir / "clip.mp4"
        path.write_bytes(b"v" * 10)
        return Media(path=path, width=2, height=2, duration=1.0, size=10, thumbnail=None, info=INFO)

    async def sound(
        self,
        link: Link,
        budget_bytes: int,
        workdir: Path,
        *,
        progress: Reporter | None = None,
    ) -> Audio:
        self.fetches += 1
        path = workdir / "sound.m4a"
        path.write_bytes(b"a" * 5)
        return Audio(path=path, duration=1.0, size=5, info=INFO)


class Recording:
    """A Replier that writes down every answer; `deliver` gives a Telegram-like file id."""

    def __init__(self) -> None:
        self.answers: list[tuple[str, object]] = []
        self.statuses: list[Progress] = []
        self.cleared = 0

    async def working(self, origin: Origin) -> None:
        return None

    async def status(self, origin: Origin, progress: Progress, manner: Manner) -> None:
        self.statuses.append(progress)

    async def clear_status(self, origin: Origin, *, earlier: bool = False) -> None:
        self.cleared += 1

    async def deliver(self, origin: Origin, media: Media, manner: Manner) -> str | None:
        self.answers.append(("deliver", media.info.clip_id))
        return "file-id"

    async def resend(self, origin: Origin, cached: CachedMedia, manner: Manner) -> None:
        self.answers.append(("resend", cached.handle))

    async def deliver_audio(self, origin: Origin, audio: Audio, manner: Manner) -> str | None:
        self.answers.append(("audio", audio.info.clip_id))
        return "audio-file-id"

    async def resend_audio(self, origin: Origin, cached: CachedMedia, manner: Manner) -> None:
        self.answers.append(("resend audio", cached.handle))

    async def deliver_album(self, origin: Origin, album: Album, manner: Manner) -> None:
        self.answers.append(("album", album.info.clip_id))

    async def fail(self, origin: Origin, reason: Reason, manner: Manner) -> None:
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


async def test_the_sound_is_sent_once_then_by_its_file_and_kept_apart_from_the_video(
    tmp_path: Path,
) -> None:
    replier = Recording()
    pipeline = OneClip()
    cache = await SqliteCache.open(tmp_path / "cache.sqlite3", max_age_s=60)
    sound = dataclasses.replace(request(1), want=Want.AUDIO)
    try:
        service = Service(
            resolver=SameLink(),
            pipeline=pipeline,
            repliers={"test": replier},
            cache=cache,
            work_root=tmp_path,
        )
        await service.process(sound)
        await service.process(dataclasses.replace(sound, origin=ChatOrigin(2)))
        await service.process(request(3))
    finally:
        await cache.close()
    assert replier.answers == [
        ("audio", INFO.clip_id),
        ("resend audio", PlatformFile("audio-file-id")),
        ("deliver", INFO.clip_id),
    ]
    assert pipeline.fetches == 2


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
    async def resend(self, origin: Origin, cached: CachedMedia, manner: Manner) -> None:
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
