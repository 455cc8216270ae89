"""Unit tests of the embedded stores: the SQLite clip cache (bot.stores.sqlite_cache) and the
size-capped media directory (bot.stores.media_files)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest

from bot.model import CachedMedia, CacheKey, PlatformFile, StoredFile
from bot.stores.media_files import FileMediaStore
from bot.stores.sqlite_cache import MIGRATIONS, SqliteCache

CLIP = "tiktok:7301234567890123456"
KEY = CacheKey(platform="telegram", clip_id=CLIP, variant="budget=50000000")
MEDIA = CachedMedia(
    handle=PlatformFile("BAACAgIAAxkBAAIB"),
    width=720,
    height=1280,
    duration=12.5,
    size=3_456_789,
    caption="a caption — with ünïcode",
    stored_at=1_000.0,
)
MAX_AGE_S = 60.0


class FakeClock:
    """A clock that moves only when a test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MEDIA.stored_at)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "cache.sqlite3"


@pytest.fixture
async def cache(db_path: Path, clock: FakeClock) -> AsyncIterator[SqliteCache]:
    opened = await SqliteCache.open(db_path, max_age_s=MAX_AGE_S, clock=clock)
    yield opened
    await opened.close()


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Read the database file directly, as another process would."""
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


# SqliteCache


async def test_put_then_get_returns_the_same_media(cache: SqliteCache) -> None:
    await cache.put(KEY, MEDIA)
    assert await cache.get(KEY) == MEDIA


async def test_get_of_an_unknown_key_is_none(cache: SqliteCache) -> None:
    assert await cache.get(KEY) is None


async def test_every_part_of_the_key_tells_entries_apart(cache: SqliteCache) -> None:
    others = (
        replace(KEY, platform="discord"),
        replace(KEY, clip_id="tiktok:1"),
        replace(KEY, variant="budget=10485760"),
    )
    await cache.put(KEY, MEDIA)
    for n, other in enumerate(others):
        await cache.put(other, replace(MEDIA, handle=PlatformFile(f"other-{n}")))
    assert await cache.get(KEY) == MEDIA
    for n, other in enumerate(others):
        found = await cache.get(other)
        assert found is not None
        assert found.handle == PlatformFile(f"other-{n}")


async def test_put_replaces_the_entry(cache: SqliteCache) -> None:
    await cache.put(KEY, MEDIA)
    newer = replace(MEDIA, handle=PlatformFile("second"), caption="new", size=1, stored_at=1_010.0)
    await cache.put(KEY, newer)
    assert await cache.get(KEY) == newer


async def test_album_handles_are_stored_as_given(cache: SqliteCache) -> None:
    album = replace(MEDIA, handle=PlatformFile('["id-1","id-2","id-3"]'))
    await cache.put(replace(KEY, variant="slideshow=album"), album)
    assert await cache.get(replace(KEY, variant="slideshow=album")) == album


async def test_stored_and_platform_handles_keep_their_kind(cache: SqliteCache) -> None:
    # The same text under each kind: the kind is stored, not guessed from the text.
    stored = replace(MEDIA, handle=StoredFile("BAACAgIAAxkBAAIB"))
    await cache.put(replace(KEY, platform="discord"), stored)
    await cache.put(KEY, MEDIA)
    assert await cache.get(replace(KEY, platform="discord")) == stored
    assert await cache.get(KEY) == MEDIA


async def test_handles_written_by_the_first_schema_read_back_typed(
    db_path: Path, clock: FakeClock
) -> None:
    first = await SqliteCache.open(
        db_path, max_age_s=MAX_AGE_S, clock=clock, migrations=MIGRATIONS[:1]
    )
    await first.close()
    assert query(db_path, "PRAGMA user_version") == [(1,)]
    name = "ab" * 32
    with sqlite3.connect(db_path) as db:
        db.executemany(
            "INSERT INTO cached_media (platform, clip_id, variant, handle, width, height,"
            " duration, size, caption, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    platform,
                    CLIP,
                    KEY.variant,
                    handle,
                    MEDIA.width,
                    MEDIA.height,
                    MEDIA.duration,
                    MEDIA.size,
                    MEDIA.caption,
                    MEDIA.stored_at,
                )
                for platform, handle in (
                    ("telegram", "platform:BAACAgIAAxkBAAIB"),
                    ("discord", f"disk:{name}"),
                    # A file id that happens to hold the other prefix keeps it.
                    ("other", "platform:disk:x"),
                )
            ],
        )
    db.close()
    cache = await SqliteCache.open(db_path, max_age_s=MAX_AGE_S, clock=clock)
    try:
        assert await cache.get(KEY) == replace(MEDIA, handle=PlatformFile("BAACAgIAAxkBAAIB"))
        assert await cache.get(replace(KEY, platform="discord")) == replace(
            MEDIA, handle=StoredFile(name)
        )
        assert await cache.get(replace(KEY, platform="other")) == replace(
            MEDIA, handle=PlatformFile("disk:x")
        )
    finally:
        await cache.close()
    assert query(db_path, "PRAGMA user_version") == [(len(MIGRATIONS),)]


async def test_entries_survive_close_and_reopen(db_path: Path, clock: FakeClock) -> None:
    first = await SqliteCache.open(db_path, max_age_s=MAX_AGE_S, clock=clock)
    await first.put(KEY, MEDIA)
    await first.close()
    second = await SqliteCache.open(db_path, max_age_s=MAX_AGE_S, clock=clock)
    try:
        assert await second.get(KEY) == MEDIA
    finally:
        await second.close()


async def test_entries_expire_after_max_age(
    cache: SqliteCache, db_path: Path, clock: FakeClock
) -> None:
    await cache.put(KEY, MEDIA)
    clock.now = MEDIA.stored_at + MAX_AGE_S
    assert await cache.get(KEY) == MEDIA
    clock.now += 0.5
    assert await cache.get(KEY) is None
    # Deleted, not only hidden: winding the clock back does not bring it back.
    clock.now = MEDIA.stored_at
    assert await cache.get(KEY) is None
    assert query(db_path, "SELECT count(*) FROM cached_media") == [(0,)]


async def test_open_prunes_expired_entries(db_path: Path, clock: FakeClock) -> None:
    first = await SqliteCache.open(db_path, max_age_s=MAX_AGE_S, clock=clock)
    await first.put(KEY, MEDIA)
    await first.put(replace(KEY, clip_id="tiktok:2"), replace(MEDIA, stored_at=1_050.0))
    await first.close()
    clock.now = 1_100.0
    second = await SqliteCache.open(db_path, max_age_s=MAX_AGE_S, clock=clock)
    await second.close()
    assert query(db_path, "SELECT clip_id FROM cached_media") == [("tiktok:2",)]


async def test_forget_removes_the_entry(cache: SqliteCache) -> None:
    await cache.put(KEY, MEDIA)
    await cache.forget(KEY)
    assert await cache.get(KEY) is None
    await cache.forget(KEY)


async def test_schema_version_is_recorded(cache: SqliteCache, db_path: Path) -> None:
    assert query(db_path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert query(db_path, "PRAGMA journal_mode") == [("wal",)]


async def test_reopening_runs_only_migrations_the_database_has_not_seen(
    db_path: Path, clock: FakeClock
) -> None:
    first = await SqliteCache.open(db_path, max_age_s=MAX_AGE_S, clock=clock)
    await first.put(KEY, MEDIA)
    await first.close()
    assert query(db_path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    # Re-running the released ones would fail (plain CREATE TABLE, ADD COLUMN); re-running the
    # new last one would add a row.
    migrations = (
        *MIGRATIONS,
        """
        CREATE TABLE opened (n INTEGER NOT NULL);  -- a comment; with a semicolon
        INSERT INTO opened (n) VALUES (1);
        CREATE TRIGGER no_updates BEFORE UPDATE ON opened BEGIN
            SELECT raise(ABORT, 'read only; really');
        END;
        """,
    )
    for _ in range(3):
        cache = await SqliteCache.open(
            db_path, max_age_s=MAX_AGE_S, clock=clock, migrations=migrations
        )
        assert await cache.get(KEY) == MEDIA
        await cache.close()
    assert query(db_path, "PRAGMA user_version") == [(len(MIGRATIONS) + 1,)]
    assert query(db_path, "SELECT n FROM opened") == [(1,)]


async def test_a_failing_migration_leaves_no_trace(db_path: Path, clock: FakeClock) -> None:
    await (await SqliteCache.open(db_path, max_age_s=MAX_AGE_S, clock=clock)).close()
    broken = (*MIGRATIONS, "CREATE TABLE half (n INTEGER); INSERT INTO missing VALUES (1);")
    with pytest.raises(sqlite3.OperationalError, match="missing"):
        await SqliteCache.open(db_path, max_age_s=MAX_AGE_S, clock=clock, migrations=broken)
    assert query(db_path, "PRAGMA user_version") == [(len(MIGRATIONS),)]
    assert query(db_path, "SELECT name FROM sqlite_master WHERE name = 'half'") == []


async def test_a_database_newer_than_the_code_is_refused(db_path: Path, clock: FakeClock) -> None:
    newer = (*MIGRATIONS, "CREATE TABLE later (n INTEGER);")
    await (
        await SqliteCache.open(db_path, max_age_s=MAX_AGE_S, clock=clock, migrations=newer)
    ).close()
    with pytest.raises(RuntimeError, match="newer than this code knows"):
        await SqliteCache.open(db_path, max_age_s=MAX_AGE_S, clock=clock)


async def test_database_is_private_to_its_user(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "new" / "nested" / "cache.sqlite3"
    cache = await SqliteCache.open(path, max_age_s=MAX_AGE_S, clock=clock)
    try:
        await cache.put(KEY, MEDIA)
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        for name in (path.name, f"{path.name}-wal", f"{path.name}-shm"):
            assert stat.S_IMODE((path.parent / name).stat().st_mode) == 0o600, name
    finally:
        await cache.close()


async def test_concurrent_coroutines_share_one_cache(cache: SqliteCache) -> None:
    keys = [replace(KEY, clip_id=f"tiktok:{n}") for n in range(200)]

    async def put_then_get(n: int, key: CacheKey) -> CachedMedia | None:
        await cache.put(key, replace(MEDIA, handle=PlatformFile(f"h{n}")))
        # Everyone also hammers one shared key.
        await cache.put(KEY, replace(MEDIA, handle=PlatformFile(f"shared{n}")))
        await cache.get(KEY)
        return await cache.get(key)

    found = await asyncio.gather(*(put_then_get(n, key) for n, key in enumerate(keys)))
    assert [media.handle if media else None for media in found] == [
        PlatformFile(f"h{n}") for n in range(200)
    ]
    shared = await cache.get(KEY)
    assert shared is not None
    assert isinstance(shared.handle, PlatformFile)
    assert shared.handle.file_id.startswith("shared")


async def test_max_age_must_be_positive(db_path: Path) -> None:
    with pytest.raises(ValueError, match="max_age_s"):
        await SqliteCache.open(db_path, max_age_s=0)


# FileMediaStore


def write(path: Path, size: int, fill: bytes = b"x") -> Path:
    path.write_bytes(fill * size)
    return path


def keyed(n: int) -> CacheKey:
    return CacheKey(platform="discord", clip_id=f"tiktok:{n}", variant="budget=10485760")


def test_store_then_find(tmp_path: Path) -> None:
    media = FileMediaStore(tmp_path / "media", max_bytes=1_000)
    source = write(tmp_path / "clip.mp4", 100, b"v")
    stored = media.store(KEY, source)
    assert stored.parent == tmp_path / "media"
    assert media.path_for(KEY) == stored
    assert stored.read_bytes() == b"v" * 100
    assert source.exists()
    assert media.total_bytes() == 100


def test_stored_file_outlives_its_source(tmp_path: Path) -> None:
    media = FileMediaStore(tmp_path / "media", max_bytes=1_000)
    source = write(tmp_path / "clip.mp4", 10)
    stored = media.store(KEY, source)
    source.unlink()
    assert stored.read_bytes() == b"x" * 10


def test_unknown_key_is_not_found(tmp_path: Path) -> None:
    media = FileMediaStore(tmp_path / "media", max_bytes=1_000)
    assert media.path_for(KEY) is None
    assert media.total_bytes() == 0


def test_storing_a_key_again_replaces_its_file(tmp_path: Path) -> None:
    media = FileMediaStore(tmp_path / "media", max_bytes=1_000)
    media.store(KEY, write(tmp_path / "a", 100, b"a"))
    stored = media.store(KEY, write(tmp_path / "b", 50, b"b"))
    assert stored.read_bytes() == b"b" * 50
    assert media.total_bytes() == 50


def test_least_recently_used_files_are_evicted_first(tmp_path: Path) -> None:
    media = FileMediaStore(tmp_path / "media", max_bytes=300)
    stored = [media.store(keyed(n), write(tmp_path / f"s{n}", 100)) for n in range(3)]
    # Last used: 1 long ago, then 0, then 2.
    for path, used_at in zip(stored, (2_000, 1_000, 3_000), strict=True):
        os.utime(path, (used_at, used_at))
    stored.append(media.store(keyed(3), write(tmp_path / "s3", 100)))
    assert [path.exists() for path in stored] == [True, False, True, True]
    assert media.total_bytes() == 300
    # Finding 0 makes it recent, so 2 is now the least recently used.
    assert media.path_for(keyed(0)) == stored[0]
    stored.append(media.store(keyed(4), write(tmp_path / "s4", 100)))
    assert [path.exists() for path in stored] == [True, False, False, True, True]
    assert media.total_bytes() == 300


def test_finding_a_file_marks_it_used(tmp_path: Path) -> None:
    clock = FakeClock(5_000.0)
    media = FileMediaStore(tmp_path / "media", max_bytes=1_000, clock=clock)
    stored = media.store(KEY, write(tmp_path / "s", 10))
    assert stored.stat().st_mtime == 5_000.0
    clock.now = 6_000.0
    assert media.path_for(KEY) == stored
    assert stored.stat().st_mtime == 6_000.0


def test_a_restart_finds_files_and_keeps_their_order(tmp_path: Path) -> None:
    first = FileMediaStore(tmp_path / "media", max_bytes=200)
    older = first.store(keyed(1), write(tmp_path / "s1", 100))
    newer = first.store(keyed(2), write(tmp_path / "s2", 100))
    os.utime(older, (1_000, 1_000))
    os.utime(newer, (2_000, 2_000))
    second = FileMediaStore(tmp_path / "media", max_bytes=200)
    assert second.total_bytes() == 200
    second.store(keyed(3), write(tmp_path / "s3", 100))
    assert second.path_for(keyed(1)) is None
    assert second.path_for(keyed(2)) == newer


def test_file_names_are_hashes_not_clip_text(tmp_path: Path) -> None:
    media = FileMediaStore(tmp_path / "media", max_bytes=1_000)
    hostile = CacheKey(platform="discord", clip_id="../../escape", variant="/etc/passwd")
    for key in (KEY, hostile):
        stored = media.store(key, write(tmp_path / "video.mp4", 10))
        assert stored.parent == tmp_path / "media"
        assert len(stored.name) == 64
        assert int(stored.name, 16) >= 0
    names = " ".join(p.name for p in (tmp_path / "media").iterdir())
    for text in ("7301234567890123456", "tiktok", "escape", "passwd", "video", "mp4"):
        assert text not in names
    assert not (tmp_path / "escape").exists()


def test_a_file_larger_than_the_cap_is_not_kept(tmp_path: Path) -> None:
    media = FileMediaStore(tmp_path / "media", max_bytes=100)
    kept = media.store(keyed(1), write(tmp_path / "small", 60))
    big = write(tmp_path / "big.mp4", 101)
    assert media.store(KEY, big) == big
    assert media.path_for(KEY) is None
    assert media.path_for(keyed(1)) == kept
    assert media.total_bytes() == 60


def test_foreign_files_are_neither_counted_nor_evicted(tmp_path: Path) -> None:
    directory = tmp_path / "media"
    directory.mkdir()
    foreign = write(directory / "notes.txt", 500)
    media = FileMediaStore(directory, max_bytes=100)
    media.store(keyed(1), write(tmp_path / "s1", 80))
    media.store(keyed(2), write(tmp_path / "s2", 80))
    assert foreign.exists()
    assert media.total_bytes() == 80


def test_leftover_temporary_files_are_removed_at_start(tmp_path: Path) -> None:
    directory = tmp_path / "media"
    directory.mkdir()
    leftover = write(directory / ".tmp-0123456789abcdef", 10)
    FileMediaStore(directory, max_bytes=100)
    assert leftover.exists()
    FileMediaStore(directory, max_bytes=100, clock=FakeClock(leftover.stat().st_ctime + 3_601))
    assert not leftover.exists()


def test_media_directory_is_private(tmp_path: Path) -> None:
    FileMediaStore(tmp_path / "new" / "media", max_bytes=100)
    assert stat.S_IMODE((tmp_path / "new" / "media").stat().st_mode) == 0o700


def test_threads_storing_at_once_stay_under_the_cap(tmp_path: Path) -> None:
    media = FileMediaStore(tmp_path / "media", max_bytes=1_000)
    sources = [write(tmp_path / f"s{n}", 90 + n % 7) for n in range(7)]

    def store_many(thread: int) -> None:
        for n in range(25):
            key = keyed(thread * 1_000 + n % 15)
            media.store(key, sources[n % 7])
            media.path_for(keyed(n % 15))

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(store_many, range(8)))
    assert 0 < media.total_bytes() <= 1_000
    assert not [p for p in (tmp_path / "media").iterdir() if p.name.startswith(".")]


def test_max_bytes_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_bytes"):
        FileMediaStore(tmp_path / "media", max_bytes=0)


async def test_keep_then_open_gives_the_kept_copy(tmp_path: Path) -> None:
    media = FileMediaStore(tmp_path / "media", max_bytes=1_000)
    source = write(tmp_path / "clip.mp4", 100, b"v")
    stored = await media.keep(KEY, source)
    assert stored is not None
    source.unlink()
    path = await media.open(stored, tmp_path / "job")
    assert path is not None
    assert path.read_bytes() == b"v" * 100
    assert path == media.path_for(KEY)


async def test_keep_of_a_file_larger_than_the_cap_is_none(tmp_path: Path) -> None:
    media = FileMediaStore(tmp_path / "media", max_bytes=100)
    assert await media.keep(KEY, write(tmp_path / "big.mp4", 101)) is None
    assert media.total_bytes() == 0


async def test_open_of_an_evicted_or_foreign_name_is_none(tmp_path: Path) -> None:
    media = FileMediaStore(tmp_path / "media", max_bytes=100)
    first = await media.keep(keyed(1), write(tmp_path / "s1", 80))
    await media.keep(keyed(2), write(tmp_path / "s2", 80))
    assert first is not None
    assert await media.open(first, tmp_path) is None
    write(tmp_path / "media" / "notes.txt", 10)
    for name in ("notes.txt", "../clip.mp4", ""):
        assert await media.open(StoredFile(name), tmp_path) is None
