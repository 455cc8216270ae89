"""The `Trending` contract (a chat's reshares for `/top`), held against both implementations:
SQLite and Redis (a real redis-server on a free port), as in test_store_contracts."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from redis.asyncio import Redis

from bot.ports import Trending, TrendingClip
from bot.stores.redis_trending import RedisTrending
from bot.stores.redis_values import raw, text
from bot.stores.sqlite_trending import SqliteTrending
from tests.test_store_contracts import FakeClock

DAY = 24 * 3600.0
NOW = 1_800_000_000.0
CHAT = "telegram:chat:-1001234"
OTHER_CHAT = "discord:guild:42"
# Distinctive, so that finding them in stored bytes cannot be a coincidence.
ALICE = "telegram:user:918273645"
BOB = "telegram:user:564738291"
CAROL = "telegram:user:102938475"
# The deployment's secret that keys the pseudonyms (adapters.runtime derives it from the tokens).
KEY = b"a deployment's pseudonym key"


def link(clip: str) -> str:
    return f"https://www.tiktok.com/@author/video/{clip}"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(NOW)


Opener = Callable[..., Awaitable[Trending]]


@pytest.fixture
async def opener(redis: Redis | None, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Opener]:
    """Opens a store (keyword arguments: the pseudonyms' key, keep_s, max_events); closes all it
    opened at the end."""
    opened: list[Trending] = []

    async def open_store(key: bytes = KEY, **limits: float) -> Trending:
        keep_s = float(limits.get("keep_s", 7 * DAY))
        max_events = int(limits.get("max_events", 10_000))
        store: Trending
        if redis is None:
            store = await SqliteTrending.open(
                tmp_path / "trending.sqlite3",
                key=key,
                keep_s=keep_s,
                max_events=max_events,
                clock=clock,
            )
        else:
            store = RedisTrending(redis, key=key, keep_s=keep_s, max_events=max_events, clock=clock)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        await store.close()


@pytest.fixture
async def trending(opener: Opener) -> Trending:
    return await opener()


async def test_an_unknown_chat_has_no_top(trending: Trending) -> None:
    assert await trending.top(CHAT, since=0, limit=10) == []


async def test_counts_times_and_different_people(trending: Trending) -> None:
    for user in (ALICE, ALICE, BOB, ALICE):
        await trending.count(CHAT, "1", link("1"), user, NOW - 60)
    await trending.count(CHAT, "2", link("2"), CAROL, NOW - 30)
    assert await trending.top(CHAT, since=NOW - 7 * DAY, limit=10) == [
        TrendingClip("1", link("1"), times=4, people=2),
        TrendingClip("2", link("2"), times=1, people=1),
    ]


async def test_orders_by_times_then_people_then_the_latest(trending: Trending) -> None:
    # "a": 3 times by 1; "b": 3 times by 3; "c": 2 by 2, latest at NOW-10; "d": 2 by 2, at NOW-20.
    for user in (ALICE, ALICE, ALICE):
        await trending.count(CHAT, "a", link("a"), user, NOW - 50)
    for user in (ALICE, BOB, CAROL):
        await trending.count(CHAT, "b", link("b"), user, NOW - 100)
    await trending.count(CHAT, "c", link("c"), ALICE, NOW - 200)
    await trending.count(CHAT, "c", link("c"), BOB, NOW - 10)
    await trending.count(CHAT, "d", link("d"), ALICE, NOW - 20)
    await trending.count(CHAT, "d", link("d"), BOB, NOW - 30)
    top = await trending.top(CHAT, since=0, limit=10)
    assert [(clip.clip_id, clip.times, clip.people) for clip in top] == [
        ("b", 3, 3),
        ("a", 3, 1),
        ("c", 2, 2),
        ("d", 2, 2),
    ]
    assert [clip.clip_id for clip in await trending.top(CHAT, since=0, limit=2)] == ["b", "a"]
    assert await trending.top(CHAT, since=0, limit=0) == []


async def test_counts_only_reshares_since_the_given_time(trending: Trending) -> None:
    await trending.count(CHAT, "old", link("old"), ALICE, NOW - 3 * DAY)
    await trending.count(CHAT, "old", link("old"), BOB, NOW - 3 * DAY)
    await trending.count(CHAT, "both", link("both"), ALICE, NOW - 3 * DAY)
    await trending.count(CHAT, "both", link("both"), ALICE, NOW - 60)
    await trending.count(CHAT, "new", link("new"), BOB, NOW - 60)
    assert await trending.top(CHAT, since=NOW - DAY, limit=10) == [
        TrendingClip("both", link("both"), times=1, people=1),
        TrendingClip("new", link("new"), times=1, people=1),
    ]
    week = await trending.top(CHAT, since=NOW - 7 * DAY, limit=10)
    assert [(clip.clip_id, clip.times) for clip in week] == [("old", 2), ("both", 2), ("new", 1)]


async def test_forgets_reshares_older_than_its_window(opener: Opener, clock: FakeClock) -> None:
    trending = await opener(keep_s=3600)
    await trending.count(CHAT, "1", link("1"), ALICE, NOW - 1800)
    await trending.count(CHAT, "2", link("2"), ALICE, NOW - 1800)
    await trending.count(CHAT, "2", link("2"), BOB, NOW - 60)
    # However early `since` is, nothing older than the window is reported.
    assert [clip.clip_id for clip in await trending.top(CHAT, since=0, limit=10)] == ["2", "1"]
    clock.now = NOW + 1900
    await trending.count(CHAT, "3", link("3"), CAROL, NOW + 1900)
    assert await trending.top(CHAT, since=0, limit=10) == [
        TrendingClip("3", link("3"), times=1, people=1),
        TrendingClip("2", link("2"), times=1, people=1),
    ]
    # A reshare already out of the window when counted is not kept either.
    await trending.count(CHAT, "4", link("4"), CAROL, NOW - DAY)
    assert [clip.clip_id for clip in await trending.top(CHAT, since=0, limit=10)] == ["3", "2"]


async def test_keeps_at_most_its_number_of_reshares_per_chat_newest(opener: Opener) -> None:
    trending = await opener(max_events=5)
    for n in range(4):
        await trending.count(CHAT, "old", link("old"), ALICE, NOW - 100 + n)
    for n in range(4):
        await trending.count(CHAT, "new", link("new"), BOB, NOW - 50 + n)
    await trending.count(OTHER_CHAT, "other", link("other"), BOB, NOW - 200)
    assert await trending.top(CHAT, since=0, limit=10) == [
        TrendingClip("new", link("new"), times=4, people=1),
        TrendingClip("old", link("old"), times=1, people=1),
    ]
    assert await trending.top(OTHER_CHAT, since=0, limit=10) == [
        TrendingClip("other", link("other"), times=1, people=1)
    ]


async def test_counts_are_kept_for_another_process_and_after_a_restart(opener: Opener) -> None:
    first = await opener()
    await first.count(CHAT, "1", link("1"), ALICE, NOW - 60)
    second = await opener()
    await second.count(CHAT, "1", link("1"), BOB, NOW - 30)
    assert await first.top(CHAT, since=0, limit=10) == [
        TrendingClip("1", link("1"), times=2, people=2)
    ]
    await first.close()
    await second.close()
    assert await (await opener()).top(CHAT, since=0, limit=10) == [
        TrendingClip("1", link("1"), times=2, people=2)
    ]


async def test_keeps_chats_apart_and_forgets_only_the_chat_asked(trending: Trending) -> None:
    await trending.count(CHAT, "1", link("1"), ALICE, NOW - 60)
    await trending.count(CHAT, "1", link("1"), BOB, NOW - 60)
    await trending.count(OTHER_CHAT, "1", link("1"), ALICE, NOW - 60)
    await trending.count(OTHER_CHAT, "2", link("2"), ALICE, NOW - 60)
    assert await trending.top(CHAT, since=0, limit=10) == [
        TrendingClip("1", link("1"), times=2, people=2)
    ]
    await trending.forget(CHAT)
    assert await trending.top(CHAT, since=0, limit=10) == []
    assert [clip.clip_id for clip in await trending.top(OTHER_CHAT, since=0, limit=10)] == [
        "1",
        "2",
    ]
    # Counting starts afresh after a forget.
    await trending.count(CHAT, "3", link("3"), CAROL, NOW - 10)
    assert await trending.top(CHAT, since=0, limit=10) == [
        TrendingClip("3", link("3"), times=1, people=1)
    ]


async def test_shows_the_latest_link_of_a_clip(trending: Trending) -> None:
    await trending.count(CHAT, "1", "https://www.tiktok.com/@_/video/1", ALICE, NOW - 60)
    await trending.count(CHAT, "1", link("1"), BOB, NOW - 30)
    assert await trending.top(CHAT, since=0, limit=1) == [
        TrendingClip("1", link("1"), times=2, people=2)
    ]


async def test_counts_every_one_of_concurrent_reshares(trending: Trending) -> None:
    users = [f"telegram:user:{n}" for n in range(10)]
    await asyncio.gather(
        *(trending.count(CHAT, "1", link("1"), users[n % 10], NOW - n) for n in range(50))
    )
    assert await trending.top(CHAT, since=0, limit=10) == [
        TrendingClip("1", link("1"), times=50, people=10)
    ]


async def test_keeps_no_user_id(
    trending: Trending, redis: Redis | None, tmp_path: Path, mode: str
) -> None:
    for user in (ALICE, BOB, CAROL):
        await trending.count(CHAT, "7301", link("7301"), user, NOW - 60)
        await trending.count(OTHER_CHAT, "7302", link("7302"), user, NOW - 60)
    assert (await trending.top(CHAT, since=0, limit=1))[0].people == 3
    stored: list[bytes] = []
    if redis is not None:
        async for key in redis.scan_iter():
            stored.append(raw(key))
            kind = text(await redis.type(key))
            if kind == "string":
                stored.append(raw(await redis.get(key)))
            elif kind == "zset":
                stored.extend(raw(member) for member in await redis.zrange(key, 0, -1))
            elif kind == "hash":
                for field, value in (await redis.hgetall(key)).items():
                    stored += [raw(field), raw(value)]
            else:
                raise AssertionError(f"unexpected {kind} at {key!r}")
    else:
        await trending.close()  # checkpoints the WAL into the file
    # Every file of the test (the SQLite file and its WAL, or redis-server's append-only file).
    stored.extend(path.read_bytes() for path in tmp_path.rglob("*") if path.is_file())
    everything = b"\n".join(stored)
    assert b"7301" in everything, f"nothing of the {mode} store was read"
    for user in (ALICE, BOB, CAROL):
        for form in (user, user.rsplit(":", 1)[1]):
            assert form.encode() not in everything
        # Nor a hash anyone could compute from a guessed id: the pseudonym is keyed.
        for chat in (CHAT, OTHER_CHAT):
            plain = hashlib.sha256(f"{len(chat)}:{chat}\0{user}".encode()).hexdigest()
            assert plain[:16].encode() not in everything


async def test_a_person_is_written_down_under_the_deployment_s_key(opener: Opener) -> None:
    first = await opener()
    await first.count(CHAT, "1", link("1"), ALICE, NOW - 60)
    same_key = await opener()
    await same_key.count(CHAT, "1", link("1"), ALICE, NOW - 50)
    assert (await first.top(CHAT, since=0, limit=1))[0].people == 1
    other_key = await opener(key=b"another deployment's key")
    await other_key.count(CHAT, "1", link("1"), ALICE, NOW - 40)
    assert (await first.top(CHAT, since=0, limit=1))[0].people == 2


async def kept(redis: Redis | None, tmp_path: Path) -> tuple[int, set[str]]:
    """What the store holds, read behind its back: how many reshares, and of which clips."""
    if redis is not None:
        events = await redis.zrange(f"reshare:trending:{CHAT}:events", 0, -1)
        links = await redis.hkeys(f"reshare:trending:{CHAT}:links")
        clips = await redis.zrange(f"reshare:trending:{CHAT}:clips", 0, -1)
        assert set(links) == set(clips)
        return len(events), {text(clip) for clip in clips}
    with contextlib.closing(sqlite3.connect(tmp_path / "trending.sqlite3")) as db:
        rows = db.execute("SELECT clip_id FROM trending_reshares WHERE chat = ?", (CHAT,))
        found = [str(row[0]) for row in rows]
    return len(found), set(found)


async def test_deletes_what_it_no_longer_reports(
    opener: Opener, clock: FakeClock, redis: Redis | None, tmp_path: Path
) -> None:
    trending = await opener(keep_s=3600, max_events=3)
    await trending.count(CHAT, "1", link("1"), ALICE, NOW - 1800)
    for n in range(3):
        await trending.count(CHAT, "2", link("2"), BOB, NOW - 60 + n)
    assert await kept(redis, tmp_path) == (3, {"2"})
    clock.now = NOW + 3600
    await trending.count(CHAT, "3", link("3"), ALICE, NOW + 3600)
    assert await kept(redis, tmp_path) == (1, {"3"})
    if redis is not None:
        # A chat gone quiet leaves nothing behind once its window has passed.
        async for key in redis.scan_iter(f"reshare:trending:{CHAT}:*"):
            assert 0 < await redis.pttl(key) <= 3_600_000
