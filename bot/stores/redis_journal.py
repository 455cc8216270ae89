"""The distributed request journal: one Redis hash per accepted request, keyed by its
idempotency key, and a sorted set of those not yet answered.

An answered request keeps only a tombstone (its counters, no chat or links) for as long as
Telegram may deliver its update again, so a redelivery is recognised on any receiver.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis

from bot.codec import RequestCodec, links_from, links_json
from bot.model import Origin, VideoRequest
from bot.ports import Unanswered
from bot.stores.redis_values import text
from bot.stores.sqlite_journal import TOMBSTONE_S

log = logging.getLogger(__name__)

# KEYS: entry, pending; ARGV: key, platform, origin, links, budget, accepted_at.
_ACCEPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'platform', ARGV[2], 'origin', ARGV[3], 'links', ARGV[4],
  'budget', ARGV[5], 'accepted_at', ARGV[6], 'attempts', 0, 'answered_links', 0)
redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1])
return 1
"""
# KEYS: entry, pending; ARGV: key, now, tombstone seconds.
_ANSWERED = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'answered_at', ARGV[2])
redis.call('HDEL', KEYS[1], 'origin', 'links')
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
"""


# KEYS: entry. One more run, counted only for a request written down.
_ATTEMPT = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
return redis.call('HINCRBY', KEYS[1], 'attempts', 1)
"""


class RedisJournal:
    """Implements `Journal` on Redis (with append-only persistence, as the README sets up)."""

    def __init__(
        self,
        redis: Redis,
        codec: RequestCodec,
        *,
        prefix: str = "reshare:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._codec = codec
        self._entry = f"{prefix}journal:"
        self._pending = f"{prefix}journal-pending"
        self._clock = clock

    async def accept(self, request: VideoRequest) -> bool:
        origin = self._codec.origin_text(request.origin)
        if origin is None:
            return True
        key = self._codec.key(request.origin)
        accepted = await self._redis.eval(
            _ACCEPT,
            2,
            self._entry + str(key),
            self._pending,
            str(key),
            request.origin.platform,
            origin,
            links_json(request.links),
            request.budget_bytes,
            repr(self._clock()),
        )
        return bool(accepted)

    async def link_answered(self, origin: Origin) -> None:
        key = self._codec.key(origin)
        if key is not None:
            await self._redis.hincrby(self._entry + key, "answered_links", 1)

    async def answered(self, origin: Origin) -> None:
        key = self._codec.key(origin)
        if key is not None:
            await self._mark_answered(key)

    async def _mark_answered(self, key: str) -> None:
        await self._redis.eval(
            _ANSWERED,
            2,
            self._entry + key,
            self._pending,
            key,
            repr(self._clock()),
            round(TOMBSTONE_S),
        )

    async def attempt(self, origin: Origin) -> int:
        key = self._codec.key(origin)
        if key is None:
            return 0
        return int(await self._redis.eval(_ATTEMPT, 1, self._entry + key))

    async def remaining(self, request: VideoRequest) -> VideoRequest | None:
        key = self._codec.key(request.origin)
        if key is None:
            return request
        done, answered_at = await self._redis.hmget(
            self._entry + key, ["answered_links", "answered_at"]
        )
        if done is None:
            return request
        left = request.links[int(done) :]
        if answered_at is not None or not left:
            return None
        return dataclasses.replace(request, links=left)

    async def take_unanswered(self) -> list[Unanswered]:
        now = self._clock()
        found: list[Unanswered] = []
        for raw in await self._redis.zrange(self._pending, 0, -1):
            key = text(raw)
            fields = await self._redis.hgetall(self._entry + key)
            if not fields or b"origin" not in fields:
                await self._redis.zrem(self._pending, key)
                continue
            platform = text(fields[b"platform"])
            age_s = now - float(fields[b"accepted_at"])
            origin = self._codec.origin_from(platform, text(fields[b"origin"]), age_s)
            done = int(fields[b"answered_links"])
            remaining = links_from(text(fields[b"links"]))[done:]
            if origin is None or not remaining:
                if origin is None:
                    log.warning(
                        "a %s request from %.0f s ago can no longer be answered: dropped",
                        platform,
                        age_s,
                    )
                await self._mark_answered(key)
                continue
            attempts = await self._redis.hincrby(self._entry + key, "attempts", 1)
            request = VideoRequest(
                links=remaining, origin=origin, budget_bytes=int(fields[b"budget"])
            )
            found.append(Unanswered(request, int(attempts)))
        return found

    async def close(self) -> None:
        """The connection belongs to the composition root, which closes it."""
