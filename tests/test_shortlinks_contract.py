"""The `ShortLinks` contract (where each short link led, kept for good), held against both
implementations: SQLite and Redis (a real redis-server on a free port)."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.ports import ShortLinks
from bot.stores.redis_shortlinks import RedisShortLinks
from bot.stores.sqlite_shortlinks import REMEMBERED, SqliteShortLinks

SHORT = "https://vm.tiktok.com/ZMshort1/"
OTHER_SHORT = "https://vt.tiktok.com/ZMshort1/"
SITE_SHORT = "https://www.tiktok.com/t/ZPshort3/"
POST = "https://www.tiktok.com/@_/video/7301234567890123456"
OTHER_POST = "https://www.tiktok.com/@_/photo/7301234567890123457"


Opener = Callable[..., Awaitable[ShortLinks]]


@pytest.fixture
async def opener(redis: Redis | None, tmp_path: Path) -> AsyncIterator[Opener]:
    """Opens a store (keyword argument: remembered, the memory copy's size) on the same data
    each time, as another process or a restart would; closes all it opened at the end."""
    opened: list[ShortLinks] = []

    async def open_store(remembered: int = REMEMBERED) -> ShortLinks:
        store: ShortLinks
        if redis is None:
            path = tmp_path / "shortlinks.sqlite3"
            store = await SqliteShortLinks.open(path, remembered=remembered)
        else:
            store = RedisShortLinks(redis, remembered=remembered)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()


@pytest.fixture
async def forget_behind(redis: Redis | None, tmp_path: Path) -> Callable[[], Awaitable[None]]:
    """Drops every mapping from the underlying storage, behind the stores' backs."""

    async def forget() -> None:
        if redis is None:
            with sqlite3.connect(tmp_path / "shortlinks.sqlite3") as db:
                db.execute("DELETE FROM short_links")
            db.close()
        else:
            await redis.flushdb()

    return forget


async def test_an_unknown_short_link_is_not_known(opener: Opener) -> None:
    store = await opener()
    assert await store.get(SHORT) is None


async def test_keeps_where_each_short_link_led(opener: Opener) -> None:
    store = await opener()
    await store.put(SHORT, POST)
    await store.put(SITE_SHORT, OTHER_POST)
    assert await store.get(SHORT) == POST
    assert await store.get(SITE_SHORT) == OTHER_POST
    # The key is the whole canonical URL: the same code on another host is another link.
    assert await store.get(OTHER_SHORT) is None


async def test_kept_for_another_process_and_after_a_restart(opener: Opener) -> None:
    first = await opener()
    await first.put(SHORT, POST)
    await first.close()
    assert await (await opener()).get(SHORT) == POST


async def test_a_recent_link_is_read_from_memory_within_the_bound(
    opener: Opener, forget_behind: Callable[[], Awaitable[None]]
) -> None:
    store = await opener(remembered=2)
    await store.put(SHORT, POST)
    await store.put(OTHER_SHORT, POST)
    await store.put(SITE_SHORT, OTHER_POST)
    await forget_behind()
    # The two most recent are in memory; the first one was pushed out of it.
    assert await store.get(SITE_SHORT) == OTHER_POST
    assert await store.get(OTHER_SHORT) == POST
    assert await store.get(SHORT) is None


async def test_a_link_read_from_storage_is_then_in_memory(
    opener: Opener, forget_behind: Callable[[], Awaitable[None]]
) -> None:
    await (await opener()).put(SHORT, POST)
    store = await opener()
    assert await store.get(SHORT) == POST
    await forget_behind()
    assert await store.get(SHORT) == POST


async def test_the_embedded_file_is_private(tmp_path: Path) -> None:
    store = await SqliteShortLinks.open(tmp_path / "data" / "shortlinks.sqlite3")
    await store.close()
    assert (tmp_path / "data" / "shortlinks.sqlite3").stat().st_mode & 0o777 == 0o600
