"""The distributed mode beside the embedded one, as real processes on this machine.

Run: .venv/bin/python -m bench.scale   (about two minutes on an idle 2-core machine)
Every bot is a real process (`python -m bot`, `receive`, `work`) against the TikTok and Telegram
stand-ins and a real redis-server, all on loopback; the stand-ins run in this process. Times
are from the update's injection at the Bot API stand-in to the sendVideo it receives.

1. one new clip (a 2 s H.264 clip, one at a time, median of 5) and a cache hit (the same clip
   by another link form in another chat, median of 20): embedded (`python -m bot`, polling) vs
   distributed (1 receiver by webhook + 1 worker). Target: distributed <= 1.3x embedded.
2. a mixed burst, all at once: 12 new HEVC clips (re-encoded to H.264: CPU), 12 new H.264
   clips, 12 repeats by other link forms; with 1, 2 and 3 workers (WORKERS=4 each) behind one
   receiver: time until all 36 are answered. On 2 cores the ceiling is the CPU.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from tests.cluster import Cluster
from tests.redis_server import RedisServer
from tests.standins.clips import make_clip
from tests.standins.telegram_api import ApiCall, FakeBotApi
from tests.standins.tiktok import TikTokStandIn

NEW_RUNS = 5
HIT_RUNS = 20
BURST_EACH = 12
SETTINGS = {
    "LOG_LEVEL": "WARNING",
    "WORKERS": "4",
    "MAX_CONCURRENT_ENCODES": "1",
    "RATE_LIMIT_USER_PER_MIN": "1000",
    "RATE_LIMIT_CHAT_PER_MIN": "1000",
}


def post(n: int) -> str:
    return f"7309555000000{n:06d}"


def link(n: int) -> str:
    return f"https://www.tiktok.com/@bench/video/{post(n)}"


def other_form(n: int) -> str:
    return f"https://m.tiktok.com/v/{post(n)}.html"


def videos_to(api: FakeBotApi, chat: int) -> list[ApiCall]:
    return [
        call
        for call in api.calls
        if call.method == "sendVideo" and int(call.params["chat_id"]) == chat
    ]


async def until(condition: Callable[[], bool], within_s: float = 180.0) -> None:
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110 - the stand-in's state, polled
            await asyncio.sleep(0.005)


async def answer_time(api: FakeBotApi, text: str, chat: int) -> float:
    started = time.monotonic()
    api.inject_message(text, chat_id=chat, user_id=chat)
    await until(lambda: len(videos_to(api, chat)) == 1)
    return videos_to(api, chat)[0].at - started


async def latencies(api: FakeBotApi, first_post: int, first_chat: int) -> tuple[float, float]:
    """Median of new clips, then of cache hits on the first of them."""
    new = [await answer_time(api, link(first_post + n), first_chat + n) for n in range(NEW_RUNS)]
    await asyncio.sleep(0.5)
    hits = [
        await answer_time(api, other_form(first_post), first_chat + 100 + n)
        for n in range(HIT_RUNS)
    ]
    return statistics.median(new), statistics.median(hits)


HEVC_POSTS = range(200, 200 + BURST_EACH)
H264_POSTS = range(300, 300 + BURST_EACH)
REPEAT_POSTS = range(400, 400 + BURST_EACH)


async def burst(api: FakeBotApi, first_chat: int) -> float:
    """New HEVC clips, new H.264 clips and repeats, all at once: seconds until every one is
    answered. The repeats must have been fetched before."""
    texts = [link(n) for n in (*HEVC_POSTS, *H264_POSTS)]
    texts += [other_form(n) for n in REPEAT_POSTS]
    chats = [first_chat + n for n in range(len(texts))]
    started = time.monotonic()
    for text, chat in zip(texts, chats, strict=True):
        api.inject_message(text, chat_id=chat, user_id=chat)
    await until(lambda: all(videos_to(api, chat) for chat in chats))
    return max(videos_to(api, chat)[0].at for chat in chats) - started


async def main() -> None:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    with tempfile.TemporaryDirectory(prefix="reshare-bench-") as temp:
        root = Path(temp)
        h264 = make_clip(root / "h264.mp4")
        hevc = make_clip(root / "hevc.mp4", codec="hevc")
        async with TikTokStandIn() as tiktok, RedisServer(root / "redis") as redis:
            for n in range(1000):
                tiktok.add_video(post(n), hevc if 200 <= n < 300 else h264, author="bench")
            results: dict[str, tuple[float, float]] = {}
            for mode in ("embedded", "distributed"):
                async with FakeBotApi() as api:
                    bots = Cluster(root / mode, tiktok, redis, telegram=api, settings=SETTINGS)
                    try:
                        if mode == "embedded":
                            await bots.start("bot", "all", embedded=True)
                        else:
                            await bots.start("receiver", "receive")
                            await bots.start("worker-1", "work")
                        await answer_time(api, link(999 if mode == "embedded" else 998), 1)
                        base = 0 if mode == "embedded" else 50
                        results[mode] = await latencies(api, base, 10_000 + base * 1000)
                    finally:
                        await bots.stop_all()
            (new_e, hit_e), (new_d, hit_d) = results["embedded"], results["distributed"]
            print("\n1. latency, median (injected update -> sendVideo received)")
            print("| | embedded | distributed | ratio |")
            print("|---|---|---|---|")
            print(f"| new clip | {new_e * 1000:.0f} ms | {new_d * 1000:.0f} ms | "
                  f"{new_d / new_e:.2f} |")  # fmt: skip
            print(f"| cache hit | {hit_e * 1000:.1f} ms | {hit_d * 1000:.1f} ms | "
                  f"{hit_d / hit_e:.2f} |")  # fmt: skip
            print(f"\n2. mixed burst of {3 * BURST_EACH} (new HEVC, new H.264, repeats)")
            print("| workers | all answered in | requests/s |")
            print("|---|---|---|")
            for workers in (1, 2, 3):
                await redis.client().flushall()
                async with FakeBotApi() as api:
                    where = root / f"burst-{workers}"
                    bots = Cluster(where, tiktok, redis, telegram=api, settings=SETTINGS)
                    try:
                        await bots.start("receiver", "receive")
                        for n in range(workers):
                            await bots.start(f"worker-{n}", "work")
                        for n, repeat in enumerate(REPEAT_POSTS):
                            await answer_time(api, link(repeat), 90_000 + n)
                        took = await burst(api, first_chat=100_000)
                    finally:
                        await bots.stop_all()
                print(f"| {workers} | {took:.2f} s | {3 * BURST_EACH / took:.1f} |")


if __name__ == "__main__":
    asyncio.run(main())
