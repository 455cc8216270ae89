"""Distributed single-flight: one holder per key across every process on the Redis server.

A hold is a key set with NX and a lease; the holder renews the lease while it works, so a slow
encode keeps its hold, and a holder that dies (SIGKILL) lets go when the lease runs out.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator

from redis.asyncio import Redis

log = logging.getLogger(__name__)

# Deletes the hold only while it is still ours (a lease that ran out may be someone else's now).
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"""
# How often a waiter looks again, at most (it starts quicker).
_POLL_MAX_S = 0.25


class RedisFlights:
    """Implements `SingleFlight` with SET NX PX, renewed every third of the lease."""

    def __init__(self, redis: Redis, *, lease_s: float, prefix: str = "reshare:") -> None:
        if lease_s <= 0:
            raise ValueError(f"lease_s must be positive, got {lease_s}")
        self._redis = redis
        self._lease_ms = max(1, round(lease_s * 1000))
        self._prefix = f"{prefix}flight:"

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        name = self._prefix + key
        token = secrets.token_hex(16)
        pause = 0.01
        while not await self._redis.set(name, token, nx=True, px=self._lease_ms):
            await asyncio.sleep(pause)
            pause = min(_POLL_MAX_S, pause * 2)
        renewing = asyncio.create_task(self._renew(name, token))
        try:
            yield
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            # Shielded: a cancelled holder still lets go at once instead of after the lease.
            with contextlib.suppress(Exception):
                await asyncio.shield(self._redis.eval(_RELEASE, 1, name, token))

    async def _renew(self, name: str, token: str) -> None:
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                kept = await self._redis.eval(_RENEW, 1, name, token, self._lease_ms)
            except Exception as err:
                log.warning("could not renew the hold on %s: %r", name, err)
                continue
            if not kept:
                log.warning("the hold on %s was lost (its lease ran out)", name)
                return
