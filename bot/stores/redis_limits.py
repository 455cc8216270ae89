"""Distributed rate limits: moving windows in Redis (the `limits` library), shared by every
receiver, and one notice per refused sender."""

from __future__ import annotations

from limits import RateLimitItemPerMinute
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from bot.ports import Verdict
from bot.stores.send_limits import limits_storage

WINDOW_S = 60


class RedisRateLimits:
    """Implements `RateLimits`: a user's links and a chat's links per minute."""

    def __init__(
        self,
        redis: Redis,
        url: str,
        *,
        user_per_minute: int,
        chat_per_minute: int,
        prefix: str = "reshare:",
    ) -> None:
        """`url` names the server for `limits`, which shares `redis`'s connection pool."""
        self._redis = redis
        self._storage = limits_storage(redis, url, f"{prefix}limits")
        self._limiter = MovingWindowRateLimiter(self._storage)
        self._user = RateLimitItemPerMinute(user_per_minute)
        self._chat = RateLimitItemPerMinute(chat_per_minute)
        self._told = f"{prefix}told:"

    async def check(self, user: str, chat: str, links: int) -> Verdict:
        over = [
            key
            for key, item in ((user, self._user), (chat, self._chat))
            if not await self._limiter.test(item, key, cost=links)
        ]
        if not over:
            await self._limiter.hit(self._user, user, cost=links)
            await self._limiter.hit(self._chat, chat, cost=links)
            await self._redis.delete(self._told + user, self._told + chat)
            return Verdict.ALLOW
        told = [await self._redis.set(self._told + key, 1, nx=True, ex=WINDOW_S) for key in over]
        return Verdict.REFUSE_AND_SAY if any(told) else Verdict.REFUSE_QUIETLY
