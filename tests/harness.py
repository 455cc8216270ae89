"""The real bot, in-process, wired to the stand-ins: what end-to-end tests start."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.discord import DiscordSettings
from adapters.runtime import Reshare
from adapters.telegram import TelegramSettings
from bot.media import probe
from bot.settings import CoreSettings
from tests.standins.clips import Clip
from tests.standins.telegram_api import ApiCall, FakeBotApi
from tests.standins.tiktok import TikTokStandIn

# Calls PTB makes on its own while polling; everything else is the bot answering someone.
POLLING_METHODS = frozenset({"getMe", "getUpdates", "deleteWebhook", "setMyCommands"})


@contextlib.asynccontextmanager
async def running_bot(
    tiktok: TikTokStandIn, api: FakeBotApi, data_dir: Path, **core: Any
) -> AsyncIterator[Reshare]:
    """Start the bot as `python -m bot` would, from settings that name the stand-ins."""
    settings = CoreSettings(
        _env_file=None,
        download_proxy=tiktok.proxy_url,
        download_verify_tls=False,
        data_dir=data_dir,
        **{"download_timeout_s": 30, **core},
    )
    telegram = TelegramSettings(
        _env_file=None, telegram_bot_token=SecretStr(api.token), telegram_api_url=api.root
    )
    reshare = Reshare(settings, telegram, DiscordSettings(_env_file=None))
    await reshare.start()
    try:
        yield reshare
    finally:
        await reshare.stop()
    assert list((data_dir / "jobs").iterdir()) == [], "temporary files left behind"


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
