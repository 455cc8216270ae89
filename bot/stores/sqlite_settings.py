"""The embedded chat settings: one SQLite file in DATA_DIR, read through a memory copy."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from bot.chat_settings import ChatSettings
from bot.stores.sqlite_files import open_store

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE chat_settings (
        chat     TEXT PRIMARY KEY,
        settings TEXT NOT NULL
    );
    """,
)


class SqliteChatSettings:
    """Implements `ChatSettingsStore` for one process: every chat that chose settings is read
    into memory at open (few chats change them), so a read never waits for the disk, not even a
    new chat's, which has the defaults. A change is one statement, run on the caller's thread
    as the other embedded stores' are."""

    def __init__(
        self, db: sqlite3.Connection, known: dict[str, ChatSettings] | None = None
    ) -> None:
        """Use `open`."""
        self._db = db
        self._known: dict[str, ChatSettings] = known or {}

    @classmethod
    async def open(cls, path: Path) -> SqliteChatSettings:
        db = open_store(path, MIGRATIONS)
        try:
            rows = db.execute("SELECT chat, settings FROM chat_settings").fetchall()
        except BaseException:
            db.close()
            raise
        return cls(db, {str(chat): ChatSettings.from_json(text) for chat, text in rows})

    async def get(self, chat: str) -> ChatSettings:
        known = self._known.get(chat)
        return known if known is not None else ChatSettings()

    async def put(self, chat: str, settings: ChatSettings) -> None:
        if settings == ChatSettings():
            self._db.execute("DELETE FROM chat_settings WHERE chat = ?", (chat,))
            self._known.pop(chat, None)
            return
        self._db.execute(
            "INSERT INTO chat_settings (chat, settings) VALUES (?, ?)"
            " ON CONFLICT (chat) DO UPDATE SET settings = excluded.settings",
            (chat, settings.to_json()),
        )
        self._known[chat] = settings

    async def close(self) -> None:
        self._db.close()
