"""The distributed trending counts, shared by every worker in Redis.

Per chat: `events`, a sorted set of reshares ("n|person|clip id", scored by time; n from the
chat's `seq` counter keeps equal reshares apart); `clips`, each clip's latest reshare time; and
`links`, each clip's link. A Lua script counts one reshare atomically and prunes: reshares out of
the window or beyond the chat's cap, then the clips and links no reshare is left for. Every key
expires `keep_s` after the chat's last reshare, so a chat gone quiet leaves nothing behind.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from redis.asyncio import Redis

from bot.ports import TrendingClip
from bot.stores.redis_values import text
from bot.stores.trending_rules import KEEP_S, MAX_EVENTS, check_limits, pseudonym

# KEYS: events, seq, clips, links. ARGV: at, clip id, link, person, cutoff (reshares before it
# go), most reshares kept, milliseconds the keys live on.
_COUNT = """
local n = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], ARGV[1], n .. '|' .. ARGV[4] .. '|' .. ARGV[2])
redis.call('ZADD', KEYS[3], 'GT', ARGV[1], ARGV[2])
redis.call('HSET', KEYS[4], ARGV[2], ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[5])
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -1 - tonumber(ARGV[6]))
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local floor = '+inf'
if #oldest > 0 then floor = '(' .. oldest[2] end
local gone = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', floor)
for i = 1, #gone, 1000 do
  redis.call('HDEL', KEYS[4], unpack(gone, i, math.min(i + 999, #gone)))
end
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', floor)
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, ARGV[7]) end
"""


class RedisTrending:
    """Implements `Trending` across processes."""

    def __init__(
        self,
        redis: Redis,
        *,
        key: bytes,
        prefix: str = "reshare:",
        keep_s: float = KEEP_S,
        max_events: int = MAX_EVENTS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`key` keys the people's pseudonyms (`pseudonym`)."""
        check_limits(keep_s, max_events)
        self._redis = redis
        self._key = key
        self._prefix = f"{prefix}trending:"
        self._keep_s = keep_s
        self._max_events = max_events
        self._clock = clock
        self._script = redis.register_script(_COUNT)

    async def count(self, chat: str, clip_id: str, link: str, user: str, at: float) -> None:
        await self._script(
            keys=self._keys(chat),
            args=[
                repr(float(at)),
                clip_id,
                link,
                pseudonym(self._key, chat, user),
                repr(self._cutoff()),
                self._max_events,
                max(1, math.ceil(self._keep_s * 1000)),
            ],
        )

    async def top(self, chat: str, since: float, limit: int) -> list[TrendingClip]:
        if limit <= 0:
            return []
        events, _, _, links = self._keys(chat)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrangebyscore(events, repr(max(since, self._cutoff())), "+inf", withscores=True)
            pipe.hgetall(links)
            found, known = await pipe.execute()
        tallies: dict[str, _Tally] = {}
        for member, at in found:
            _, person, clip_id = text(member).split("|", 2)
            tallies.setdefault(clip_id, _Tally()).add(person, float(at))
        link_of = {text(clip): text(link) for clip, link in known.items()}
        order = sorted(
            tallies.items(),
            key=lambda item: (-item[1].times, -len(item[1].people), -item[1].last_at, item[0]),
        )
        return [
            TrendingClip(clip_id, link_of.get(clip_id, ""), tally.times, len(tally.people))
            for clip_id, tally in order[:limit]
        ]

    async def forget(self, chat: str) -> None:
        await self._redis.delete(*self._keys(chat))

    async def close(self) -> None:
        """Nothing to do: the client belongs to the caller."""

    def _keys(self, chat: str) -> list[str]:
        base = f"{self._prefix}{chat}:"
        return [base + "events", base + "seq", base + "clips", base + "links"]

    def _cutoff(self) -> float:
        return self._clock() - self._keep_s


@dataclass(slots=True)
class _Tally:
    """One clip's reshares while they are counted."""

    times: int = 0
    people: set[str] = field(default_factory=set)
    last_at: float = -math.inf

    def add(self, person: str, at: float) -> None:
        self.times += 1
        self.people.add(person)
        self.last_at = max(self.last_at, at)
