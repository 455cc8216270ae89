"""The distributed short links: one Redis key per short link, read through a bounded memory
copy (a mapping never changes, so no process need hear of another's writes)."""

from __future__ import annotations

from redis.asyncio import Redis

from bot.stores.redis_values import text
from bot.stores.sqlite_shortlinks import REMEMBERED, RecentLinks


class RedisShortLinks:
    """Implements `ShortLinks` across processes; the Redis client is the caller's to close."""

    def __init__(
        self, redis: Redis, *, prefix: str = "reshare:", remembered: int = REMEMBERED
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}short:"
        self._recent = RecentLinks(remembered)

    async def get(self, short_url: str) -> str | None:
        known = self._recent.get(short_url)
        if known is not None:
            return known
        value = await self._redis.get(self._prefix + short_url)
        if value is None:
            return None
        post_url = text(value)
        self._recent.put(short_url, post_url)
        return post_url

    async def put(self, short_url: str, post_url: str) -> None:
        await self._redis.set(self._prefix + short_url, post_url)
        self._recent.put(short_url, post_url)

    async def close(self) -> None:
        return None
