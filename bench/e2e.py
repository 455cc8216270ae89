"""The whole bot end to end on Telegram: cold request, cache hits, a crowd on one clip, a burst.

Run: .venv/bin/python -m bench.e2e   (about 1-2 minutes on an idle 2-core machine)
One process runs the real bot (tests.harness.running_bot, default settings) against the TikTok
and Telegram stand-ins on loopback, and measures in this order:

1. cold: message injected -> sendVideo received for the first request after start-up, beside
   yt-dlp alone extracting and downloading another post of the same clip in this process plus a
   raw upload of those bytes (bench.cold's ytdlp_alone and raw_upload). Target: ratio <= 1.10.
2. cache hits: the cold clip again through short links (vm.tiktok.com/CODE, a new code each
   time), one chat each, sequentially. Target: median <= 20 ms, no download.
3. one new clip asked for by 100 chats at the same moment. Targets: 1 download, 100 replies.
4. 200 distinct clips, one chat each, at once: throughput, peak RSS of this process (bot and
   stand-ins together; target <= 250 MB) and temporary files left in DATA_DIR/jobs after the
   bot stopped (target 0).
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import math
import os
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.cold import raw_upload, ytdlp_alone
from tests.harness import running_bot
from tests.standins.clips import Clip, make_clip
from tests.standins.telegram_api import ApiCall, FakeBotApi
from tests.standins.tiktok import TikTokStandIn

AUTHOR = "bench"
COLD_CHAT = 5000
RAW_CHAT = 1001
HIT_CHATS = range(20_000, 20_050)
CROWD_CHATS = range(30_000, 30_100)
BURST_CHATS = range(40_000, 40_200)
BURST_TIMEOUT_S = 150.0
LIBRARIES = ("yt-dlp", "python-telegram-bot", "discord.py", "aiohttp", "httpx")


def post_id(n: int) -> str:
    return f"7309876543210{n:06d}"


def post_url(post: str) -> str:
    return f"https://www.tiktok.com/@{AUTHOR}/video/{post}"


def send(api: FakeBotApi, text: str, chat: int) -> None:
    """A user writes to the bot in a private chat; each chat is its own user, as in real life
    (the bot's per-user rate limit would otherwise refuse most of this benchmark)."""
    api.inject_message(text, chat_id=chat, user_id=chat)


async def videos(
    api: FakeBotApi, wanted: Callable[[ApiCall], bool], count: int, within_s: float
) -> list[ApiCall]:
    """The first ``count`` sendVideo calls that match ``wanted``, once that many arrived."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        calls = api.calls_to("sendVideo")
        found = [call for call in calls if wanted(call)]
        if len(found) >= count:
            return found[:count]
        remaining = deadline - loop.time()
        try:
            if remaining <= 0:
                raise AssertionError
            await api.wait_for_call("sendVideo", count=len(calls) + 1, timeout=remaining)
        except AssertionError:
            raise TimeoutError(f"{len(found)} of {count} videos after {within_s:.0f} s") from None


def to_chats(chats: range) -> Callable[[ApiCall], bool]:
    return lambda call: call.params.get("chat_id") in chats


def to_chat(chat: int) -> Callable[[ApiCall], bool]:
    return lambda call: call.params.get("chat_id") == chat


def p95(values: list[float]) -> float:
    """Nearest-rank 95th percentile."""
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


def peak_rss_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024  # kilobytes on Linux


def row(label: str, result: str, target: str = "") -> None:
    print(f"{label:46}{result:>26}   {target}")


async def measure(work: Path, cold: Clip, small: Clip) -> None:
    async with TikTokStandIn() as tiktok, FakeBotApi() as api:
        cold_post, alone_post, crowd_post = post_id(0), post_id(1), post_id(2)
        burst_posts = [post_id(100 + n) for n in range(len(BURST_CHATS))]
        tiktok.add_video(cold_post, cold, author=AUTHOR)
        tiktok.add_video(alone_post, cold, author=AUTHOR)
        tiktok.add_video(crowd_post, small, author=AUTHOR)
        for post in burst_posts:
            tiktok.add_video(post, small, author=AUTHOR)
        codes = [f"ZMbench{n:03d}" for n in range(len(HIT_CHATS))]
        for code in codes:
            tiktok.add_short_link(code, f"/@{AUTHOR}/video/{cold_post}")
        api.add_chat(RAW_CHAT, "private")
        data_dir = work / "data"
        try:
            async with running_bot(tiktok, data_dir, telegram=api) as bot:
                settings = bot.engine.settings
                print(
                    "bot settings: defaults,"
                    f" MAX_CONCURRENT_DOWNLOADS={settings.max_concurrent_downloads}"
                    f" WORKERS={settings.workers} QUEUE_SIZE={settings.queue_size}"
                    f" MAX_CONCURRENT_ENCODES={settings.max_concurrent_encodes}"
                    f" (harness: DOWNLOAD_TIMEOUT_S={settings.download_timeout_s:.0f})"
                )
                row("", "result", "target")
                await bot.engine.warmed_up()

                # 1. Cold: the first request after start-up, then yt-dlp alone on another post.
                started = time.monotonic()
                send(api, post_url(cold_post), COLD_CHAT)
                [sent] = await videos(api, to_chat(COLD_CHAT), 1, 60.0)
                bot_s = sent.at - started
                await bot.engine.queue.join()
                fetched = await asyncio.to_thread(
                    ytdlp_alone, post_url(alone_post), tiktok.proxy_url, work
                )
                uploaded = await raw_upload(api, work / "alone.mp4", RAW_CHAT)
                alone_s = fetched + uploaded
                size_mb = cold.size / 1e6
                row(
                    f"1 cold: message -> sendVideo ({cold.duration:.0f} s, {size_mb:.1f} MB)",
                    f"{bot_s * 1000:.0f} ms",
                )
                row(
                    "  yt-dlp alone + raw upload",
                    f"{alone_s * 1000:.0f} ms ({fetched * 1000:.0f} + {uploaded * 1000:.0f})",
                )
                row("  ratio bot / alone", f"{bot_s / alone_s:.2f}", "<= 1.10")

                # 2. Cache hits: the same clip through short links, one after another.
                media_before = tiktok.media_requests
                hits: list[float] = []
                for chat, code in zip(HIT_CHATS, codes, strict=True):
                    started = time.monotonic()
                    send(api, f"https://vm.tiktok.com/{code}/", chat)
                    [sent] = await videos(api, to_chat(chat), 1, 30.0)
                    hits.append(sent.at - started)
                    await bot.engine.queue.join()
                median_ms, p95_ms = statistics.median(hits) * 1000, p95(hits) * 1000
                row(
                    f"2 cache hit via vm.tiktok.com/CODE, N={len(hits)}",
                    f"median {median_ms:.1f} ms, p95 {p95_ms:.1f} ms",
                    "median <= 20 ms",
                )
                row("  downloads during the hits", f"{tiktok.media_requests - media_before}", "0")

                # 3. One new clip, 100 chats at the same moment.
                media_before = tiktok.media_requests
                started = time.monotonic()
                for chat in CROWD_CHATS:
                    send(api, post_url(crowd_post), chat)
                sent_calls = await videos(api, to_chats(CROWD_CHATS), len(CROWD_CHATS), 60.0)
                crowd_s = max(call.at for call in sent_calls) - started
                await bot.engine.queue.join()
                replies = sum(map(to_chats(CROWD_CHATS), api.calls_to("sendVideo")))
                row(
                    f"3 one new clip, {len(CROWD_CHATS)} chats at once: downloads",
                    f"{tiktok.media_requests - media_before}",
                    "1",
                )
                row("  replies (sendVideo)", f"{replies}", f"{len(CROWD_CHATS)}")
                row("  wall time to the last reply", f"{crowd_s:.2f} s")

                # 4. 200 distinct clips at once.
                rss_before = peak_rss_mb()
                started = time.monotonic()
                for chat, post in zip(BURST_CHATS, burst_posts, strict=True):
                    send(api, post_url(post), chat)
                sent_calls = await videos(
                    api, to_chats(BURST_CHATS), len(BURST_CHATS), BURST_TIMEOUT_S
                )
                burst_s = max(call.at for call in sent_calls) - started
                await bot.engine.queue.join()
                row(
                    f"4 {len(BURST_CHATS)} distinct clips at once: all sent",
                    f"{burst_s:.1f} s, {len(BURST_CHATS) / burst_s:.1f} clips/s",
                )
                row(
                    "  peak RSS (this process, with stand-ins)",
                    f"{peak_rss_mb():.0f} MB (before: {rss_before:.0f})",
                    "<= 250 MB",
                )
                row(
                    "  peak RSS of a child (ffmpeg)",
                    f"{peak_rss_mb(resource.RUSAGE_CHILDREN):.0f} MB",
                )
        except AssertionError as err:
            # running_bot insists on an empty jobs directory; count what it found instead.
            if "temporary files left behind" not in str(err):
                raise
        left = sum(1 for _ in (data_dir / "jobs").rglob("*"))
        row("  temp files left in DATA_DIR/jobs after stop", f"{left}", "0")


async def run() -> None:
    with tempfile.TemporaryDirectory() as name:
        work = Path(name)
        cold = await asyncio.to_thread(
            make_clip, work / "cold.mp4", duration=5.0, width=720, height=1280
        )
        small = await asyncio.to_thread(make_clip, work / "small.mp4")
        print(
            f"clips: cold {cold.duration:.0f} s {cold.width}x{cold.height}"
            f" ({cold.size / 1e6:.1f} MB); others {small.duration:.0f} s"
            f" {small.width}x{small.height} ({small.size / 1e3:.0f} kB)"
        )
        await measure(work, cold, small)


def main() -> None:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(", ".join(f"{name} {importlib.metadata.version(name)}" for name in LIBRARIES))
    started = time.perf_counter()
    asyncio.run(run())
    print(f"(whole run {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
