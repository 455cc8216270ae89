"""The distributed fetch health and failed-link memory, shared by every worker in Redis.

A site's recent fetches are one list, newest first, and its incident one key; a Lua script
adds an attempt and judges it atomically (as `memory_health.judge` does), so of all the workers
that see a site break or recover, exactly one is told. A recovery starts the count afresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from bot.model import FailureKind, Reason
from bot.ports import HealthChange, HealthRule
from bot.stores.redis_values import text

# KEYS: the site's attempts list, its incident key. ARGV: now, kind ("" when it worked),
# attempts kept, window seconds, failures that break, successes in a row that recover.
# Returns nil, or {broken (1/0), kind, failures in the window, attempts in the window}.
_RECORD = """
redis.call('LPUSH', KEYS[1], ARGV[1] .. '|' .. ARGV[2])
redis.call('LTRIM', KEYS[1], 0, tonumber(ARGV[3]) - 1)
local entries = redis.call('LRANGE', KEYS[1], 0, -1)
local since = tonumber(ARGV[1]) - tonumber(ARGV[4])
local counts, failures, recent, leading = {}, 0, 0, nil
for _, entry in ipairs(entries) do
  local bar = string.find(entry, '|', 1, true)
  local kind = string.sub(entry, bar + 1)
  if tonumber(string.sub(entry, 1, bar - 1)) >= since then
    recent = recent + 1
    if kind ~= '' then
      failures = failures + 1
      counts[kind] = (counts[kind] or 0) + 1
      if leading == nil or counts[kind] > counts[leading] then leading = kind end
    end
  end
end
local incident = redis.call('GET', KEYS[2])
if not incident then
  if leading ~= nil and failures >= tonumber(ARGV[5]) then
    redis.call('SET', KEYS[2], leading)
    return {1, leading, failures, recent}
  end
  return nil
end
local needed = tonumber(ARGV[6])
if #entries < needed then return nil end
for i = 1, needed do
  if string.sub(entries[i], -1) ~= '|' then return nil end
end
redis.call('DEL', KEYS[2])
redis.call('LTRIM', KEYS[1], 0, needed - 1)
return {0, incident, failures, recent}
"""


class RedisFetchHealth:
    """Implements `FetchHealth` across processes."""

    def __init__(
        self,
        redis: Redis,
        rule: HealthRule | None = None,
        *,
        prefix: str = "reshare:",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self._rule = rule or HealthRule()
        self._prefix = f"{prefix}health:"
        self._clock = clock
        self._script = redis.register_script(_RECORD)

    async def record(self, site: str, kind: FailureKind | None) -> HealthChange | None:
        rule = self._rule
        found: Any = await self._script(
            keys=[f"{self._prefix}{site}:attempts", f"{self._prefix}{site}:incident"],
            args=[
                repr(self._clock()),
                kind.value if kind else "",
                rule.attempts,
                repr(rule.window_s),
                rule.failures,
                rule.recover_after,
            ],
        )
        if found is None:
            return None
        broken, kind_value, failures, recent = found
        return HealthChange(
            site, bool(int(broken)), FailureKind(text(kind_value)), int(failures), int(recent)
        )

    async def incident(self, site: str) -> FailureKind | None:
        value = await self._redis.get(f"{self._prefix}{site}:incident")
        return FailureKind(text(value)) if value is not None else None


class RedisFailedLinks:
    """Implements `FailedLinks` across processes: one key per clip, expiring with its time."""

    def __init__(self, redis: Redis, *, prefix: str = "reshare:") -> None:
        self._redis = redis
        self._prefix = f"{prefix}failed:"

    async def remember(self, clip: str, reason: Reason, ttl_s: float) -> None:
        if ttl_s > 0:
            await self._redis.set(self._prefix + clip, reason.name, px=max(1, round(ttl_s * 1000)))

    async def recall(self, clip: str) -> Reason | None:
        value = await self._redis.get(self._prefix + clip)
        if value is None:
            return None
        return Reason.__members__.get(text(value))
