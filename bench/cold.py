"""One cold request end to end, beside yt-dlp alone fetching the same clip in the same process.

Run: .venv/bin/python -m bench.cold
Prints: message injected -> sendVideo received through the real bot (Telegram and TikTok
stand-ins on loopback), and a fresh YoutubeDL extracting and downloading the same clip.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import httpx
import yt_dlp

from tests.harness import running_bot
from tests.standins.clips import make_clip
from tests.standins.telegram_api import ApiCall, FakeBotApi
from tests.standins.tiktok import TikTokStandIn

ROUNDS = 5
BOT_CHAT = 5000
RAW_CHAT = 1001


async def bot_video(api: FakeBotApi, count: int) -> ApiCall:
    """The count-th video the bot sent (the raw uploads go to another chat)."""
    while True:
        videos = [c for c in api.calls_to("sendVideo") if c.params["chat_id"] == BOT_CHAT]
        if len(videos) >= count:
            return videos[count - 1]
        await api.wait_for_call("sendVideo", count=len(api.calls_to("sendVideo")) + 1)


async def raw_upload(api: FakeBotApi, path: Path, chat_id: int) -> float:
    """The same bytes posted as a plain sendVideo, as the least any bot must spend on upload."""
    started = time.perf_counter()
    data = await asyncio.to_thread(path.read_bytes)
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{api.base_url}{api.token}/sendVideo",
            data={"chat_id": str(chat_id)},
            files={"video": ("clip.mp4", data, "video/mp4")},
        )
    response.raise_for_status()
    return time.perf_counter() - started


def ytdlp_alone(url: str, proxy: str, directory: Path) -> float:
    started = time.perf_counter()
    options = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "proxy": proxy,
        "nocheckcertificate": True,
        "format_sort": ["vcodec:h264"],
        "paths": {"home": str(directory)},
        "outtmpl": {"default": "alone.%(ext)s"},
    }
    with yt_dlp.YoutubeDL(options) as ydl:
        ydl.extract_info(url, download=True)
    return time.perf_counter() - started


async def main() -> None:
    with tempfile.TemporaryDirectory() as name:
        work = Path(name)
        clip = await asyncio.to_thread(
            make_clip, work / "clip.mp4", duration=5.0, width=720, height=1280
        )
        clip_bytes = clip.size
        async with TikTokStandIn() as tiktok, FakeBotApi() as api:
            posts = [f"7301234567890{n:06d}" for n in range(2 * ROUNDS)]
            for post in posts:
                tiktok.add_video(post, clip, author="bench")
            api.add_chat(RAW_CHAT, "private")
            api.add_chat(BOT_CHAT, "private")
            bot_times: list[float] = []
            alone_times: list[float] = []
            async with running_bot(tiktok, work / "data", telegram=api) as bot:
                await bot.engine.warmed_up()
                for n in range(ROUNDS):
                    started = time.monotonic()
                    api.inject_message(
                        f"https://www.tiktok.com/@bench/video/{posts[n]}", chat_id=BOT_CHAT
                    )
                    call = await bot_video(api, n + 1)
                    bot_times.append(call.at - started)
                    url = f"https://www.tiktok.com/@bench/video/{posts[ROUNDS + n]}"
                    fetched = await asyncio.to_thread(ytdlp_alone, url, tiktok.proxy_url, work)
                    uploaded = await raw_upload(api, work / "alone.mp4", RAW_CHAT)
                    alone_times.append(fetched + uploaded)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"yt-dlp {yt_dlp.version.__version__}; clip: 5 s 720x1280 H.264/AAC, {clip_bytes} bytes")
    print(f"{'':34}{'first':>9}{'median':>9}")
    rows = [
        ("bot: message -> sendVideo", bot_times),
        ("yt-dlp alone + raw upload", alone_times),
    ]
    for label, times in rows:
        print(f"{label:34}{times[0] * 1000:8.0f}ms{statistics.median(times) * 1000:8.0f}ms")
    ratio = statistics.median(bot_times) / statistics.median(alone_times)
    print(f"ratio bot/yt-dlp (median): {ratio:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
