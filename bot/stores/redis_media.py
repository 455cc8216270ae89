"""The distributed media store: video files kept in Redis, so any worker can upload them again.

Each file is one value; a sorted set orders them by last use and a hash holds their sizes, and
the store's total stays under its cap by removing the least recently used first.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Callable
from pathlib import Path

from redis.asyncio import Redis

from bot.model import CacheKey, StoredFile
from bot.stores.redis_values import raw

_NAME = re.compile(r"[0-9a-f]{64}")

# KEYS: lru, sizes, total; ARGV: name, size, now, max bytes, data key prefix.
# Counts the file in and removes the least recently used others until the total fits.
_KEEP = """
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old then redis.call('DECRBY', KEYS[3], old) end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local total = redis.call('INCRBY', KEYS[3], ARGV[2])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
local max = tonumber(ARGV[4])
while total > max do
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0)[1]
  if (not oldest) or oldest == ARGV[1] then break end
  local size = redis.call('HGET', KEYS[2], oldest) or 0
  redis.call('ZREM', KEYS[1], oldest)
  redis.call('HDEL', KEYS[2], oldest)
  redis.call('DEL', ARGV[5] .. oldest)
  total = redis.call('DECRBY', KEYS[3], size)
end
return total
"""


class RedisMediaStore:
    """Implements `MediaStore`; files larger than the whole cap are not kept."""

    def __init__(
        self,
        redis: Redis,
        *,
        max_bytes: int,
        prefix: str = "reshare:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError(f"max_bytes must be positive, got {max_bytes}")
        self._redis = redis
        self._max_bytes = max_bytes
        self._clock = clock
        self._data = f"{prefix}media:file:"
        self._lru = f"{prefix}media:lru"
        self._sizes = f"{prefix}media:sizes"
        self._total = f"{prefix}media:total"

    async def keep(self, key: CacheKey, source: Path) -> StoredFile | None:
        data = await asyncio.to_thread(source.read_bytes)
        if len(data) > self._max_bytes:
            return None
        name = hashlib.sha256(key.text().encode()).hexdigest()
        await self._redis.set(self._data + name, data)
        await self._redis.eval(
            _KEEP,
            3,
            self._lru,
            self._sizes,
            self._total,
            name,
            len(data),
            self._clock(),
            self._max_bytes,
            self._data,
        )
        return StoredFile(name)

    async def open(self, stored: StoredFile, workdir: Path) -> Path | None:
        if not _NAME.fullmatch(stored.name):
            return None
        data = await self._redis.get(self._data + stored.name)
        if data is None:
            return None
        await self._redis.zadd(self._lru, {stored.name: self._clock()}, xx=True)
        path = workdir / f"{stored.name}.mp4"
        await asyncio.to_thread(path.write_bytes, raw(data))
        return path
