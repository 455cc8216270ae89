"""The embedded media store: files kept on disk for platforms that take uploads only.

The directory itself is the index; each file's mtime is its last use, so the least recently
used order survives restarts.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bot.model import CacheKey, StoredFile

_MEDIA_NAME = re.compile(r"[0-9a-f]{64}")
_TEMP_PREFIX = ".tmp-"
# A temporary file this old is left over from a crash, not a copy in progress.
_STALE_TEMP_S = 3600.0


class FileMediaStore:
    """Files for re-upload, capped at max_bytes, in one directory.

    Names are a hash of the key, never text from the network. The blocking methods run in a
    thread; several threads (or processes) may store at once.
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

    async def keep(self, key: CacheKey, source: Path) -> StoredFile | None:
        kept = await asyncio.to_thread(self.store, key, source)
        return None if kept == source else StoredFile(kept.name)

    async def open(self, stored: StoredFile, workdir: Path) -> Path | None:
        """The store's own file, marked as just used: no copy. A concurrent `store` may evict
        it, so the caller treats FileNotFoundError as a miss."""
        if not _MEDIA_NAME.fullmatch(stored.name):
            return None
        return await asyncio.to_thread(self.path_of, self._directory / stored.name)

    def path_for(self, key: CacheKey) -> Path | None:
        """The stored file of `key`, marked as just used, or None."""
        return self.path_of(self._directory / _media_name(key))

    def path_of(self, path: Path) -> Path | None:
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
