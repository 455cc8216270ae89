"""Flood limits for outgoing messages (Telegram: about 30 a second per bot, 20 a minute per
group) in Redis, as moving windows of the `limits` library, for the distributed mode: every
worker counts against the same windows. The embedded mode's are
bot.stores.memory_limits.MemorySendLimits."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING, Any

from limits import RateLimitItem, RateLimitItemPerMinute, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

if TYPE_CHECKING:
    # For annotations only: the embedded mode does not carry redis' memory (limits' storages
    # import their client library when one is made).
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

# The longest single wait before the windows are looked at again.
_WAIT_MAX_S = 1.0


class WindowSendLimits:
    """Implements `SendLimits` on any `limits` storage."""

    def __init__(self, storage: Storage, *, per_second: int, per_group_minute: int) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._overall = RateLimitItemPerSecond(per_second)
        self._group = RateLimitItemPerMinute(per_group_minute)

    async def admit(self, group: str | None) -> None:
        """Windows out of reach (Redis restarting) let the message through: the platform's
        own 429 and the core's retry keep to its limits meanwhile, and the answer goes out."""
        try:
            if group is not None:
                await self._take(self._group, f"group:{group}")
            await self._take(self._overall, "overall")
        except Exception as err:
            log.warning("flood limits unreachable (%r): sending without them", err)

    async def _take(self, item: RateLimitItem, key: str) -> None:
        while not await self._limiter.hit(item, key):
            stats = await self._limiter.get_window_stats(item, key)
            await asyncio.sleep(min(_WAIT_MAX_S, max(0.01, stats.reset_time - time.time())))


def redis_send_limits(
    redis: Redis,
    url: str,
    *,
    per_second: int,
    per_group_minute: int,
    prefix: str = "reshare:",
) -> WindowSendLimits:
    storage = limits_storage(redis, url, f"{prefix}send")
    return WindowSendLimits(storage, per_second=per_second, per_group_minute=per_group_minute)


def limits_storage(redis: Redis, url: str, key_prefix: str) -> RedisStorage:
    """A `limits` storage in Redis that shares `redis`'s connection pool (closed with it);
    `url` names the server for `limits`."""
    shared: dict[str, Any] = {"connection_pool": redis.connection_pool}
    return RedisStorage(
        url.replace("redis://", "async+redis://", 1),
        implementation="redispy",
        key_prefix=key_prefix,
        **shared,
    )
