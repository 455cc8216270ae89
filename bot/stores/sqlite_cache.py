"""The embedded clip cache: a clip (per platform and variant) to its handle, in SQLite.

Read and written synchronously on the event loop, as the journal and the short links are: a
lookup by primary key or one small upsert without an fsync (WAL with synchronous=NORMAL) takes
microseconds, less than the hop to a database thread and back; the methods are async only to fit
the port, and none of them suspends.
"""

from __future__ import annotations

import sqlite3
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

from bot.model import CachedMedia, CacheKey, Handle, PlatformFile, StoredFile
from bot.stores.sqlite_files import open_store

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
    # Handles became typed values: the kind in a column of its own, no prefix in the text.
    """
    ALTER TABLE cached_media ADD COLUMN handle_kind TEXT NOT NULL DEFAULT 'platform';
    UPDATE cached_media SET handle_kind = 'stored', handle = substr(handle, 6)
        WHERE handle LIKE 'disk:%';
    UPDATE cached_media SET handle = substr(handle, 10) WHERE handle LIKE 'platform:%';
    """,
)


# Entries of the memory front (about 1 kB each): the clips most recently asked for.
REMEMBERED = 10_000


class SqliteCache:
    """Handles in one SQLite file (WAL), through one connection used on the event loop.

    A bounded memory front holds the entries this process put or read last, so a hit costs no
    database read; what it holds is what the file holds (this process is the one writing), and
    an entry past max_age_s is not served from it either. No method suspends, so nothing can
    come between a read and the memory front it fills."""

    def __init__(
        self,
        db: sqlite3.Connection,
        *,
        max_age_s: float,
        clock: Callable[[], float] = time.time,
        remembered: int = REMEMBERED,
    ) -> None:
        """Use `open`; this only wraps a connection whose schema is already current."""
        if max_age_s <= 0:
            raise ValueError(f"max_age_s must be positive, got {max_age_s}")
        self._db = db
        self._max_age_s = max_age_s
        self._clock = clock
        self._remembered = remembered
        self._recent: OrderedDict[CacheKey, CachedMedia] = OrderedDict()

    def _remember(self, key: CacheKey, media: CachedMedia) -> None:
        self._recent[key] = media
        self._recent.move_to_end(key)
        if len(self._recent) > self._remembered:
            self._recent.popitem(last=False)

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
        db = open_store(path, migrations)
        try:
            cache = cls(db, max_age_s=max_age_s, clock=clock)
            await cache.prune()
        except BaseException:
            db.close()
            raise
        return cache

    async def get(self, key: CacheKey) -> CachedMedia | None:
        """The stored media, or None when missing or older than max_age_s (then it is deleted)."""
        known = self._recent.pop(key, None)
        if known is not None and known.stored_at >= self._clock() - self._max_age_s:
            self._recent[key] = known
            return known
        row = self._db.execute(
            "SELECT handle_kind, handle, width, height, duration, size, caption, stored_at"
            " FROM cached_media WHERE platform = ? AND clip_id = ? AND variant = ?",
            (key.platform, key.clip_id, key.variant),
        ).fetchone()
        if row is None:
            return None
        media = CachedMedia(
            handle=handle_from(row[0], row[1]),
            width=row[2],
            height=row[3],
            duration=row[4],
            size=row[5],
            caption=row[6],
            stored_at=row[7],
        )
        cutoff = self._clock() - self._max_age_s
        if media.stored_at >= cutoff:
            self._remember(key, media)
            return media
        # The age condition spares a fresh entry another process may have put since the select.
        self._db.execute(
            "DELETE FROM cached_media"
            " WHERE platform = ? AND clip_id = ? AND variant = ? AND stored_at < ?",
            (key.platform, key.clip_id, key.variant, cutoff),
        )
        return None

    async def put(self, key: CacheKey, media: CachedMedia) -> None:
        """Store the media for the key, replacing what was there."""
        self._db.execute(
            "INSERT INTO cached_media"
            " (platform, clip_id, variant, handle_kind, handle, width, height, duration, size,"
            " caption, stored_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (platform, clip_id, variant) DO UPDATE SET"
            " handle_kind = excluded.handle_kind, handle = excluded.handle,"
            " width = excluded.width, height = excluded.height,"
            " duration = excluded.duration, size = excluded.size, caption = excluded.caption,"
            " stored_at = excluded.stored_at",
            (
                key.platform,
                key.clip_id,
                key.variant,
                *handle_fields(media.handle),
                media.width,
                media.height,
                media.duration,
                media.size,
                media.caption,
                media.stored_at,
            ),
        )
        self._remember(key, media)

    async def forget(self, key: CacheKey) -> None:
        """Drop the entry, e.g. when the platform refused its stored file_id."""
        self._recent.pop(key, None)
        self._db.execute(
            "DELETE FROM cached_media WHERE platform = ? AND clip_id = ? AND variant = ?",
            (key.platform, key.clip_id, key.variant),
        )

    async def prune(self) -> int:
        """Delete every expired entry and return how many; `get` alone never sees unasked keys."""
        cursor = self._db.execute(
            "DELETE FROM cached_media WHERE stored_at < ?", (self._clock() - self._max_age_s,)
        )
        return cursor.rowcount

    async def close(self) -> None:
        """Close the connection; safe to call twice."""
        self._recent.clear()
        self._db.close()


def handle_fields(handle: Handle) -> tuple[str, str]:
    """The handle as (kind, text), as the stores keep it."""
    if isinstance(handle, PlatformFile):
        return "platform", handle.file_id
    return "stored", handle.name


def handle_from(kind: str, text: str) -> Handle:
    return PlatformFile(text) if kind == "platform" else StoredFile(text)
