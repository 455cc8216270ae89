"""The whole bot end to end on Telegram: cold request, cache hits, a crowd, a burst, inline mode.

Run: .venv/bin/python -m bench.e2e   (about a minute on an idle 2-core machine)
One process runs the real bot (tests.harness.running_bot, default core settings) against the
TikTok and Telegram stand-ins on loopback; every chat is a private chat of its own user. In order:

1. cold: message injected -> sendVideo received for the first request after start-up (after
   warm-up), beside yt-dlp alone extracting and downloading another post of the same clip in
   this process plus a raw upload of those bytes (bench.cold's ytdlp_alone and raw_upload), on
   its first run (the ratio's target, <= 1.10) and again warm (for context).
2. cache hits: the cold clip again through short links (vm.tiktok.com/CODE, a new code each
   time), 50 requests one after another, back to back and then paced at 10/s (PTB's rate
   limiter lets the bot make 30 Bot API calls a second). Target: median <= 20 ms, no download.
3. one new clip asked for by 100 chats at the same moment. Targets: 1 download, 100 replies.
4. 200 distinct clips, one chat each, at once: throughput; peak RSS of this process, which
   holds the stand-ins too (the Telegram stand-in keeps only the sizes of uploads, as a real
   Bot API server holds them elsewhere) (target <= 250 MB);
   temporary files left in DATA_DIR/jobs after the bot stopped (target 0).
5. inline mode: a query holding the cold clip's link, answered with the cached video by its file
   id (inline query update -> answerInlineQuery), 50 queries by 50 people one after another.
   Target: median <= 20 ms, no download. Then new clips sent inline: the placeholder chosen ->
   the video edited in (chosen_inline_result -> editMessageMedia), beside the same kind of clip
   asked for by a message (message -> sendVideo), 5 of each.
6. at the process boundary (bench.boundary, also runnable alone): `python -m bot` as a real
   process, the TikTok stand-in in a process of its own, times on the Bot API stand-in's clock
   (update handed by getUpdates -> sendVideo arrived): a new ~1 MB clip warm (median of 5), 5
   and 20 new clips at once, the bot process's peak RSS after the 20, cache hits by short
   links, and a per-stage table (resolve, extract, download, probe, thumbnail, upload).
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

from adapters.runtime import Reshare
from adapters.telegram.limiter import MESSAGE_ENDPOINTS
from bench import boundary
from bench.cold import raw_upload, ytdlp_alone
from bot.download_process import ProcessDownloader
from tests.harness import jobs_done, running_bot
from tests.standins.clips import Clip, make_clip
from tests.standins.telegram_api import ApiCall, FakeBotApi
from tests.standins.tiktok import TikTokStandIn

AUTHOR = "bench"
COLD_CHAT = 5000
RAW_CHAT = 1001
HITS = 50
HIT_PACE_S = 0.1
HIT_CHATS = range(20_000, 20_000 + 2 * HITS)
INLINE_USERS = range(50_000, 50_000 + HITS)
INLINE_NEW = 5
STORAGE_CHAT = -1009000000000
SHORT_CODES = [f"ZMbench{n:03d}" for n in range(2 * HITS)]
CROWD_CHATS = range(30_000, 30_100)
BURST_CHATS = range(40_000, 40_200)
BURST_TIMEOUT_S = 150.0
# PTB's AIORateLimiter lets 30 calls a second through, after a burst of 30: a second's pause
# before each part lets the previous part's calls drain, so each part starts alike.
LIMITER_DRAIN_S = 1.0
LIBRARIES = ("yt-dlp", "python-telegram-bot", "discord.py", "aiohttp", "httpx")


def post_id(n: int) -> str:
    return f"7309876543210{n:06d}"


def post_url(post: str) -> str:
    return f"https://www.tiktok.com/@{AUTHOR}/video/{post}"


COLD_POST = post_id(0)
ALONE_POSTS = (post_id(1), post_id(2))  # yt-dlp alone: its first run, then a warm one
CROWD_POST = post_id(3)
INLINE_POSTS = [post_id(10 + n) for n in range(INLINE_NEW)]
MESSAGE_POSTS = [post_id(20 + n) for n in range(INLINE_NEW)]
BURST_POSTS = [post_id(100 + n) for n in range(len(BURST_CHATS))]


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


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def row(label: str, result: str, target: str = "") -> None:
    print(f"{label:50}{result:>28}   {target}")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


async def cold_request(
    bot: Reshare, api: FakeBotApi, tiktok: TikTokStandIn, work: Path, clip: Clip
) -> None:
    """The first request after start-up; then yt-dlp alone on other posts of the same clip."""
    started = time.monotonic()
    send(api, post_url(COLD_POST), COLD_CHAT)
    [sent] = await videos(api, to_chat(COLD_CHAT), 1, 60.0)
    bot_s = sent.at - started
    await jobs_done(bot)
    alone: list[tuple[float, float]] = []
    for post in ALONE_POSTS:
        directory = work / f"alone-{post}"
        directory.mkdir()
        fetched = await asyncio.to_thread(ytdlp_alone, post_url(post), tiktok.proxy_url, directory)
        uploaded = await raw_upload(api, directory / "alone.mp4", RAW_CHAT)
        alone.append((fetched, uploaded))
    (first_fetch, first_upload), (warm_fetch, warm_upload) = alone
    alone_s = first_fetch + first_upload
    row(
        f"1 cold: message -> sendVideo ({clip.duration:.0f} s, {clip.size / 1e6:.1f} MB)",
        ms(bot_s),
    )
    row(
        "  yt-dlp alone + raw upload (its first run)",
        f"{ms(alone_s)} ({ms(first_fetch)} + {ms(first_upload)})",
    )
    row("  ratio bot / yt-dlp alone", f"{bot_s / alone_s:.2f}", "<= 1.10")
    row("  yt-dlp alone + raw upload again (warm)", f"{ms(warm_fetch + warm_upload)}", "(context)")


async def cache_hits(bot: Reshare, api: FakeBotApi, tiktok: TikTokStandIn) -> None:
    """The cold clip again through short links, one request after another, each in a new chat:
    back to back, then paced below the bot's own Bot API rate limit."""
    media_before = tiktok.media_requests
    codes = iter(SHORT_CODES)
    chats = iter(HIT_CHATS)
    row(f"2 cache hits via vm.tiktok.com/CODE, N={HITS} each:", "")
    for label, pace_s in (("back to back", 0.0), (f"paced {1 / HIT_PACE_S:.0f}/s", HIT_PACE_S)):
        await asyncio.sleep(LIMITER_DRAIN_S)
        hits: list[float] = []
        for _ in range(HITS):
            chat = next(chats)
            started = time.monotonic()
            send(api, f"https://vm.tiktok.com/{next(codes)}/", chat)
            [sent] = await videos(api, to_chat(chat), 1, 30.0)
            hits.append(sent.at - started)
            await jobs_done(bot)
            await asyncio.sleep(max(0.0, pace_s - (time.monotonic() - started)))
        median_ms, p95_ms = statistics.median(hits) * 1000, p95(hits) * 1000
        row(
            f"  {label}",
            f"median {median_ms:.1f} ms, p95 {p95_ms:.1f} ms",
            "median <= 20 ms",
        )
    row("  downloads during the hits", f"{tiktok.media_requests - media_before}", "0")


async def answered_at(api: FakeBotApi, query_id: str, within_s: float = 30.0) -> float:
    """When the bot answered an inline query (the stand-in's clock, as ApiCall.at)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        answers = [
            call
            for call in api.calls_to("answerInlineQuery")
            if call.params.get("inline_query_id") == query_id
        ]
        if answers:
            return answers[0].at
        if loop.time() > deadline:
            raise TimeoutError(f"inline query {query_id} not answered")
        await api.wait_for_call(
            "answerInlineQuery", count=len(api.calls_to("answerInlineQuery")) + 1, timeout=within_s
        )


async def inline(bot: Reshare, api: FakeBotApi, tiktok: TikTokStandIn) -> None:
    """Inline queries for the cold clip (cached), then new clips sent inline and by message."""
    await asyncio.sleep(LIMITER_DRAIN_S)
    media_before = tiktok.media_requests
    answered: list[float] = []
    for user in INLINE_USERS:
        started = time.monotonic()
        query = api.inject_inline_query(post_url(COLD_POST), user_id=user)
        answered.append(await answered_at(api, query) - started)
    row(
        f"5 inline: query -> cached video offered, N={len(answered)}",
        f"median {statistics.median(answered) * 1000:.1f} ms, p95 {p95(answered) * 1000:.1f} ms",
        "median <= 20 ms",
    )
    row("  downloads during the queries", f"{tiktok.media_requests - media_before}", "0")
    edited: list[float] = []
    for n, post in enumerate(INLINE_POSTS):
        query = api.inject_inline_query(post_url(post), user_id=INLINE_USERS[n])
        await answered_at(api, query)
        [placeholder] = api.inline_answer(query).params["results"]
        edits = len(api.calls_to("editMessageMedia"))
        started = time.monotonic()
        api.choose_inline_result(query, placeholder["id"], chat_id=60_000 + n)
        [*_, edit] = await api.wait_for_call("editMessageMedia", count=edits + 1, timeout=60)
        edited.append(edit.at - started)
        await jobs_done(bot)
    by_message: list[float] = []
    for n, post in enumerate(MESSAGE_POSTS):
        chat = 61_000 + n
        started = time.monotonic()
        send(api, post_url(post), chat)
        [sent] = await videos(api, to_chat(chat), 1, 60.0)
        by_message.append(sent.at - started)
        await jobs_done(bot)
    row(
        f"  new clip inline: chosen -> video edited in, N={INLINE_NEW}",
        f"median {statistics.median(edited) * 1000:.0f} ms",
    )
    row(
        f"  new clip by message: message -> sendVideo, N={INLINE_NEW}",
        f"median {statistics.median(by_message) * 1000:.0f} ms",
        "(beside it)",
    )


async def crowd(bot: Reshare, api: FakeBotApi, tiktok: TikTokStandIn) -> None:
    """One new clip asked for by 100 chats at the same moment."""
    await asyncio.sleep(LIMITER_DRAIN_S)
    media_before = tiktok.media_requests
    started = time.monotonic()
    for chat in CROWD_CHATS:
        send(api, post_url(CROWD_POST), chat)
    sent = await videos(api, to_chats(CROWD_CHATS), len(CROWD_CHATS), 60.0)
    wall_s = max(call.at for call in sent) - started
    await jobs_done(bot)
    replies = [call for call in api.calls_to("sendVideo") if to_chats(CROWD_CHATS)(call)]
    uploads = sum(1 for call in replies if call.files)
    row(
        f"3 one new clip, {len(CROWD_CHATS)} chats at once: downloads",
        f"{tiktok.media_requests - media_before}",
        "1",
    )
    row("  replies (sendVideo)", f"{len(replies)} ({uploads} uploads)", f"{len(CROWD_CHATS)}")
    row("  wall time to the last reply", f"{wall_s:.2f} s")


async def burst(bot: Reshare, api: FakeBotApi) -> None:
    """200 distinct clips, one chat each, at once."""
    await asyncio.sleep(LIMITER_DRAIN_S)
    rss_before = peak_rss_mb()
    started = time.monotonic()
    for chat, post in zip(BURST_CHATS, BURST_POSTS, strict=True):
        send(api, post_url(post), chat)
    sent = await videos(api, to_chats(BURST_CHATS), len(BURST_CHATS), BURST_TIMEOUT_S)
    wall_s = max(call.at for call in sent) - started
    await jobs_done(bot)
    calls = sum(1 for call in api.calls if to_chats(BURST_CHATS)(call))
    messages = sum(
        1 for call in api.calls if call.method in MESSAGE_ENDPOINTS and to_chats(BURST_CHATS)(call)
    )
    received_mb = sum(f.size for call in api.calls for f in call.files.values()) / 1e6
    row(
        f"4 {len(BURST_CHATS)} distinct clips at once: all sent",
        f"{wall_s:.1f} s, {len(BURST_CHATS) / wall_s:.1f} clips/s",
    )
    row(
        "  Bot API calls per clip; of them messages (30/s allowed)",
        f"{calls / len(BURST_CHATS):.1f}; {messages / len(BURST_CHATS):.1f}"
        f" (~{30 * len(BURST_CHATS) / messages:.0f} clips/s max)",
    )
    peak = peak_rss_mb()
    child = (
        bot.engine.downloader.pid if isinstance(bot.engine.downloader, ProcessDownloader) else None
    )
    if child is None:
        row("  peak RSS, whole process (bot + stand-ins)", f"{peak:.0f} MB", "<= 250 MB")
    else:
        # The download process (DOWNLOAD_PROCESS, the default): what it holds alone is added.
        alone = boundary.private_kib(child) / 1024
        row("  peak RSS, whole process (bot + stand-ins)", f"{peak:.0f} MB")
        row("  + the download process's private memory", f"{peak + alone:.0f} MB", "<= 250 MB")
    row("    peak before the 200", f"{rss_before:.0f} MB")
    row("    uploaded to the stand-in (which keeps sizes only)", f"{received_mb:.0f} MB")


async def measure(work: Path, cold: Clip, small: Clip) -> None:
    async with TikTokStandIn() as tiktok, FakeBotApi(keep_uploads=False) as api:
        for post in (COLD_POST, *ALONE_POSTS):
            tiktok.add_video(post, cold, author=AUTHOR)
        for post in (CROWD_POST, *BURST_POSTS, *INLINE_POSTS, *MESSAGE_POSTS):
            tiktok.add_video(post, small, author=AUTHOR)
        for code in SHORT_CODES:
            tiktok.add_short_link(code, f"/@{AUTHOR}/video/{COLD_POST}")
        api.add_chat(RAW_CHAT, "private")
        api.add_chat(STORAGE_CHAT, "channel", title="storage")
        data_dir = work / "data"
        try:
            async with running_bot(
                tiktok, data_dir, telegram=api, telegram_storage_chat_id=STORAGE_CHAT
            ) as bot:
                settings = bot.engine.settings
                print(
                    "bot settings: defaults,"
                    f" MAX_CONCURRENT_DOWNLOADS={settings.max_concurrent_downloads}"
                    f" WORKERS={settings.workers} QUEUE_SIZE={settings.queue_size}"
                    f" MAX_CONCURRENT_ENCODES={settings.max_concurrent_encodes}"
                    f" (harness: DOWNLOAD_TIMEOUT_S={settings.download_timeout_s:.0f})"
                )
                await bot.engine.warmed_up()
                row("", "result", "target")
                row("0 peak RSS after start-up (bot + stand-ins)", f"{peak_rss_mb():.0f} MB")
                await cold_request(bot, api, tiktok, work, cold)
                await cache_hits(bot, api, tiktok)
                await crowd(bot, api, tiktok)
                await burst(bot, api)
                await inline(bot, api, tiktok)
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
    print("\n6 at the process boundary: `python -m bot`, the stand-ins in processes of their own")
    boundary.section()
    print(f"(whole run {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
