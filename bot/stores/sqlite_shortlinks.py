"""The embedded short links: one SQLite file in DATA_DIR, read through a bounded memory copy.

Read and written synchronously on the event loop, as the journal is: a lookup by primary key or
one small insert without an fsync (WAL with synchronous=NORMAL) takes microseconds, less than
the hop to a database thread and back, and a short link's lookup is on the way to the answer.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict
from pathlib import Path

from bot.stores.sqlite_files import open_store

# About 200 bytes each: some 20 MB for the most recently asked links.
REMEMBERED = 100_000

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE short_links (
        short_url TEXT PRIMARY KEY,
        post_url  TEXT NOT NULL
    ) WITHOUT ROWID;
    """,
)


class RecentLinks:
    """A bounded memory copy of mappings that never change; the least recently used go first.
    Nothing in it can be stale, so processes sharing the store need not tell each other."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError(f"size must be positive, got {size}")
        self._size = size
        self._entries: OrderedDict[str, str] = OrderedDict()

    def get(self, key: str) -> str | None:
        value = self._entries.get(key)
        if value is not None:
            self._entries.move_to_end(key)
        return value

    def put(self, key: str, value: str) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        if len(self._entries) > self._size:
            self._entries.popitem(last=False)


class SqliteShortLinks:
    """Implements `ShortLinks` for one process: a link asked again recently costs no disk read."""

    def __init__(self, db: sqlite3.Connection, *, remembered: int = REMEMBERED) -> None:
        """Use `open`."""
        self._db = db
        self._recent = RecentLinks(remembered)

    @classmethod
    async def open(cls, path: Path, *, remembered: int = REMEMBERED) -> SqliteShortLinks:
        # A power cut may lose the last links: they are looked up again when asked.
        return cls(open_store(path, MIGRATIONS), remembered=remembered)

    async def get(self, short_url: str) -> str | None:
        known = self._recent.get(short_url)
        if known is not None:
            return known
        row = self._db.execute(
            "SELECT post_url FROM short_links WHERE short_url = ?", (short_url,)
        ).fetchone()
        if row is None:
            return None
        post_url = str(row[0])
        self._recent.put(short_url, post_url)
        return post_url

    async def put(self, short_url: str, post_url: str) -> None:
        self._db.execute(
            "INSERT INTO short_links (short_url, post_url) VALUES (?, ?)"
            " ON CONFLICT (short_url) DO UPDATE SET post_url = excluded.post_url",
            (short_url, post_url),
        )
        self._recent.put(short_url, post_url)

    async def close(self) -> None:
        self._db.close()
