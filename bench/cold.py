"""One cold request end to end, beside yt-dlp alone fetching the same clip in the same process.

Run: .venv/bin/python -m bench.cold
Prints: message injected -> sendVideo received through the real bot (Telegram and TikTok
stand-ins on loopback); a fresh YoutubeDL extracting and downloading the same clip, plus a raw
upload of its bytes; and on Discord, INTERACTION_CREATE -> deferred response and -> followup
with the video. "first" is the first request after start-up (cold), "median" over the rounds.
"""

from __future__ import annotations

import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yt_dlp

from tests.harness import running_bot
from tests.standins.clips import make_clip
from tests.standins.discord_api import FakeDiscord
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


async def measure(platform_name: str) -> None:
    """Rounds on one platform in this (fresh) process; prints its rows."""
    with tempfile.TemporaryDirectory() as name:
        work = Path(name)
        clip = await asyncio.to_thread(
            make_clip, work / "clip.mp4", duration=5.0, width=720, height=1280
        )
        rows: dict[str, list[float]] = {}
        async with TikTokStandIn() as tiktok, FakeBotApi() as api, FakeDiscord() as discord_api:
            posts = [f"7301234567890{n:06d}" for n in range(2 * ROUNDS)]
            for post in posts:
                tiktok.add_video(post, clip, author="bench")
            api.add_chat(RAW_CHAT, "private")
            api.add_chat(BOT_CHAT, "private")
            telegram = api if platform_name == "telegram" else None
            discord = discord_api if platform_name == "discord" else None
            async with running_bot(
                tiktok, work / "data", telegram=telegram, discord=discord
            ) as bot:
                await bot.engine.warmed_up()
                for n in range(ROUNDS):
                    url = f"https://www.tiktok.com/@bench/video/{posts[n]}"
                    started = time.monotonic()
                    if platform_name == "telegram":
                        api.inject_message(url, chat_id=BOT_CHAT)
                        call = await bot_video(api, n + 1)
                        rows.setdefault("telegram: message -> sendVideo", []).append(
                            call.at - started
                        )
                        other = f"https://www.tiktok.com/@bench/video/{posts[ROUNDS + n]}"
                        fetched = await asyncio.to_thread(
                            ytdlp_alone, other, tiktok.proxy_url, work
                        )
                        uploaded = await raw_upload(api, work / "alone.mp4", RAW_CHAT)
                        rows.setdefault("yt-dlp alone + raw upload", []).append(fetched + uploaded)
                    else:
                        interaction = discord_api.inject_slash_command("download", {"url": url})
                        webhook = f"/webhooks/{discord_api.application_id}/{interaction['token']}"
                        [followup] = await discord_api.wait_for_request("POST", webhook)
                        callback = discord_api.interaction_responses(interaction["id"])[0]
                        rows.setdefault("discord: INTERACTION_CREATE -> defer", []).append(
                            callback.at - started
                        )
                        rows.setdefault("discord: INTERACTION_CREATE -> followup", []).append(
                            followup.at - started
                        )
    for label, times in rows.items():
        print(f"{label:42}{times[0] * 1000:8.0f}ms{statistics.median(times) * 1000:8.0f}ms")


def main() -> None:
    """Each platform in a fresh process, so that its first request is a cold one."""
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"yt-dlp {yt_dlp.version.__version__}; clip: 5 s 720x1280 H.264/AAC (~4.7 MB)")
    print(f"{'':42}{'first':>9}{'median':>9}   (first = first request after start-up)")
    for platform_name in ("telegram", "discord"):
        subprocess.run([sys.executable, "-m", "bench.cold", platform_name], check=True)


if __name__ == "__main__":
    if len(sys.argv) > 1:
        asyncio.run(measure(sys.argv[1]))
    else:
        main()
