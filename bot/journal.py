"""The request journal: every accepted request written down until it has been answered.

Telegram forgets an update once the bot asks for the next ones, and a process can die at any
moment; what is in the journal and not answered is run again on the next start (DESIGN.md
section 11). An answered entry is kept for a while as a tombstone, so an update that Telegram
delivers a second time (the process died before confirming it) is recognised and not answered
twice.

The journal is written synchronously on the event loop: the write must be done before the
adapter confirms the update, and it is one small SQLite insert without an fsync (WAL with
synchronous=NORMAL survives a killed process; a power cut may lose the last entries).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from bot.cache import create_private_file
from bot.links import Link, LinkKind
from bot.model import Origin, VideoRequest

log = logging.getLogger(__name__)

# Telegram keeps an unconfirmed update for 24 hours: a tombstone must outlive that.
TOMBSTONE_S = 2 * 24 * 3600.0

# An answered request keeps only the hash of its origin (a tombstone): its chat, links and
# interaction token are cleared from the table once it is answered.
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


class OriginCodec(Protocol):
    """Turns one platform's origins into text and back; the adapter knows their shape."""

    def encode(self, origin: Origin) -> str: ...

    def decode(self, text: str, age_s: float) -> Origin | None:
        """The origin again, or None when it can no longer be answered (an expired token)."""


class DataclassCodec:
    """JSON for origins that are frozen dataclasses of plain values, tagged by class name.

    `scope` names whose origins they are (one bot's chat and message ids mean nothing to
    another bot); an origin stored under another scope is not answered. `max_age_s` names
    classes whose answer channel expires (Discord interaction tokens).
    """

    def __init__(
        self,
        *kinds: type[Any],
        scope: str = "",
        max_age_s: Mapping[type[Any], float] | None = None,
    ) -> None:
        self._kinds = {kind.__name__: kind for kind in kinds}
        self._scope = scope
        self._max_age_s = dict(max_age_s or {})

    def encode(self, origin: Origin) -> str:
        kind = type(origin).__name__
        if self._kinds.get(kind) is not type(origin) or not dataclasses.is_dataclass(origin):
            raise TypeError(f"no codec for origin {origin!r}")
        fields = {"kind": kind, "scope": self._scope, **dataclasses.asdict(origin)}
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    def decode(self, text: str, age_s: float) -> Origin | None:
        fields = json.loads(text)
        kind = self._kinds.get(fields.pop("kind"))
        limit = self._max_age_s.get(kind) if kind is not None else None
        if kind is None or fields.pop("scope") != self._scope:
            return None
        if limit is not None and age_s > limit:
            return None
        origin: Origin = kind(**fields)
        return origin


@dataclass(frozen=True, slots=True)
class Unanswered:
    """A request found in the journal at start; `attempts` counts the starts that took it up."""

    request: VideoRequest
    attempts: int


class SqliteJournal:
    """The journal in a SQLite file of its own in DATA_DIR, private to this user.

    Built with the engine, opened at start (when DATA_DIR exists), closed at stop.
    """

    def __init__(
        self,
        path: Path,
        codecs: Mapping[str, OriginCodec],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._path = path
        self._codecs = codecs
        self._clock = clock
        self._connection: sqlite3.Connection | None = None

    def open(self) -> None:
        create_private_file(self._path)
        db = sqlite3.connect(self._path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            db.execute(_SCHEMA)
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

    def accept(self, request: VideoRequest) -> bool:
        """Write the request down; False when its origin was accepted before (a redelivery).

        A platform without a codec is not written down.
        """
        origin = self._encode(request.origin)
        if origin is None:
            return True
        links = json.dumps([_link_fields(link) for link in request.links])
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO accepted_requests"
            " (key, platform, origin, links, budget, accepted_at) VALUES (?, ?, ?, ?, ?, ?)",
            (
                _key(origin),
                request.origin.platform,
                origin,
                links,
                request.budget_bytes,
                self._clock(),
            ),
        )
        return cursor.rowcount == 1

    def answered(self, origin: Origin) -> None:
        """The request from `origin` got its answer (video or reason): never run it again."""
        encoded = self._encode(origin)
        if encoded is not None:
            self._mark_answered(_key(encoded))

    def link_answered(self, origin: Origin) -> None:
        """One more link of the request from `origin` got its answer (links go in order)."""
        encoded = self._encode(origin)
        if encoded is not None:
            self._db.execute(
                "UPDATE accepted_requests SET answered_links = answered_links + 1 WHERE key = ?",
                (_key(encoded),),
            )

    def take_unanswered(self) -> list[Unanswered]:
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
            codec = self._codecs.get(platform)
            origin = codec.decode(text, now - accepted_at) if codec is not None else None
            remaining = tuple(_link_from(fields) for fields in json.loads(links))[done:]
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

    def close(self) -> None:
        """Close the file; safe to call when it was never opened."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _encode(self, origin: Origin) -> str | None:
        codec = self._codecs.get(origin.platform)
        return codec.encode(origin) if codec is not None else None


def _key(encoded_origin: str) -> str:
    return hashlib.sha256(encoded_origin.encode()).hexdigest()


def _link_fields(link: Link) -> dict[str, Any]:
    return {**dataclasses.asdict(link), "kind": link.kind.value}


def _link_from(fields: dict[str, Any]) -> Link:
    return Link(**{**fields, "kind": LinkKind(fields["kind"])})
