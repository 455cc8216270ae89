"""The embedded trending counts: one row per reshare in a SQLite file of its own in DATA_DIR
(`trending.sqlite3`; its schema version is the file's, so it shares no file with another store).

Read and written synchronously on the event loop, as the journal is: a count is one small
transaction without an fsync (WAL with synchronous=NORMAL), a fraction of a millisecond; a top
reads at most one chat's `max_events` rows (a few milliseconds at the default bound) and is
asked rarely. The methods are async only to fit the port, and none of them suspends.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from bot.ports import TrendingClip
from bot.stores.sqlite_files import open_store
from bot.stores.trending_rules import KEEP_S, MAX_EVENTS, check_limits, pseudonym

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE trending_reshares (
        chat    TEXT NOT NULL,
        clip_id TEXT NOT NULL,
        link    TEXT NOT NULL,
        person  TEXT NOT NULL,
        at      REAL NOT NULL
    );
    CREATE INDEX trending_reshares_by_chat ON trending_reshares (chat, at);
    CREATE INDEX trending_reshares_by_age ON trending_reshares (at);
    """,
)


class SqliteTrending:
    """Implements `Trending` for one process. Each count also deletes what fell out of the window
    (an index seek when nothing did) and what exceeds the chat's `max_events`, oldest first."""

    def __init__(
        self,
        db: sqlite3.Connection,
        *,
        key: bytes,
        keep_s: float = KEEP_S,
        max_events: int = MAX_EVENTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """Use `open`; this only wraps a connection whose schema is already current. `key`
        keys the people's pseudonyms (`pseudonym`)."""
        check_limits(keep_s, max_events)
        self._db = db
        self._key = key
        self._keep_s = keep_s
        self._max_events = max_events
        self._clock = clock

    @classmethod
    async def open(
        cls,
        path: Path,
        *,
        key: bytes,
        keep_s: float = KEEP_S,
        max_events: int = MAX_EVENTS,
        clock: Callable[[], float] = time.time,
    ) -> SqliteTrending:
        """Open (or create, private to this user) the database and bring its schema up to date."""
        # A power cut may lose the last counts, which is fine.
        db = open_store(path, MIGRATIONS)
        return cls(db, key=key, keep_s=keep_s, max_events=max_events, clock=clock)

    async def count(self, chat: str, clip_id: str, link: str, user: str, at: float) -> None:
        # Nothing suspends inside: no other coroutine's statement can enter the transaction.
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "INSERT INTO trending_reshares (chat, clip_id, link, person, at)"
                " VALUES (?, ?, ?, ?, ?)",
                (chat, clip_id, link, pseudonym(self._key, chat, user), at),
            )
            self._db.execute("DELETE FROM trending_reshares WHERE at < ?", (self._cutoff(),))
            self._db.execute(
                "DELETE FROM trending_reshares WHERE rowid IN ("
                " SELECT rowid FROM trending_reshares WHERE chat = ?"
                " ORDER BY at DESC, rowid DESC LIMIT -1 OFFSET ?)",
                (chat, self._max_events),
            )
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    async def top(self, chat: str, since: float, limit: int) -> list[TrendingClip]:
        if limit <= 0:
            return []
        # A bare column beside max() comes from the row holding the maximum (a documented
        # SQLite rule), so `link` is the one of the latest reshare.
        rows = self._db.execute(
            "SELECT clip_id, link, max(at) AS last_at, count(*) AS times,"
            " count(DISTINCT person) AS people"
            " FROM trending_reshares WHERE chat = ? AND at >= ?"
            " GROUP BY clip_id ORDER BY times DESC, people DESC, last_at DESC, clip_id"
            " LIMIT ?",
            (chat, max(since, self._cutoff()), limit),
        ).fetchall()
        return [TrendingClip(row[0], row[1], row[3], row[4]) for row in rows]

    async def forget(self, chat: str) -> None:
        self._db.execute("DELETE FROM trending_reshares WHERE chat = ?", (chat,))

    async def close(self) -> None:
        self._db.close()

    def _cutoff(self) -> float:
        return self._clock() - self._keep_s
