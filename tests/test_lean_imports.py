"""The heavy libraries of a mode are imported only when that mode is configured: an embedded,
Telegram-only process carries neither discord.py nor limits, redis, taskiq and taskiq_redis."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness import bot_env

HEAVY = ("discord", "limits", "redis", "taskiq", "taskiq_redis")
# What the download process carries (DOWNLOAD_PROCESS=true) and the bot then need not.
DOWNLOADING = ("yt_dlp", "curl_cffi", "requests", "Cryptodome", "mutagen", "websockets")

# What `python -m bot` builds before it goes to the network (main, then serve up to `start`),
# and the doctor's checks of what is not configured; prints the packages then imported.
BUILD = """
import asyncio, json, sys

import bot.app
from adapters.discord import DiscordSettings, discord_checks
from adapters.runtime import Reshare
from adapters.telegram import TelegramSettings
from bot.doctor import NETWORK_TIMEOUT_S, Status, check_redis
from bot.settings import CoreSettings


async def build() -> None:
    core, telegram, discord = CoreSettings(), TelegramSettings(), DiscordSettings()
    Reshare(core, telegram, discord)
    if discord.discord_bot_token is None:
        [check] = await discord_checks(discord, NETWORK_TIMEOUT_S)
        assert check.status is Status.SKIP, check
    if core.redis_url is None:
        assert (await check_redis(None, NETWORK_TIMEOUT_S)).status is Status.SKIP


asyncio.run(build())
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""


def heavy_imported(tmp_path: Path, *packages: str, **settings: str) -> list[str]:
    """Which of `packages` (by default HEAVY) a fresh process imports to build the bot with
    `settings`."""
    done = subprocess.run(
        [sys.executable, "-c", BUILD],
        cwd=tmp_path,
        env=bot_env(tmp_path, TELEGRAM_BOT_TOKEN="123456:TEST-lean-token", **settings),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    imported: list[str] = json.loads(done.stdout.splitlines()[-1])
    return sorted(set(imported) & set(packages or HEAVY))


def test_an_embedded_telegram_only_bot_imports_no_discord_and_no_redis(tmp_path: Path) -> None:
    assert heavy_imported(tmp_path) == []


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"DISCORD_BOT_TOKEN": "TEST.discord.token"}, ["discord"]),
        ({"REDIS_URL": "redis://127.0.0.1:1/0"}, ["limits", "redis", "taskiq", "taskiq_redis"]),
    ],
)
def test_a_configured_mode_imports_its_libraries(
    tmp_path: Path, settings: dict[str, str], expected: list[str]
) -> None:
    """The converse: the token or REDIS_URL brings the library in (and the bot is built)."""
    assert heavy_imported(tmp_path, **settings) == expected


@pytest.mark.parametrize(
    ("download_process", "expected"),
    [("true", []), ("false", ["curl_cffi", "yt_dlp"])],
)
def test_with_a_download_process_the_bot_itself_carries_no_yt_dlp(
    tmp_path: Path, download_process: str, expected: list[str]
) -> None:
    """yt-dlp, curl_cffi and yt-dlp's own dependencies live in the download process only: the
    bot's copy would be memory held twice. With threads the bot imports yt-dlp itself."""
    imported = heavy_imported(tmp_path, *DOWNLOADING, DOWNLOAD_PROCESS=download_process)
    assert [name for name in imported if name in ("curl_cffi", "yt_dlp")] == expected
    if download_process == "true":
        assert imported == []


class _ImportSpy:
    """A meta-path finder that finds nothing and notes every module looked for."""

    def __init__(self) -> None:
        self.looked_for: list[str] = []

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        self.looked_for.append(name)


async def test_httpcore_tells_its_event_loop_without_searching_for_a_module() -> None:
    """httpcore imports sniffio inside every request it makes (four times); when sniffio is
    missing, each try searches sys.path again."""
    from httpcore._synchronization import current_async_library

    assert current_async_library() == "asyncio"
    spy = _ImportSpy()
    sys.meta_path.insert(0, spy)
    try:
        assert current_async_library() == "asyncio"
    finally:
        sys.meta_path.remove(spy)
    assert spy.looked_for == []


def test_the_download_process_carries_yt_dlp_but_no_media_platform_or_settings_library(
    tmp_path: Path,
) -> None:
    """What `python -m bot.download_process` imports before it reads its first frame: each of
    these would be memory the child holds twice, beside the bot's copy."""
    kept_out = ("av", "telegram", "discord", "aiohttp", "httpx", "pydantic", "pydantic_settings")
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            # What its main() imports before it reads its first frame.
            "import json, sys, bot.download_process, bot.download; "
            "print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))",
        ],
        cwd=tmp_path,
        env=bot_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    imported = set(json.loads(done.stdout))
    assert "yt_dlp" in imported
    assert sorted(imported & set(kept_out)) == []
