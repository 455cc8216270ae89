"""What every embedded store does with its SQLite file: create it private to this user, open
it in WAL with synchronous=NORMAL, and bring its schema up to date."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path


def open_store(path: Path, migrations: Sequence[str]) -> sqlite3.Connection:
    """An embedded store's file, created private to this user, in WAL with synchronous=NORMAL
    (it cannot corrupt; a power cut may lose the last writes) and its schema brought up to
    date; statements are run on the caller's thread, in autocommit."""
    create_private_file(path)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        migrate(db, migrations)
    except BaseException:
        db.close()
        raise
    return db


def migrate(db: sqlite3.Connection, migrations: Sequence[str]) -> None:
    """Run the scripts the database has not seen, each in its own transaction with its version.

    The version is read again under the write lock, so two processes opening one new file do
    not both run a script.
    """
    if _user_version(db) == len(migrations):
        return
    for version, script in enumerate(migrations, start=1):
        db.execute("BEGIN IMMEDIATE")
        try:
            current = _user_version(db)
            if current > len(migrations):
                raise RuntimeError(
                    f"database schema is version {current}, newer than this code knows"
                    f" ({len(migrations)}); use a newer Reshare or another DATA_DIR"
                )
            if current < version:
                for statement in _statements(script):
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {version:d}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def _user_version(db: sqlite3.Connection) -> int:
    row = db.execute("PRAGMA user_version").fetchone()
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
