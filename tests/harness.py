"""The real bot, in-process, wired to the stand-ins: what end-to-end tests start."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import yt_dlp
from pydantic import SecretStr

from adapters.discord import DiscordSettings
from adapters.runtime import Reshare
from adapters.telegram import TelegramSettings
from bot.media import probe
from bot.netguard import Resolver
from bot.queue import AsyncioJobQueue
from bot.settings import CoreSettings
from tests.standins.clips import Clip
from tests.standins.discord_api import DEFAULT_USER_ID, FakeDiscord
from tests.standins.dns import TableResolver
from tests.standins.telegram_api import POLLING_METHODS, ApiCall, FakeBotApi
from tests.standins.tiktok import TikTokStandIn

ROOT = Path(__file__).resolve().parent.parent
# Discord's message flag of a deferred interaction's "thinking…" placeholder.
_LOADING = 1 << 7


@contextlib.asynccontextmanager
async def running_bot(
    tiktok: TikTokStandIn,
    data_dir: Path,
    *,
    telegram: FakeBotApi | None = None,
    discord: FakeDiscord | None = None,
    discord_message_content: bool = False,
    discord_command_guild_id: int | None = None,
    telegram_upload_limit_mb: int = 50,
    telegram_timeout_s: float | None = None,
    resolver: Resolver | None = None,
    operator_chat_id: int | None = None,
    operator_discord_channel_id: int | None = None,
    telegram_storage_chat_id: int | None = None,
    **core: Any,
) -> AsyncIterator[Reshare]:
    """Start the bot as `python -m bot` would, from settings that name the stand-ins; the SSRF
    guard's lookups go to `resolver` (default: no DNS at all), never to the network."""
    settings = CoreSettings(
        _env_file=None,
        download_proxy=tiktok.proxy_url,
        download_verify_tls=False,
        data_dir=data_dir,
        # A short grace: a test that stops with jobs running should not wait the default 25 s.
        **{"download_timeout_s": 30, "shutdown_grace_s": 2, **core},
    )
    telegram_settings = TelegramSettings(_env_file=None)
    if telegram is not None:
        telegram_settings = TelegramSettings(
            _env_file=None,
            telegram_bot_token=SecretStr(telegram.token),
            telegram_api_url=telegram.root,
            telegram_upload_limit_mb=telegram_upload_limit_mb,
            operator_chat_id=operator_chat_id,
            telegram_storage_chat_id=telegram_storage_chat_id,
        )
        if telegram_timeout_s is not None:
            telegram_settings.telegram_timeout_s = telegram_timeout_s
    discord_settings = DiscordSettings(_env_file=None)
    if discord is not None:
        discord_settings = DiscordSettings(
            _env_file=None,
            discord_bot_token=SecretStr(discord.token),
            discord_api_url=discord.api_url,
            discord_gateway_url=discord.gateway_url,
            discord_message_content=discord_message_content,
            discord_command_guild_id=discord_command_guild_id,
            operator_discord_channel_id=operator_discord_channel_id,
        )
    reshare = Reshare(
        settings,
        telegram_settings,
        discord_settings,
        guild_ready_timeout=0.1,
        resolver=resolver or TableResolver(),
    )
    await reshare.start()
    try:
        # `python -m bot` starts its download process before it polls (bot.__main__); so that
        # timings start from a ready bot here too, wait for it (or for the threads' YoutubeDLs).
        await reshare.engine.warmed_up()
        yield reshare
    finally:
        await reshare.stop()
    left = [str(p) for p in (data_dir / "jobs").rglob("*")]
    assert left == [], f"temporary files left behind: {left}"


@contextlib.asynccontextmanager
async def tiktok_serving(
    clip: Clip, *posts: str, author: str = "dancer"
) -> AsyncIterator[TikTokStandIn]:
    """A TikTok stand-in serving `clip` as each of `posts`, all by `author`."""
    async with TikTokStandIn() as tt:
        for post in posts:
            tt.add_video(post, clip, author=author)
        yield tt


def link(post: str, author: str = "someone") -> str:
    """A TikTok video link as a user pastes it."""
    return f"https://www.tiktok.com/@{author}/video/{post}"


def bot_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment for `python -m bot`: nothing of the developer's own .env or tokens
    leaks in; DATA_DIR is `tmp_path/data` unless `extra` names another."""
    keep = {k: v for k, v in os.environ.items() if k in {"PATH", "HOME", "LANG", "TMPDIR"}}
    return {**keep, "PYTHONPATH": str(ROOT), "DATA_DIR": str(tmp_path / "data"), **extra}


def serving_env(
    tmp_path: Path,
    tiktok: TikTokStandIn,
    *,
    telegram: FakeBotApi | None = None,
    discord: FakeDiscord | None = None,
    **extra: str,
) -> dict[str, str]:
    """`bot_env` for a process that serves the given stand-ins, as `running_bot` does in-process,
    and downloads through `tiktok`'s proxy."""
    platforms: dict[str, str] = {}
    if telegram is not None:
        platforms |= {"TELEGRAM_BOT_TOKEN": telegram.token, "TELEGRAM_API_URL": telegram.root}
    if discord is not None:
        platforms |= {
            "DISCORD_BOT_TOKEN": discord.token,
            "DISCORD_API_URL": discord.api_url,
            "DISCORD_GATEWAY_URL": discord.gateway_url,
        }
    proxy = {"DOWNLOAD_PROXY": tiktok.proxy_url, "DOWNLOAD_VERIFY_TLS": "false"}
    return bot_env(tmp_path, **{**platforms, **proxy, **extra})


async def run_bot(
    cwd: Path, env: dict[str, str], *args: str, **options: Any
) -> asyncio.subprocess.Process:
    """`python -m bot *args` as a real process, its output piped; `options` add to or replace
    the subprocess options (umask, stdout, ...)."""
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", *args, cwd=cwd, env=env,
        **{"stdout": asyncio.subprocess.PIPE, "stderr": asyncio.subprocess.PIPE, **options},
    )  # fmt: skip


async def jobs_done(bot: Reshare) -> None:
    """Wait until every request queued in the embedded mode has been handled."""
    queue = bot.engine.queue
    assert isinstance(queue, AsyncioJobQueue), "only the embedded queue can be waited for"
    await queue.join()


async def until(condition: Callable[[], bool], within_s: float = 60.0) -> None:
    """Wait until a condition over the stand-ins' state holds (no single event covers it)."""
    async with asyncio.timeout(within_s):
        while not condition():  # noqa: ASYNC110 - polled: it reads several views at once
            await asyncio.sleep(0.02)


# A long job's status line (bot.progress, in English): shown while it works, deleted after.
_STATUS = re.compile(
    r"(Downloading…|Compressing to fit [0-9.]+ MB…|Converting…|Uploading…)( [0-9]+%)?"
)


def is_status(text: str | None) -> bool:
    """Whether a message's text is a job's status line, not an answer."""
    return text is not None and _STATUS.fullmatch(text) is not None


def replies_to(api: FakeBotApi, message: dict[str, Any]) -> list[dict[str, Any]]:
    """What the user sees in the chat as the bot's answers to their message (a status line
    while a job works is none)."""
    return [
        sent
        for sent in api.chat_history(message["chat"]["id"])
        if sent["from"]["is_bot"]
        and sent.get("reply_to_message", {}).get("message_id") == message["message_id"]
        and not is_status(sent.get("text"))
    ]


def answers_to(dc: FakeDiscord, interaction: dict[str, Any]) -> list[dict[str, Any]]:
    """What the invoker sees as the bot's answers to their command: the interaction's own
    messages, and messages in the channel that name them (once the token was gone); not the
    "thinking…" placeholder."""
    user = int(interaction.get("member", {}).get("user", {}).get("id") or DEFAULT_USER_ID)
    return [
        message
        for message in dc.messages_in(int(interaction["channel_id"]), as_user=user)
        if int(message["author"]["id"]) == dc.bot_user_id
        and not message["flags"] & _LOADING
        and (
            message.get("interaction_metadata", {}).get("id") == interaction["id"]
            or message["content"].startswith(f"<@{user}>")
        )
    ]


def answers(api: FakeBotApi) -> list[ApiCall]:
    """Every call the bot made to answer someone (polling left out)."""
    return [call for call in api.calls if call.method not in POLLING_METHODS]


def uploaded_video(api: FakeBotApi, call: ApiCall, directory: Path) -> Path:
    path = directory / f"received-{call.at}.mp4"
    path.write_bytes(api.video_bytes(call))
    return path


def assert_plays(path: Path, clip: Clip) -> None:
    """The bytes Telegram received are an H.264/AAC mp4 of the clip's shape and length."""
    found = probe(path)
    assert found.vcodec == "h264"
    assert found.pix_fmt == "yuv420p"
    assert found.acodec == "aac"
    assert found.is_mp4
    assert found.faststart
    assert (found.width, found.height) == (clip.width, clip.height)
    assert found.duration == pytest.approx(clip.duration, abs=0.15)


async def run_ytdlp(
    tt: TikTokStandIn, tmp_path: Path, url: str, *, download: bool = True, **params: Any
) -> dict[str, Any]:
    """Real yt-dlp through the stand-in's proxy, as the bot configures it, off the event loop;
    `params` add to or replace the defaults (allowed_extractors, compat_opts, ...)."""
    options = {
        "proxy": tt.proxy_url,
        "nocheckcertificate": True,
        "format_sort": ["vcodec:h264"],
        "outtmpl": str(tmp_path / "%(id)s.%(ext)s"),
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        **params,
    }

    def run() -> dict[str, Any]:
        with yt_dlp.YoutubeDL(options) as ydl:
            info: dict[str, Any] = ydl.sanitize_info(ydl.extract_info(url, download=download))
            return info

    return await asyncio.to_thread(run)
