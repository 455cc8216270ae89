"""One contract for every port, held against both sets of implementations: embedded (SQLite,
files, memory) and distributed (Redis, a real redis-server on a free port)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.chat_settings import (
    AutoDetect,
    CaptionStyle,
    ChatSettings,
    FailureStyle,
    OriginalMessage,
    SlideshowMode,
)
from bot.codec import DataclassCodec, RequestCodec
from bot.links import Link, LinkKind
from bot.model import (
    CachedMedia,
    CacheKey,
    FailureKind,
    PlatformFile,
    Reason,
    StoredFile,
    VideoRequest,
)
from bot.ports import (
    ChatSettingsStore,
    ClipCache,
    FailedLinks,
    FetchHealth,
    HealthChange,
    HealthRule,
    JobQueue,
    Journal,
    MediaStore,
    RateLimits,
    SendLimits,
    SingleFlight,
    Verdict,
)
from bot.queue import AsyncioJobQueue
from bot.stores.media_files import FileMediaStore
from bot.stores.memory_flights import MemoryFlights
from bot.stores.memory_health import MemoryFailedLinks, MemoryFetchHealth
from bot.stores.memory_limits import MemoryRateLimits, MemorySendLimits
from bot.stores.redis_cache import RedisClipCache
from bot.stores.redis_flights import RedisFlights
from bot.stores.redis_health import RedisFailedLinks, RedisFetchHealth
from bot.stores.redis_journal import RedisJournal
from bot.stores.redis_limits import RedisRateLimits
from bot.stores.redis_media import RedisMediaStore
from bot.stores.redis_settings import RedisChatSettings
from bot.stores.send_limits import redis_send_limits
from bot.stores.sqlite_cache import SqliteCache
from bot.stores.sqlite_journal import SqliteJournal
from bot.stores.sqlite_settings import SqliteChatSettings
from bot.taskiq_jobs import LeasedStreamBroker, TaskiqJobQueue, TaskiqWorker
from tests.redis_server import RedisServer

MAX_AGE_S = 3600.0
KEY = CacheKey(platform="telegram", clip_id="TikTok:7300000000000000001", variant="budget=50")
MEDIA = CachedMedia(
    handle=PlatformFile("BAACAgIAAxkBAAIB"),
    width=360,
    height=640,
    duration=2.0,
    size=123_456,
    caption='{"clip_id":"1"}',
    stored_at=1_000.0,
)


class FakeClock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass(frozen=True, slots=True)
class ChatOrigin:
    chat_id: int
    message_id: int
    platform: str = "telegram"


def request(message_id: int, links: int = 1) -> VideoRequest:
    return VideoRequest(
        links=tuple(
            Link(
                site="TikTok",
                kind=LinkKind.VIDEO,
                url=f"https://www.tiktok.com/@a/video/{n}",
                clip_id=str(n),
                original=f"https://www.tiktok.com/@a/video/{n}",
            )
            for n in range(1, links + 1)
        ),
        origin=ChatOrigin(chat_id=7, message_id=message_id),
        budget_bytes=50_000_000,
    )


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def cache(redis: Redis | None, tmp_path: Path, clock: FakeClock) -> AsyncIterator[ClipCache]:
    store: ClipCache
    if redis is None:
        store = await SqliteCache.open(tmp_path / "cache.sqlite3", max_age_s=MAX_AGE_S, clock=clock)
    else:
        store = RedisClipCache(redis, max_age_s=MAX_AGE_S, clock=clock)
    try:
        yield store
    finally:
        await store.close()


def media_store(redis: Redis | None, tmp_path: Path, max_bytes: int) -> MediaStore:
    if redis is None:
        return FileMediaStore(tmp_path / "media", max_bytes=max_bytes)
    return RedisMediaStore(redis, max_bytes=max_bytes)


@pytest.fixture
def flights(redis: Redis | None) -> Callable[[], SingleFlight]:
    """A factory: each call is another process's view of the same single-flight."""
    if redis is None:
        shared = MemoryFlights()
        return lambda: shared
    client = redis
    return lambda: RedisFlights(client, lease_s=5.0)


@pytest.fixture
def limits(redis: Redis | None, request: pytest.FixtureRequest) -> Callable[[int, int], RateLimits]:
    if redis is None:
        return lambda user, chat: MemoryRateLimits(user_per_minute=user, chat_per_minute=chat)
    url = request.getfixturevalue("redis_server").url
    client = redis
    return lambda user, chat: RedisRateLimits(
        client, url, user_per_minute=user, chat_per_minute=chat
    )


@pytest.fixture
async def journal(redis: Redis | None, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Journal]:
    codec = RequestCodec({"telegram": DataclassCodec(ChatOrigin, scope="bot1")})
    store: Journal
    if redis is None:
        sqlite = SqliteJournal(tmp_path / "journal.sqlite3", codec, clock=clock)
        sqlite.open()
        store = sqlite
    else:
        store = RedisJournal(redis, codec, clock=clock)
    try:
        yield store
    finally:
        await store.close()


# ClipCache


async def test_cache_misses_an_unknown_clip(cache: ClipCache) -> None:
    assert await cache.get(KEY) is None


@pytest.mark.parametrize("handle", [PlatformFile("BAACAgIAAxkBAAIB"), StoredFile("ab" * 32)])
async def test_cache_gives_back_what_was_put(
    cache: ClipCache, handle: PlatformFile | StoredFile
) -> None:
    await cache.put(KEY, replace(MEDIA, handle=handle))
    assert await cache.get(KEY) == replace(MEDIA, handle=handle)


async def test_cache_put_replaces(cache: ClipCache) -> None:
    await cache.put(KEY, MEDIA)
    newer = replace(MEDIA, handle=PlatformFile("second"), size=1, stored_at=1_010.0)
    await cache.put(KEY, newer)
    assert await cache.get(KEY) == newer


async def test_cache_keys_are_kept_apart(cache: ClipCache) -> None:
    """Every part of the key counts, whatever characters it holds."""
    others = [
        replace(KEY, platform="discord"),
        replace(KEY, clip_id="TikTok:7300000000000000002"),
        replace(KEY, variant="budget=10"),
        CacheKey(platform='te"le', clip_id="a:b,c", variant="x]"),
    ]
    await cache.put(KEY, MEDIA)
    for n, other in enumerate(others):
        await cache.put(other, replace(MEDIA, handle=PlatformFile(f"other-{n}")))
    assert await cache.get(KEY) == MEDIA
    for n, other in enumerate(others):
        found = await cache.get(other)
        assert found is not None
        assert found.handle == PlatformFile(f"other-{n}")


async def test_cache_forgets(cache: ClipCache) -> None:
    await cache.put(KEY, MEDIA)
    await cache.forget(KEY)
    assert await cache.get(KEY) is None
    await cache.forget(KEY)  # forgetting twice is fine


async def test_cache_entries_expire(cache: ClipCache, clock: FakeClock) -> None:
    await cache.put(KEY, replace(MEDIA, stored_at=clock.now))
    clock.now += MAX_AGE_S - 1
    assert await cache.get(KEY) is not None
    clock.now += 2
    assert await cache.get(KEY) is None


# MediaStore


def write(path: Path, size: int, fill: bytes = b"v") -> Path:
    path.write_bytes(fill * size)
    return path


def keyed(n: int) -> CacheKey:
    return replace(KEY, clip_id=f"TikTok:{n}")


async def test_media_store_gives_back_the_bytes(redis: Redis | None, tmp_path: Path) -> None:
    store = media_store(redis, tmp_path, max_bytes=1_000)
    stored = await store.keep(KEY, write(tmp_path / "video.mp4", 100, b"x"))
    assert stored is not None
    (tmp_path / "video.mp4").unlink()  # the job's file is gone; the store's copy is not
    work = tmp_path / "job"
    work.mkdir()
    path = await store.open(stored, work)
    assert path is not None
    assert path.read_bytes() == b"x" * 100


async def test_media_store_refuses_what_exceeds_its_cap(
    redis: Redis | None, tmp_path: Path
) -> None:
    store = media_store(redis, tmp_path, max_bytes=100)
    assert await store.keep(KEY, write(tmp_path / "big", 101)) is None


async def test_media_store_unknown_or_foreign_names_are_misses(
    redis: Redis | None, tmp_path: Path
) -> None:
    store = media_store(redis, tmp_path, max_bytes=100)
    assert await store.open(StoredFile("0" * 64), tmp_path) is None
    assert await store.open(StoredFile("../../etc/passwd"), tmp_path) is None


async def test_media_store_evicts_the_least_recently_used(
    redis: Redis | None, tmp_path: Path
) -> None:
    store = media_store(redis, tmp_path, max_bytes=300)
    kept = [await store.keep(keyed(n), write(tmp_path / f"s{n}", 100)) for n in range(3)]
    assert all(kept)
    # A use makes the first the most recently used: the second goes first.
    await asyncio.sleep(0.01)
    first = kept[0]
    assert first is not None
    assert await store.open(first, tmp_path) is not None
    await asyncio.sleep(0.01)
    assert await store.keep(keyed(3), write(tmp_path / "s3", 100)) is not None
    found = [await store.open(s, tmp_path) is not None for s in kept if s is not None]
    assert found == [True, False, True]


# SingleFlight


async def test_single_flight_lets_one_hold_a_key(flights: Callable[[], SingleFlight]) -> None:
    events: list[str] = []
    entered = asyncio.Event()

    async def first() -> None:
        async with flights().hold("clip"):
            events.append("first in")
            entered.set()
            await asyncio.sleep(0.2)
            events.append("first out")

    async def second() -> None:
        await entered.wait()
        async with flights().hold("clip"):
            events.append("second in")

    await asyncio.wait_for(asyncio.gather(first(), second()), 10)
    assert events == ["first in", "first out", "second in"]


async def test_single_flight_keys_do_not_block_each_other(
    flights: Callable[[], SingleFlight],
) -> None:
    async with flights().hold("a"):
        async with asyncio.timeout(2):
            async with flights().hold("b"):
                pass


async def test_single_flight_lets_go_when_the_holder_is_cancelled(
    flights: Callable[[], SingleFlight],
) -> None:
    holding = asyncio.Event()

    async def holder() -> None:
        async with flights().hold("clip"):
            holding.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(holder())
    await holding.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    async with asyncio.timeout(2):
        async with flights().hold("clip"):
            pass


async def test_a_dead_holder_lets_go_after_its_lease(redis_server: RedisServer) -> None:
    """A process killed while holding (no release, no renewal) blocks others for one lease."""
    client = Redis.from_url(redis_server.url)
    try:
        await client.set("reshare:flight:clip", "dead-holder", px=300)
        flights = RedisFlights(client, lease_s=5.0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with asyncio.timeout(5):
            async with flights.hold("clip"):
                waited = loop.time() - started
        assert 0.2 < waited < 2.0
    finally:
        await client.aclose()


async def test_a_living_holder_keeps_its_hold_past_the_lease(redis_server: RedisServer) -> None:
    client = Redis.from_url(redis_server.url)
    try:
        flights = RedisFlights(client, lease_s=0.3)
        async with flights.hold("clip"):
            await asyncio.sleep(1.0)  # three leases: renewed meanwhile
            assert not await client.set("reshare:flight:clip", "other", nx=True, px=1000)
    finally:
        await client.aclose()


# RateLimits


async def test_rate_limits_count_a_user_and_say_it_once(
    limits: Callable[[int, int], RateLimits],
) -> None:
    rl = limits(3, 100)
    verdicts = [await rl.check("u1", "c1", 1) for _ in range(6)]
    assert verdicts == [Verdict.ALLOW] * 3 + [Verdict.REFUSE_AND_SAY] + [Verdict.REFUSE_QUIETLY] * 2
    assert await rl.check("u2", "c1", 1) is Verdict.ALLOW


async def test_rate_limits_count_a_chat_across_its_users(
    limits: Callable[[int, int], RateLimits],
) -> None:
    rl = limits(100, 4)
    assert [await rl.check(f"u{n}", "group", 2) for n in range(3)] == [
        Verdict.ALLOW,
        Verdict.ALLOW,
        Verdict.REFUSE_AND_SAY,
    ]


async def test_rate_limits_count_links_not_messages(
    limits: Callable[[int, int], RateLimits],
) -> None:
    rl = limits(3, 100)
    assert await rl.check("u1", "c1", 3) is Verdict.ALLOW
    assert await rl.check("u1", "c1", 1) is Verdict.REFUSE_AND_SAY


# Journal


async def test_journal_recognises_a_redelivery(journal: Journal) -> None:
    assert await journal.accept(request(1))
    assert not await journal.accept(request(1))
    await journal.answered(request(1).origin)
    assert not await journal.accept(request(1))  # the tombstone remembers it


async def test_journal_gives_back_what_is_unanswered_oldest_first(
    journal: Journal, clock: FakeClock
) -> None:
    for n in (3, 1, 2):
        await journal.accept(request(n))
        clock.now += 1
    await journal.answered(request(1).origin)
    found = await journal.take_unanswered()
    assert [entry.request for entry in found] == [request(3), request(2)]
    assert [entry.attempts for entry in found] == [1, 1]
    assert [entry.attempts for entry in await journal.take_unanswered()] == [2, 2]


async def test_journal_skips_the_links_already_answered(journal: Journal) -> None:
    three = request(1, links=3)
    await journal.accept(three)
    assert await journal.remaining(three) == three
    await journal.link_answered(three.origin)
    left = await journal.remaining(three)
    assert left is not None
    assert left.links == three.links[1:]
    [entry] = await journal.take_unanswered()
    assert entry.request.links == three.links[1:]
    await journal.link_answered(three.origin)
    await journal.link_answered(three.origin)
    assert await journal.remaining(three) is None
    await journal.answered(three.origin)
    assert await journal.remaining(three) is None
    assert await journal.take_unanswered() == []


async def test_journal_passes_what_it_never_accepted(journal: Journal) -> None:
    assert await journal.remaining(request(9)) == request(9)


# SendLimits


@pytest.fixture
def send_limits(redis: Redis | None, server: RedisServer | None) -> Callable[[], SendLimits]:
    """A factory: each call is another worker's view of the bot's flood limits."""
    if redis is None or server is None:
        shared = MemorySendLimits(per_second=3, per_group_minute=2)
        return lambda: shared
    client, url = redis, server.url
    return lambda: redis_send_limits(client, url, per_second=3, per_group_minute=2)


async def test_send_limits_hold_a_message_past_the_bots_rate(
    send_limits: Callable[[], SendLimits],
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(3):
        await send_limits().admit(None)
    assert loop.time() - started < 0.5
    await send_limits().admit(None)  # another worker: the same window
    assert loop.time() - started > 0.5


async def test_send_limits_hold_a_group_past_its_minute_and_no_other(
    send_limits: Callable[[], SendLimits],
) -> None:
    await send_limits().admit("-100")
    await send_limits().admit("-100")
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(send_limits().admit("-100"), 0.5)
    await asyncio.wait_for(send_limits().admit("-200"), 0.5)


# JobQueue


@pytest.fixture
async def job_queue(
    redis: Redis | None, server: RedisServer | None
) -> AsyncIterator[tuple[JobQueue, list[VideoRequest]]]:
    """A queue and what its workers were handed."""
    handled: list[VideoRequest] = []

    async def handle(job: VideoRequest) -> None:
        handled.append(job)

    if redis is None or server is None:
        local = AsyncioJobQueue(workers=2, maxsize=10)
        local.start(handle)
        try:
            yield local, handled
        finally:
            await local.stop()
        return
    codec = RequestCodec({"telegram": DataclassCodec(ChatOrigin, scope="bot1")})
    broker = LeasedStreamBroker(server.url, lease_s=5.0)
    await broker.startup()
    worker = TaskiqWorker(broker, codec, lambda job, _key: handle(job), concurrency=2)
    worker.start()
    try:
        yield TaskiqJobQueue(broker, codec), handled
    finally:
        await worker.stop()
        await broker.shutdown()


async def test_job_queue_hands_each_request_to_a_worker_once(
    job_queue: tuple[JobQueue, list[VideoRequest]],
) -> None:
    queue, handled = job_queue
    sent = [request(n, links=n % 3 + 1) for n in range(1, 6)]
    for one in sent:
        assert await queue.submit(one)
    async with asyncio.timeout(10):
        while len(handled) < len(sent):  # noqa: ASYNC110 - the workers' record, polled
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.2)
    assert sorted(handled, key=lambda one: one.origin.message_id) == sent  # type: ignore[attr-defined]


async def test_journal_counts_the_runs_of_a_request(journal: Journal) -> None:
    assert await journal.attempt(request(1).origin) == 0  # never written down
    await journal.accept(request(1))
    assert [await journal.attempt(request(1).origin) for _ in range(3)] == [1, 2, 3]


RULE = HealthRule(failures=5, attempts=10, window_s=600.0, recover_after=3)


def fetch_health(redis: Redis | None, clock: FakeClock) -> FetchHealth:
    if redis is None:
        return MemoryFetchHealth(RULE, clock=clock)
    return RedisFetchHealth(redis, RULE, clock=clock)


async def test_health_breaks_at_the_threshold_and_says_so_once(
    redis: Redis | None, clock: FakeClock
) -> None:
    health = fetch_health(redis, clock)
    for _ in range(5):
        assert await health.record("tiktok", None) is None
    changes = [await health.record("tiktok", FailureKind.CHALLENGE) for _ in range(4)]
    assert changes == [None] * 4
    assert await health.incident("tiktok") is None
    change = await health.record("tiktok", FailureKind.CHALLENGE)
    assert change == HealthChange("tiktok", True, FailureKind.CHALLENGE, 5, 10)
    assert await health.incident("tiktok") is FailureKind.CHALLENGE
    # The incident goes on: more failures say nothing new.
    assert [await health.record("tiktok", FailureKind.CHALLENGE) for _ in range(5)] == [None] * 5


async def test_health_names_the_most_frequent_kind(redis: Redis | None, clock: FakeClock) -> None:
    health = fetch_health(redis, clock)
    kinds = [FailureKind.SERVER_ERROR, FailureKind.BLOCKED_IP, FailureKind.BLOCKED_IP]
    kinds += [FailureKind.BLOCKED_IP, FailureKind.SERVER_ERROR]
    changes = [await health.record("tiktok", kind) for kind in kinds]
    assert changes[-1] == HealthChange("tiktok", True, FailureKind.BLOCKED_IP, 5, 5)


async def test_health_forgets_failures_older_than_the_window(
    redis: Redis | None, clock: FakeClock
) -> None:
    health = fetch_health(redis, clock)
    for _ in range(4):
        await health.record("tiktok", FailureKind.EXTRACTION)
    clock.now += 601
    assert await health.record("tiktok", FailureKind.EXTRACTION) is None
    assert await health.incident("tiktok") is None


async def test_health_counts_only_the_last_attempts(redis: Redis | None, clock: FakeClock) -> None:
    health = fetch_health(redis, clock)
    for _ in range(4):
        await health.record("tiktok", FailureKind.EXTRACTION)
    for _ in range(10):
        await health.record("tiktok", None)
    # The four failures fell out of the last ten attempts.
    assert await health.record("tiktok", FailureKind.EXTRACTION) is None


async def test_health_recovers_after_successes_in_a_row_and_says_so_once(
    redis: Redis | None, clock: FakeClock
) -> None:
    health = fetch_health(redis, clock)
    for _ in range(5):
        await health.record("tiktok", FailureKind.LOGIN_WALL)
    assert await health.record("tiktok", None) is None
    assert await health.record("tiktok", FailureKind.LOGIN_WALL) is None
    assert await health.record("tiktok", None) is None
    assert await health.record("tiktok", None) is None
    change = await health.record("tiktok", None)
    assert change is not None
    assert (change.broken, change.kind) == (False, FailureKind.LOGIN_WALL)
    assert await health.incident("tiktok") is None
    assert await health.record("tiktok", None) is None


async def test_health_keeps_sites_apart(redis: Redis | None, clock: FakeClock) -> None:
    health = fetch_health(redis, clock)
    for _ in range(5):
        await health.record("tiktok", FailureKind.CHALLENGE)
    assert await health.incident("youtube") is None
    assert await health.record("youtube", FailureKind.CHALLENGE) is None


async def test_health_tells_one_of_many_concurrent_recorders(
    redis: Redis | None, clock: FakeClock
) -> None:
    health = fetch_health(redis, clock)
    changes = await asyncio.gather(
        *(health.record("tiktok", FailureKind.BLOCKED_IP) for _ in range(20))
    )
    assert [change for change in changes if change is not None] == [
        HealthChange("tiktok", True, FailureKind.BLOCKED_IP, 5, 5)
    ]


def failed_links(redis: Redis | None) -> FailedLinks:
    return MemoryFailedLinks() if redis is None else RedisFailedLinks(redis)


async def test_failed_links_recall_within_their_time(redis: Redis | None) -> None:
    links = failed_links(redis)
    assert await links.recall("tiktok:1") is None
    await links.remember("tiktok:1", Reason.PRIVATE, 0.3)
    await links.remember("tiktok:2", Reason.BLOCKED, 30)
    assert await links.recall("tiktok:1") is Reason.PRIVATE
    assert await links.recall("tiktok:2") is Reason.BLOCKED
    await asyncio.sleep(0.4)
    assert await links.recall("tiktok:1") is None
    assert await links.recall("tiktok:2") is Reason.BLOCKED


async def test_failed_links_with_no_time_are_not_kept(redis: Redis | None) -> None:
    links = failed_links(redis)
    await links.remember("tiktok:1", Reason.PRIVATE, 0)
    assert await links.recall("tiktok:1") is None


@pytest.fixture
async def chat_settings(redis: Redis | None, tmp_path: Path) -> AsyncIterator[ChatSettingsStore]:
    store: ChatSettingsStore
    if redis is None:
        store = await SqliteChatSettings.open(tmp_path / "settings.sqlite3")
    else:
        started = RedisChatSettings(redis)
        await started.start()
        store = started
    try:
        yield store
    finally:
        await store.close()


CHOSEN = ChatSettings(
    auto_detect=AutoDetect.ON_REQUEST,
    caption=CaptionStyle.LINK,
    original=OriginalMessage.DELETE,
    failures=FailureStyle.SILENT,
    slideshow=SlideshowMode.VIDEO,
    language="es",
    trending=False,
)


async def test_chat_settings_default_to_the_platform_s_own(
    chat_settings: ChatSettingsStore,
) -> None:
    assert await chat_settings.get("telegram:chat:-100") == ChatSettings()


async def test_chat_settings_give_back_what_was_put_and_keep_chats_apart(
    chat_settings: ChatSettingsStore,
) -> None:
    await chat_settings.put("telegram:chat:-100", CHOSEN)
    assert await chat_settings.get("telegram:chat:-100") == CHOSEN
    assert await chat_settings.get("telegram:chat:-200") == ChatSettings()
    changed = replace(CHOSEN, language=None, trending=True)
    await chat_settings.put("telegram:chat:-100", changed)
    assert await chat_settings.get("telegram:chat:-100") == changed
    await chat_settings.put("telegram:chat:-100", ChatSettings())
    assert await chat_settings.get("telegram:chat:-100") == ChatSettings()


async def test_chat_settings_outlive_the_store(redis: Redis | None, tmp_path: Path) -> None:
    first: ChatSettingsStore
    again: ChatSettingsStore
    if redis is None:
        first = await SqliteChatSettings.open(tmp_path / "settings.sqlite3")
        await first.put("discord:guild:1", CHOSEN)
        await first.close()
        again = await SqliteChatSettings.open(tmp_path / "settings.sqlite3")
    else:
        first = RedisChatSettings(redis)
        await first.put("discord:guild:1", CHOSEN)
        await first.close()
        again = RedisChatSettings(redis)
    try:
        assert await again.get("discord:guild:1") == CHOSEN
    finally:
        await again.close()


async def test_a_change_reaches_every_process_that_read_the_chat_before(
    redis_server: RedisServer,
) -> None:
    one, two = Redis.from_url(redis_server.url), Redis.from_url(redis_server.url)
    reader, writer = RedisChatSettings(one), RedisChatSettings(two)
    await reader.start()
    await writer.start()
    try:
        assert await reader.get("telegram:chat:-100") == ChatSettings()  # now kept in memory
        await writer.put("telegram:chat:-100", CHOSEN)
        # The notice comes by pub/sub, a moment after the write: read until it has come.
        seen = [await reader.get("telegram:chat:-100")]
        for _ in range(500):
            if seen[-1] == CHOSEN:
                break
            await asyncio.sleep(0.01)
            seen.append(await reader.get("telegram:chat:-100"))
        assert seen[-1] == CHOSEN
    finally:
        await reader.close()
        await writer.close()
        await one.aclose()
        await two.aclose()


def test_settings_of_a_newer_release_read_as_far_as_known() -> None:
    text = '{"caption":"link","colour":"blue","failures":"confetti","language":7}'
    assert ChatSettings.from_json(text) == ChatSettings(caption=CaptionStyle.LINK)
    assert ChatSettings.from_json("not json") == ChatSettings()
    assert ChatSettings.from_json(CHOSEN.to_json()) == CHOSEN
