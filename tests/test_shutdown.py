"""Stopping and restarting `python -m bot` as a real process: SIGTERM's grace, and kill -9.

SIGTERM lets running jobs finish within SHUTDOWN_GRACE_S and tells the rest, once, to send
their link again; a request accepted but not answered when the process is killed is answered
by the next start, once.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from functools import partial
from pathlib import Path

import pytest

from bot.intake import RESTARTING_TEXT
from tests.harness import link as tiktok_link
from tests.harness import run_bot, serving_env, tiktok_serving, until
from tests.standins.clips import Clip
from tests.standins.discord_api import FakeDiscord
from tests.standins.telegram_api import ApiCall, FakeBotApi
from tests.standins.tiktok import TikTokStandIn

TOKEN = "987654:TEST-shutdown-token"
POSTS = [f"73012345678901234{n:02d}" for n in range(3)]
link = partial(tiktok_link, author="dancer")
EPHEMERAL = 1 << 6
# Time for the process to tell, clean up and exit after the grace (it waits 1.5 s at most for
# a download thread blocked in a network read, then exits without it).
EXIT_MARGIN_S = 8.0


@pytest.fixture
async def tiktok(h264_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with tiktok_serving(h264_clip, *POSTS) as tt:
        yield tt


def telegram_env(
    tmp_path: Path, api: FakeBotApi, tiktok: TikTokStandIn, **extra: str
) -> dict[str, str]:
    return {**serving_env(tmp_path, tiktok, telegram=api, LOG_LEVEL="DEBUG"), **extra}


@contextlib.asynccontextmanager
async def bot_process(
    tmp_path: Path, env: dict[str, str]
) -> AsyncIterator[asyncio.subprocess.Process]:
    """The bot as a process; killed if a test leaves it running."""
    process = await run_bot(tmp_path, env)
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
            await process.communicate()


@contextlib.asynccontextmanager
async def downloading(
    tiktok: TikTokStandIn,
    tmp_path: Path,
    api: FakeBotApi,
    *,
    grace_s: int,
    chat_id: int,
    download_process: str = "false",
) -> AsyncIterator[asyncio.subprocess.Process]:
    """The bot as a process with SHUTDOWN_GRACE_S=`grace_s`, once a link sent from `chat_id` is
    being downloaded (by yt-dlp in a process of its own with `download_process`)."""
    env = telegram_env(
        tmp_path, api, tiktok, SHUTDOWN_GRACE_S=str(grace_s), DOWNLOAD_PROCESS=download_process
    )
    async with bot_process(tmp_path, env) as process:
        api.inject_message(link(POSTS[0]), chat_id=chat_id)
        await tiktok.wait_for_media_request(within_s=60)
        yield process


async def stop(process: asyncio.subprocess.Process, within_s: float) -> tuple[int, str, float]:
    """SIGTERM; the exit code, the log and the seconds until the process was gone."""
    began = time.monotonic()
    process.send_signal(signal.SIGTERM)
    done = asyncio.ensure_future(process.communicate())
    finished, _ = await asyncio.wait([done], timeout=within_s)
    if not finished:
        process.kill()
        stdout, stderr = await done
        raise AssertionError(f"still running {within_s} s after SIGTERM:\n{stderr.decode()}")
    stdout, stderr = done.result()
    assert process.returncode is not None
    return process.returncode, stdout.decode() + stderr.decode(), time.monotonic() - began


def to_chat(calls: list[ApiCall], chat_id: int) -> list[ApiCall]:
    return [call for call in calls if call.params.get("chat_id") == chat_id]


async def test_sigterm_lets_a_running_job_finish_and_exits_0(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    tiktok.media_delay_s = 1.5
    async with (
        FakeBotApi(token=TOKEN) as api,
        downloading(tiktok, tmp_path, api, grace_s=20, chat_id=11) as process,
    ):
        code, logs, _ = await stop(process, within_s=20 + EXIT_MARGIN_S)
    assert code == 0, logs
    [video] = api.calls_to("sendVideo")
    assert video.params["chat_id"] == 11
    assert api.calls_to("sendMessage") == []
    assert api.pending_updates == []
    assert list((tmp_path / "data" / "jobs").iterdir()) == []
    assert TOKEN not in logs


@pytest.mark.parametrize("download_process", ["false", "true"])
async def test_sigterm_tells_a_job_past_the_grace_once_and_exits_0(
    tiktok: TikTokStandIn, tmp_path: Path, download_process: str
) -> None:
    tiktok.media_delay_s = 30.0
    async with (
        FakeBotApi(token=TOKEN) as api,
        downloading(
            tiktok, tmp_path, api, grace_s=1, chat_id=12, download_process=download_process
        ) as process,
    ):
        code, logs, took = await stop(process, within_s=1 + EXIT_MARGIN_S)
    assert code == 0, logs
    assert took < 1 + EXIT_MARGIN_S
    assert api.calls_to("sendVideo") == []
    [notice] = api.calls_to("sendMessage")
    assert notice.params["chat_id"] == 12
    assert notice.params["text"] == RESTARTING_TEXT
    assert list((tmp_path / "data" / "jobs").iterdir()) == []


async def test_a_second_signal_ends_the_grace_at_once(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    tiktok.media_delay_s = 30.0
    async with (
        FakeBotApi(token=TOKEN) as api,
        downloading(tiktok, tmp_path, api, grace_s=60, chat_id=13) as process,
    ):
        process.send_signal(signal.SIGINT)
        await asyncio.sleep(0.5)
        # Well before the 60 s grace is over.
        code, logs, _ = await stop(process, within_s=EXIT_MARGIN_S)
    assert code == 0, logs
    [notice] = api.calls_to("sendMessage")
    assert notice.params["text"] == RESTARTING_TEXT
    assert api.calls_to("sendVideo") == []
    assert list((tmp_path / "data" / "jobs").iterdir()) == []


async def test_sigterm_tells_a_discord_command_past_the_grace_privately(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    tiktok.media_delay_s = 30.0
    async with FakeDiscord() as discord_api:
        env = serving_env(tmp_path, tiktok, discord=discord_api, SHUTDOWN_GRACE_S="1")
        async with bot_process(tmp_path, env) as process:
            await discord_api.wait_ready(timeout=60)
            interaction = discord_api.inject_slash_command("download", {"url": link(POSTS[0])})
            await tiktok.wait_for_media_request(within_s=60)
            code, logs, _ = await stop(process, within_s=1 + EXIT_MARGIN_S)
    assert code == 0, logs
    webhook = f"/webhooks/{discord_api.application_id}/{interaction['token']}"
    [notice] = discord_api.requests_to("POST", webhook)
    assert notice.json["content"] == RESTARTING_TEXT
    assert notice.json["flags"] & EPHEMERAL
    assert not notice.files
    assert list((tmp_path / "data" / "jobs").iterdir()) == []


async def test_a_request_cut_off_by_kill_9_is_answered_once_by_the_next_start(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    async with FakeBotApi(token=TOKEN) as api:
        env = telegram_env(tmp_path, api, tiktok, SHUTDOWN_GRACE_S="20")
        async with bot_process(tmp_path, env) as first:
            api.inject_message(link(POSTS[0]), chat_id=21)
            await api.wait_for_call("sendVideo", timeout=60)
            # The second request is taken, confirmed to Telegram, and downloading when killed.
            tiktok.media_delay_s = 30.0
            before = tiktok.media_requests
            api.inject_message(link(POSTS[1]), chat_id=22)
            await until(lambda: tiktok.media_requests > before)
            await until(lambda: api.pending_updates == [])
            first.kill()
            await first.communicate()
        assert to_chat(api.calls_to("sendVideo"), 22) == []

        tiktok.media_delay_s = 0.0
        async with bot_process(tmp_path, env) as second:
            await api.wait_for_call("sendVideo", count=2, timeout=60)
            # A graceful stop finishes the queue: a second answer would be sent by now.
            code, logs, _ = await stop(second, within_s=20 + EXIT_MARGIN_S)
    assert code == 0, logs
    videos = api.calls_to("sendVideo")
    assert len(to_chat(videos, 21)) == 1
    assert len(to_chat(videos, 22)) == 1
    assert api.calls_to("sendMessage") == []
    assert list((tmp_path / "data" / "jobs").iterdir()) == []
