"""`python -m bot` as a real process: serving Telegram, fetching from a shell, missing settings."""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.app import MISSING_SETTINGS_TEXT
from bot.media import probe
from tests.harness import ROOT, bot_env, run_bot, serving_env
from tests.standins.clips import Clip
from tests.standins.discord_api import FakeDiscord
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import TikTokStandIn

TOKEN = "987654:TEST-process-token"
POST = "7301234567890123456"


@pytest.fixture
async def tiktok(h264_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        tt.add_video(POST, h264_clip, author="dancer", desc="a small dance")
        tt.add_status("7301234567890000001", 10216)
        tt.add_short_link("ZMshort1", f"/@dancer/video/{POST}")
        yield tt


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
async def test_process_answers_a_link_and_stops_cleanly(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path, stop_signal: signal.Signals
) -> None:
    async with FakeBotApi(token=TOKEN) as api:
        env = serving_env(tmp_path, tiktok, telegram=api, LOG_LEVEL="DEBUG")
        process = await run_bot(tmp_path, env)
        try:
            api.inject_message("https://vm.tiktok.com/ZMshort1/")
            [call] = await api.wait_for_call("sendVideo", timeout=60)
            received = tmp_path / "received.mp4"
            received.write_bytes(api.video_bytes(call))
            found = probe(received)
            assert (found.vcodec, found.acodec) == ("h264", "aac")
            assert (found.width, found.height) == (h264_clip.width, h264_clip.height)
        finally:
            if process.returncode is None:
                process.send_signal(stop_signal)
            stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, stderr.decode()
        assert TOKEN not in stdout.decode() + stderr.decode()
        assert TOKEN.split(":")[1] not in stderr.decode()
        assert list((tmp_path / "data" / "jobs").iterdir()) == []


def children_running(parent: int, module: str) -> list[int]:
    """The processes whose parent is `parent` and whose command line names `module`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if f"\nPPid:\t{parent}\n" in status and module.encode() in cmdline:
            found.append(int(entry.name))
    return found


async def test_with_download_process_yt_dlp_runs_in_a_child_that_ends_with_the_bot(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    async with FakeBotApi(token=TOKEN) as api:
        env = serving_env(tmp_path, tiktok, telegram=api, DOWNLOAD_PROCESS="true")
        process = await run_bot(tmp_path, env)
        try:
            api.inject_message(tiktok.post_url(POST, "dancer"))
            [call] = await api.wait_for_call("sendVideo", timeout=60)
            children = children_running(process.pid, "bot.download_process")
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, stderr.decode()
        assert api.video_bytes(call) == h264_clip.path.read_bytes()
        [child] = children
        assert not Path(f"/proc/{child}").exists()
        assert list((tmp_path / "data" / "jobs").iterdir()) == []


async def test_a_rate_limited_upload_is_retried_and_logged_without_an_error(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    """A 429 is retried after its retry_after by the core (bot.retry), which says so in one INFO
    line: no ERROR, no traceback, and the video arrives once."""
    async with FakeBotApi(token=TOKEN) as api:
        env = serving_env(tmp_path, tiktok, telegram=api)
        api.fail_next("sendVideo", 429, retry_after=1)
        process = await run_bot(tmp_path, env)
        try:
            api.inject_message(f"https://www.tiktok.com/@dancer/video/{POST}")
            await api.wait_for_call("sendVideo", count=2, timeout=60)
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = await asyncio.wait_for(process.communicate(), 30)
    logs = stderr.decode()
    assert process.returncode == 0, logs
    assert len(api.calls_to("sendVideo")) == 2
    assert re.search(r"INFO bot\.retry \[job=\w+\]: sendVideo: .*; attempt 2 in", logs), logs
    assert " ERROR " not in logs
    assert "Traceback" not in logs


@pytest.mark.parametrize("download_process", ["false", "true"])
async def test_without_any_token_it_names_the_settings_and_exits_2(
    tmp_path: Path, download_process: str
) -> None:
    """With DOWNLOAD_PROCESS=true the download process was started before the settings were
    all read (bot.__main__): it ends with the bot without a word (stderr is shared: the pipe
    stays open while it runs)."""
    # As the README's first command leaves it: .env copied from .env.example, not filled in.
    shutil.copyfile(ROOT / ".env.example", tmp_path / ".env")
    process = await run_bot(tmp_path, bot_env(tmp_path, DOWNLOAD_PROCESS=download_process))
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert stderr.decode() == MISSING_SETTINGS_TEXT + "\n"


@pytest.mark.parametrize("download_process", ["false", "true"])
async def test_fetch_writes_a_playable_mp4(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path, download_process: str
) -> None:
    env = serving_env(tmp_path, tiktok, DOWNLOAD_PROCESS=download_process)
    out = tmp_path / "clip.mp4"
    process = await run_bot(
        tmp_path, env, "fetch", "https://vm.tiktok.com/ZMshort1/", "-o", str(out)
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, stderr.decode()
    found = probe(out)
    assert (found.vcodec, found.acodec, found.pix_fmt) == ("h264", "aac", "yuv420p")
    assert found.duration == pytest.approx(h264_clip.duration, abs=0.15)


async def test_fetch_failure_prints_the_reason_and_exits_1(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    env = serving_env(tmp_path, tiktok)
    url = "https://www.tiktok.com/@x/video/7301234567890000001"
    process = await run_bot(tmp_path, env, "fetch", url)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 1
    assert stderr.decode().strip() == "This video is private."
    assert stdout == b""


async def test_a_bad_setting_is_named_without_a_traceback(tmp_path: Path) -> None:
    env = bot_env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN, MAX_CONCURRENT_DOWNLOADS="many")
    process = await run_bot(tmp_path, env)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert stderr.decode().startswith("Setting MAX_CONCURRENT_DOWNLOADS:")
    assert "Traceback" not in stderr.decode()
    assert TOKEN not in stderr.decode()


async def test_one_process_serves_telegram_and_discord(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    async with FakeBotApi(token=TOKEN) as api, FakeDiscord() as discord_api:
        env = serving_env(tmp_path, tiktok, telegram=api, discord=discord_api, LOG_LEVEL="DEBUG")
        process = await run_bot(tmp_path, env)
        try:
            await discord_api.wait_ready(timeout=60)
            interaction = discord_api.inject_slash_command(
                "download", {"url": "https://vm.tiktok.com/ZMshort1/"}
            )
            api.inject_message("https://vm.tiktok.com/ZMshort1/")
            # A failing link too: the tokens must not show in any library's DEBUG lines.
            api.inject_message("https://www.tiktok.com/@x/video/7301234567890000001", chat_id=9)
            [video] = await api.wait_for_call("sendVideo", timeout=60)
            [reason] = await api.wait_for_call("sendMessage", timeout=60)
            assert reason.params["text"] == "This video is private."
            webhook = f"/webhooks/{discord_api.application_id}/{interaction['token']}"
            [followup] = await discord_api.wait_for_request("POST", webhook, timeout=60)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, stderr.decode()
        for received in (api.video_bytes(video), followup.files[0].data):
            path = tmp_path / "received.mp4"
            path.write_bytes(received)
            found = probe(path)
            assert (found.vcodec, found.acodec) == ("h264", "aac")
            assert (found.width, found.height) == (h264_clip.width, h264_clip.height)
        logs = stdout.decode() + stderr.decode()
        assert TOKEN not in logs
        assert discord_api.token not in logs


async def test_a_refused_token_is_one_log_line_and_exit_1(tmp_path: Path) -> None:
    async with FakeBotApi(token=TOKEN) as api:
        wrong = "111111:TEST-wrong-token"
        env = bot_env(tmp_path, TELEGRAM_BOT_TOKEN=wrong, TELEGRAM_API_URL=api.root)
        process = await run_bot(tmp_path, env)
        _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 1
    assert "could not start" in stderr.decode()
    assert "Traceback" not in stderr.decode()
    assert wrong not in stderr.decode()


@pytest.mark.parametrize("role", ["receive", "work"])
async def test_a_distributed_role_without_redis_url_says_so_and_exits_2(
    role: str, tmp_path: Path
) -> None:
    process = await run_bot(tmp_path, bot_env(tmp_path, TELEGRAM_BOT_TOKEN=TOKEN), role)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert f"`python -m bot {role}` is one side of the distributed mode: set REDIS_URL" in (
        stderr.decode()
    )
