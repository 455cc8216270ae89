"""The clip cache: what was already delivered, so a repeated link costs one lookup and one send.

`SqliteCache` maps a clip (per platform and variant) to a reusable handle such as a Telegram
file_id. `DiskMediaCache` keeps the files themselves for platforms that have no reusable handle
(Discord), capped in size and evicting the least recently used.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiosqlite

from bot.model import CachedMedia

# Schema migrations in order; the database records how many ran in PRAGMA user_version.
# Append new scripts, never edit a released one.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE cached_media (
        platform  TEXT NOT NULL,
        clip_id   TEXT NOT NULL,
        variant   TEXT NOT NULL,
        handle    TEXT NOT NULL,
        width     INTEGER NOT NULL,
        height    INTEGER NOT NULL,
        duration  REAL NOT NULL,
        size      INTEGER NOT NULL,
        caption   TEXT NOT NULL,
        stored_at REAL NOT NULL,
        PRIMARY KEY (platform, clip_id, variant)
    );
    """,
)

_MEDIA_NAME = re.compile(r"[0-9a-f]{64}")
_TEMP_PREFIX = ".tmp-"
# A temporary file this old is left over from a crash, not a copy in progress.
_STALE_TEMP_S = 3600.0


@dataclass(frozen=True, slots=True)
class CacheKey:
    """One deliverable form of a clip on one platform.

    `variant` names whatever changes the delivered bytes (e.g. "budget=50000000" or
    "slideshow=album"), so a clip fitted to a small budget is not reused where a larger one fits.
    """

    platform: str
    clip_id: str
    variant: str

    def text(self) -> str:
        """An unambiguous one-string form, whatever characters the parts hold."""
        return json.dumps([self.platform, self.clip_id, self.variant], separators=(",", ":"))


class SqliteCache:
    """Handles in one SQLite file (WAL); one connection, which aiosqlite serialises."""

    def __init__(
        self,
        db: aiosqlite.Connection,
        *,
        max_age_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Use `open`; this only wraps a connection whose schema is already current."""
        if max_age_s <= 0:
            raise ValueError(f"max_age_s must be positive, got {max_age_s}")
        self._db = db
        self._max_age_s = max_age_s
        self._clock = clock

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        max_age_s: float,
        clock: Callable[[], float] = time.time,
        migrations: Sequence[str] = MIGRATIONS,
    ) -> SqliteCache:
        """Open (or create, private to this user) the database and bring its schema up to date."""
        await asyncio.to_thread(create_private_file, path)
        db = await aiosqlite.connect(path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode = WAL")
            # WAL with NORMAL cannot corrupt; a power cut may lose the last entries of a cache.
            await db.execute("PRAGMA synchronous = NORMAL")
            await _migrate(db, migrations)
            cache = cls(db, max_age_s=max_age_s, clock=clock)
            await cache.prune()
        except BaseException:
            await db.close()
            raise
        return cache

    async def get(self, key: CacheKey) -> CachedMedia | None:
        """The stored media, or None when missing or older than max_age_s (then it is deleted)."""
        async with self._db.execute(
            "SELECT handle, width, height, duration, size, caption, stored_at"
            " FROM cached_media WHERE platform = ? AND clip_id = ? AND variant = ?",
            (key.platform, key.clip_id, key.variant),
        ) as cursor:
            row = await cursor.fetchone()
        if row is None:
            return None
        media = CachedMedia(
            handle=row[0],
            width=row[1],
            height=row[2],
            duration=row[3],
            size=row[4],
            caption=row[5],
            stored_at=row[6],
        )
        cutoff = self._clock() - self._max_age_s
        if media.stored_at >= cutoff:
            return media
        # The age condition spares a fresh entry put by another coroutine since the select.
        await self._db.execute(
            "DELETE FROM cached_media"
            " WHERE platform = ? AND clip_id = ? AND variant = ? AND stored_at < ?",
            (key.platform, key.clip_id, key.variant, cutoff),
        )
        return None

    async def put(self, key: CacheKey, media: CachedMedia) -> None:
        """Store the media for the key, replacing what was there."""
        await self._db.execute(
            "INSERT INTO cached_media"
            " (platform, clip_id, variant, handle, width, height, duration, size, caption,"
            " stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (platform, clip_id, variant) DO UPDATE SET"
            " handle = excluded.handle, width = excluded.width, height = excluded.height,"
            " duration = excluded.duration, size = excluded.size, caption = excluded.caption,"
            " stored_at = excluded.stored_at",
            (
                key.platform,
                key.clip_id,
                key.variant,
                media.handle,
                media.width,
                media.height,
                media.duration,
                media.size,
                media.caption,
                media.stored_at,
            ),
        )

    async def forget(self, key: CacheKey) -> None:
        """Drop the entry, e.g. when the platform refused its stored file_id."""
        await self._db.execute(
            "DELETE FROM cached_media WHERE platform = ? AND clip_id = ? AND variant = ?",
            (key.platform, key.clip_id, key.variant),
        )

    async def prune(self) -> int:
        """Delete every expired entry and return how many; `get` alone never sees unasked keys."""
        async with self._db.execute(
            "DELETE FROM cached_media WHERE stored_at < ?", (self._clock() - self._max_age_s,)
        ) as cursor:
            return cursor.rowcount

    async def close(self) -> None:
        """Close the connection; safe to call twice."""
        await self._db.close()


async def _migrate(db: aiosqlite.Connection, migrations: Sequence[str]) -> None:
    """Run the scripts the database has not seen, each in its own transaction with its version.

    The version is read again under the write lock, so two processes opening one new file do
    not both run a script.
    """
    if await _user_version(db) == len(migrations):
        return
    for version, script in enumerate(migrations, start=1):
        await db.execute("BEGIN IMMEDIATE")
        try:
            current = await _user_version(db)
            if current > len(migrations):
                raise RuntimeError(
                    f"cache database schema is version {current}, newer than this code knows"
                    f" ({len(migrations)}); use a newer Reshare or another DATA_DIR"
                )
            if current < version:
                for statement in _statements(script):
                    await db.execute(statement)
                await db.execute(f"PRAGMA user_version = {version:d}")
            await db.execute("COMMIT")
        except BaseException:
            await db.execute("ROLLBACK")
            raise


async def _user_version(db: aiosqlite.Connection) -> int:
    async with db.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


def _statements(script: str) -> list[str]:
    """Split a script into statements, since executescript would commit our transaction.

    sqlite3.complete_statement knows about quotes, comments and trigger bodies.
    """
    pieces = script.split(";")
    statements: list[str] = []
    pending = ""
    for piece in pieces[:-1]:
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            statements.append(pending)
            pending = ""
    tail = pending + pieces[-1]
    if tail.strip():
        statements.append(tail + "\n;")
    return statements


def create_private_file(path: Path) -> None:
    """Create the database file 0600 in a 0700 directory; SQLite would use the umask."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))


class DiskMediaCache:
    """Files for re-upload, capped at max_bytes; the directory itself is the index.

    A file's mtime is its last use (by `clock`), so the LRU order survives restarts. Names
    are a hash of the key, never text from the network. Methods block: run them in a thread.
    Several threads (or processes) may store at once.
    """

    def __init__(
        self, directory: Path, *, max_bytes: int, clock: Callable[[], float] = time.time
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._directory = directory
        self._max_bytes = max_bytes
        self._clock = clock
        self._evicting = threading.Lock()
        self._remove_stale_temps()

    def path_for(self, key: CacheKey) -> Path | None:
        """The stored file, marked as just used, or None.

        A concurrent `store` may evict it: open it promptly and treat FileNotFoundError as a miss.
        """
        path = self._directory / _media_name(key)
        try:
            self._touch(path)
        except FileNotFoundError:
            return None
        return path

    def store(self, key: CacheKey, source: Path) -> Path:
        """Keep a copy of source under the key and return the kept file.

        A file larger than max_bytes is not kept: source itself is returned, so the caller can
        always send the returned path. The copy may be a hard link, so the source must not be
        rewritten in place afterwards (deleting it is fine).
        """
        if source.stat().st_size > self._max_bytes:
            return source
        target = self._directory / _media_name(key)
        temp = self._directory / f"{_TEMP_PREFIX}{secrets.token_hex(8)}"
        try:
            try:
                os.link(source, temp)
            except OSError:
                shutil.copyfile(source, temp)
            self._touch(temp)
            os.replace(temp, target)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        self._evict(keep=target)
        return target

    def total_bytes(self) -> int:
        return sum(size for _, _, size in self._entries())

    def _touch(self, path: Path) -> None:
        now = self._clock()
        os.utime(path, (now, now))

    def _evict(self, keep: Path) -> None:
        """Delete least recently used files until the total fits; never the one just stored."""
        with self._evicting:
            entries = sorted(self._entries())
            total = sum(size for _, _, size in entries)
            for _, path, size in entries:
                if total <= self._max_bytes:
                    return
                if path != keep:
                    path.unlink(missing_ok=True)
                    total -= size

    def _entries(self) -> list[tuple[int, Path, int]]:
        """(mtime in ns, path, size) of every stored file; foreign files are not ours to count."""
        entries: list[tuple[int, Path, int]] = []
        with os.scandir(self._directory) as scan:
            for entry in scan:
                if not _MEDIA_NAME.fullmatch(entry.name):
                    continue
                try:
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                entries.append((stat.st_mtime_ns, Path(entry.path), stat.st_size))
        return entries

    def _remove_stale_temps(self) -> None:
        # ctime, not mtime: a fresh hard link keeps its source's old mtime until it is touched.
        cutoff = self._clock() - _STALE_TEMP_S
        with os.scandir(self._directory) as scan:
            for entry in scan:
                if not entry.name.startswith(_TEMP_PREFIX):
                    continue
                try:
                    if entry.stat(follow_symlinks=False).st_ctime < cutoff:
                        os.unlink(entry.path)
                except FileNotFoundError:
                    continue


def _media_name(key: CacheKey) -> str:
    return hashlib.sha256(key.text().encode()).hexdigest()
