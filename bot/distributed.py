"""The distributed mode's parts (REDIS_URL): the state in Redis, the queue on a taskiq stream.

The engine imports this module only when REDIS_URL is set, so an embedded process does not
carry the memory of redis, taskiq and taskiq_redis.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from redis.asyncio import Redis

from bot.codec import RequestCodec
from bot.model import VideoRequest
from bot.settings import CoreSettings
from bot.stores.redis_cache import RedisClipCache
from bot.stores.redis_flights import RedisFlights
from bot.stores.redis_health import RedisFailedLinks, RedisFetchHealth
from bot.stores.redis_journal import RedisJournal
from bot.stores.redis_limits import RedisRateLimits
from bot.stores.redis_media import RedisMediaStore
from bot.stores.redis_settings import RedisChatSettings
from bot.stores.redis_shortlinks import RedisShortLinks
from bot.stores.redis_trending import RedisTrending
from bot.stores.send_limits import WindowSendLimits, redis_send_limits
from bot.taskiq_jobs import LeasedStreamBroker, TaskiqJobQueue, TaskiqWorker


@dataclass(frozen=True)
class RedisStores:
    """The stores the engine opens in `start`; `chat_settings` still has to be started."""

    cache: RedisClipCache
    media_store: RedisMediaStore
    chat_settings: RedisChatSettings
    trending: RedisTrending
    short_links: RedisShortLinks


@dataclass(frozen=True)
class Distributed:
    """What the engine builds from REDIS_URL at once: one client, the broker and the state
    every process shares."""

    redis: Redis
    broker: LeasedStreamBroker
    queue: TaskiqJobQueue
    journal: RedisJournal
    limits: RedisRateLimits
    single_flight: RedisFlights
    health: RedisFetchHealth
    failed_links: RedisFailedLinks
    send_limits: WindowSendLimits

    @classmethod
    def connect(
        cls,
        settings: CoreSettings,
        url: str,
        codec: RequestCodec,
        *,
        per_second: int,
        per_group_minute: int,
    ) -> Distributed:
        """The parts on the Redis at `url` (no connection is made until they are used);
        `per_second` and `per_group_minute` are the platforms' flood limits."""
        redis = Redis.from_url(url)
        broker = LeasedStreamBroker(url, lease_s=settings.job_lease_s)
        return cls(
            redis=redis,
            broker=broker,
            queue=TaskiqJobQueue(broker, codec),
            journal=RedisJournal(redis, codec),
            limits=RedisRateLimits(
                redis,
                url,
                user_per_minute=settings.rate_limit_user_per_min,
                chat_per_minute=settings.rate_limit_chat_per_min,
            ),
            single_flight=RedisFlights(redis, lease_s=settings.job_lease_s),
            health=RedisFetchHealth(redis),
            failed_links=RedisFailedLinks(redis),
            send_limits=redis_send_limits(
                redis, url, per_second=per_second, per_group_minute=per_group_minute
            ),
        )

    def stores(
        self, *, cache_max_age_s: float, max_media_bytes: int, pseudonym_key: bytes
    ) -> RedisStores:
        return RedisStores(
            cache=RedisClipCache(self.redis, max_age_s=cache_max_age_s),
            media_store=RedisMediaStore(self.redis, max_bytes=max_media_bytes),
            chat_settings=RedisChatSettings(self.redis),
            trending=RedisTrending(self.redis, key=pseudonym_key),
            short_links=RedisShortLinks(self.redis),
        )

    def worker(
        self,
        codec: RequestCodec,
        handle: Callable[[VideoRequest, str], Awaitable[None]],
        *,
        concurrency: int,
    ) -> TaskiqWorker:
        return TaskiqWorker(self.broker, codec, handle, concurrency=concurrency)
