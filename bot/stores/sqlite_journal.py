"""The embedded request journal: every accepted request written down until it has been answered.

Telegram forgets an update once the bot asks for the next ones, and a process can die at any
moment; what is in the journal and not answered is run again on the next start (DESIGN.md
section 11). An answered entry is kept for a while as a tombstone, so an update that Telegram
delivers a second time (the process died before confirming it) is recognised and not answered
twice.

The journal is written synchronously on the event loop (its methods are async only to fit the
port): the write must be done before the adapter confirms the update, and it is one small SQLite
insert without an fsync (WAL with synchronous=NORMAL survives a killed process; a power cut may
lose the last entries).
"""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from bot.codec import RequestCodec, key_of, links_from, links_json
from bot.model import Origin, VideoRequest
from bot.ports import Unanswered
from bot.stores.sqlite_files import open_store

log = logging.getLogger(__name__)

# Telegram keeps an unconfirmed update for 24 hours: a tombstone must outlive that.
TOMBSTONE_S = 2 * 24 * 3600.0

# An answered request keeps only the hash of its origin (a tombstone): its chat, links and
# interaction token are cleared from the table once it is answered. The file's first migration
# (`open_store`); IF NOT EXISTS, for journals made before the file counted its migrations.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS accepted_requests (
    key         TEXT PRIMARY KEY,
    platform    TEXT NOT NULL,
    origin      TEXT,
    links       TEXT,
    budget      INTEGER NOT NULL,
    accepted_at REAL NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    -- links are answered in order: a restart skips this many
    answered_links INTEGER NOT NULL DEFAULT 0,
    answered_at REAL
)
"""


class SqliteJournal:
    """The journal in a SQLite file of its own in DATA_DIR, private to this user.

    Built with the engine, opened at start (when DATA_DIR exists), closed at stop.
    """

    def __init__(
        self,
        path: Path,
        codec: RequestCodec,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self._codec = codec
        self._clock = clock
        self._connection: sqlite3.Connection | None = None

    def open(self) -> None:
        db = open_store(self._path, (_SCHEMA,))
        try:
            db.execute(
                "DELETE FROM accepted_requests WHERE answered_at < ?",
                (self._clock() - TOMBSTONE_S,),
            )
        except BaseException:
            db.close()
            raise
        self._connection = db

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            raise RuntimeError("the journal is not open")
        return self._connection

    async def accept(self, request: VideoRequest) -> bool:
        """Write the request down; False when its origin was accepted before (a redelivery).

        A platform without a codec is not written down.
        """
        origin = self._codec.origin_text(request.origin)
        if origin is None:
            return True
        links = links_json(request.links)
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO accepted_requests"
            " (key, platform, origin, links, budget, accepted_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                key_of(origin),
                request.origin.platform,
                origin,
                links,
                request.budget_bytes,
                self._clock(),
            ),
        )
        return cursor.rowcount == 1

    async def answered(self, origin: Origin) -> None:
        """The request from `origin` got its answer (video or reason): never run it again."""
        key = self._codec.key(origin)
        if key is not None:
            self._mark_answered(key)

    async def link_answered(self, origin: Origin) -> None:
        """One more link of the request from `origin` got its answer (links go in order)."""
        key = self._codec.key(origin)
        if key is not None:
            self._db.execute(
                "UPDATE accepted_requests SET answered_links = answered_links + 1 WHERE key = ?",
                (key,),
            )

    async def attempt(self, origin: Origin) -> int:
        key = self._codec.key(origin)
        if key is None:
            return 0
        self._db.execute(
            "UPDATE accepted_requests SET attempts = attempts + 1 WHERE key = ?", (key,)
        )
        row = self._db.execute(
            "SELECT attempts FROM accepted_requests WHERE key = ?", (key,)
        ).fetchone()
        return int(row[0]) if row is not None else 0

    async def remaining(self, request: VideoRequest) -> VideoRequest | None:
        key = self._codec.key(request.origin)
        if key is None:
            return request
        row = self._db.execute(
            "SELECT answered_links, answered_at FROM accepted_requests WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return request
        done, answered_at = row
        left = request.links[done:]
        if answered_at is not None or not left:
            return None
        return dataclasses.replace(request, links=left)

    async def take_unanswered(self) -> list[Unanswered]:
        """Every request not answered, oldest first, each counted as one more attempt.

        One whose origin can no longer be answered is marked answered and left out.
        """
        now = self._clock()
        rows = self._db.execute(
            "SELECT key, platform, origin, links, budget, accepted_at, attempts, answered_links"
            " FROM accepted_requests WHERE answered_at IS NULL ORDER BY accepted_at"
        ).fetchall()
        found: list[Unanswered] = []
        for key, platform, text, links, budget, accepted_at, attempts, done in rows:
            origin = self._codec.origin_from(platform, text, now - accepted_at)
            remaining = links_from(links)[done:]
            if origin is None or not remaining:
                if origin is None:
                    log.warning(
                        "a %s request from %.0f s ago can no longer be answered: dropped",
                        platform,
                        now - accepted_at,
                    )
                self._mark_answered(key)
                continue
            self._db.execute(
                "UPDATE accepted_requests SET attempts = attempts + 1 WHERE key = ?", (key,)
            )
            request = VideoRequest(links=remaining, origin=origin, budget_bytes=budget)
            found.append(Unanswered(request, attempts + 1))
        return found

    def _mark_answered(self, key: str) -> None:
        self._db.execute(
            "UPDATE accepted_requests SET answered_at = ?, origin = NULL, links = NULL"
            " WHERE key = ?",
            (self._clock(), key),
        )

    async def close(self) -> None:
        """Close the file; safe to call when it was never opened."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
