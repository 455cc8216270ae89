"""The distributed clip cache: one Redis hash per clip, expiring with the cache's maximum age."""

from __future__ import annotations

import time
from collections.abc import Callable

from redis.asyncio import Redis

from bot.model import CachedMedia, CacheKey
from bot.stores.redis_values import text
from bot.stores.sqlite_cache import handle_fields, handle_from


class RedisClipCache:
    """Implements `ClipCache`; the handles are per bot, so the prefix names the deployment."""

    def __init__(
        self,
        redis: Redis,
        *,
        max_age_s: float,
        prefix: str = "reshare:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max_age_s <= 0:
            raise ValueError(f"max_age_s must be positive, got {max_age_s}")
        self._redis = redis
        self._max_age_s = max_age_s
        self._prefix = f"{prefix}cache:"
        self._clock = clock

    def _key(self, key: CacheKey) -> str:
        return self._prefix + key.text()

    async def get(self, key: CacheKey) -> CachedMedia | None:
        fields = await self._redis.hgetall(self._key(key))
        if not fields:
            return None
        media = CachedMedia(
            handle=handle_from(text(fields[b"kind"]), text(fields[b"handle"])),
            width=int(fields[b"width"]),
            height=int(fields[b"height"]),
            duration=float(fields[b"duration"]),
            size=int(fields[b"size"]),
            caption=text(fields[b"caption"]),
            stored_at=float(fields[b"stored_at"]),
        )
        # Redis expires it too; the clock decides, as in the embedded cache.
        if media.stored_at < self._clock() - self._max_age_s:
            return None
        return media

    async def put(self, key: CacheKey, media: CachedMedia) -> None:
        kind, handle = handle_fields(media.handle)
        name = self._key(key)
        # Relative to our clock, which decides expiry (Redis's own clock may differ).
        ttl_s = media.stored_at + self._max_age_s - self._clock()
        if ttl_s <= 0:
            await self._redis.delete(name)
            return
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(name)
            pipe.hset(
                name,
                mapping={
                    "kind": kind,
                    "handle": handle,
                    "width": media.width,
                    "height": media.height,
                    "duration": repr(media.duration),
                    "size": media.size,
                    "caption": media.caption,
                    "stored_at": repr(media.stored_at),
                },
            )
            pipe.pexpire(name, max(1, round(ttl_s * 1000)) + 1000)
            await pipe.execute()

    async def forget(self, key: CacheKey) -> None:
        await self._redis.delete(self._key(key))

    async def close(self) -> None:
        """The connection belongs to the composition root, which closes it."""
