"""yt-dlp in a process of its own (DOWNLOAD_PROCESS): real yt-dlp in a real child process,
through the TikTok stand-in's proxy; what the bot's threads would answer, the child answers."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import pickle
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import imageio_ffmpeg
import pytest

from bot.download_process import (
    DownloaderConfig,
    EarlyChild,
    ProcessDownloader,
    child_environment,
    spawn,
)
from bot.links import Link, parse_link
from bot.logs import JOB_KEY
from bot.model import FailureKind, FetchError, Reason, SlideshowPost
from bot.progress import Progress, Stage
from bot.proxies import ProxyPool
from tests.standins.clips import Clip, make_image, make_music
from tests.standins.tiktok import Fault, TikTokStandIn

POST = "7450000000000000011"
POST_OF_SECRET = "7450000000000000014"
POST_TRICKLING = "7450000000000000015"
PHOTO = "7450000000000000012"
PRIVATE = "7450000000000000013"
BUDGET = 50_000_000


@pytest.fixture
async def tiktok(h264_clip: Clip, tmp_path: Path) -> AsyncIterator[TikTokStandIn]:
    slides = (make_image(tmp_path / "slide.jpeg", width=360, height=480, seed=1),)
    music = make_music(tmp_path / "music.mp3", duration=1.0)
    async with TikTokStandIn() as tt:
        tt.add_video(POST, h264_clip, author="dancer")
        tt.add_photo_post(PHOTO, slides, music, author="painter")
        tt.add_status(PRIVATE, 10216)
        yield tt


def config_for(tiktok: TikTokStandIn) -> DownloaderConfig:
    return DownloaderConfig(
        proxies=(tiktok.proxy_url,),
        verify_tls=False,
        timeout_s=20,
        ffmpeg_path=imageio_ffmpeg.get_ffmpeg_exe(),
        threads=2,
        max_duration_s=600,
        extractors=("tiktok",),
        max_bytes=100_000_000,
        retry_delay_s=0.01,
        cookies=None,
    )


@pytest.fixture
async def downloader(tiktok: TikTokStandIn) -> AsyncIterator[ProcessDownloader]:
    process = ProcessDownloader(config_for(tiktok))
    try:
        yield process
    finally:
        await asyncio.to_thread(process.close)


def link(tiktok: TikTokStandIn, post: str) -> Link:
    found = parse_link(tiktok.post_url(post, "dancer"))
    assert found is not None
    return found


def workdir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_a_clip_arrives_from_the_child_with_its_facts_and_progress(
    downloader: ProcessDownloader, tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    heard: list[Progress] = []
    into = workdir(tmp_path, "job")

    download = await downloader.fetch(link(tiktok, POST), into, BUDGET, progress=heard.append)

    assert downloader.pid is not None
    assert downloader.pid != os.getpid()
    assert download.path.parent == into
    assert download.path.read_bytes() == h264_clip.path.read_bytes()
    assert (download.info.clip_id, download.info.author) == (POST, "dancer")
    assert heard
    assert heard[-1] == Progress(Stage.DOWNLOADING, 1.0)


async def test_failures_come_back_with_their_reason_kind_and_class(
    downloader: ProcessDownloader, tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    with pytest.raises(FetchError) as private:
        await downloader.fetch(link(tiktok, PRIVATE), workdir(tmp_path, "a"), BUDGET)
    with pytest.raises(SlideshowPost):
        await downloader.fetch(link(tiktok, PHOTO), workdir(tmp_path, "b"), BUDGET)
    tiktok.inject(Fault.BLOCKED_IP, post_id=POST, times=None)
    with pytest.raises(FetchError) as blocked:
        await downloader.fetch(link(tiktok, POST), workdir(tmp_path, "c"), BUDGET)
    tiktok.clear_faults()
    with pytest.raises(FetchError) as too_large:
        await downloader.fetch(link(tiktok, POST), workdir(tmp_path, "d"), 1_000)

    assert private.value.reason is Reason.PRIVATE
    # As the threads answer it (tests/test_ways_in.py): one proxy, refused for good.
    assert (blocked.value.reason, blocked.value.kind) == (Reason.REMOVED, FailureKind.BLOCKED_IP)
    assert too_large.value.reason is Reason.TOO_LARGE


async def test_a_child_that_dies_fails_its_fetch_and_the_next_fetch_starts_another(
    downloader: ProcessDownloader, tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    await downloader.warm_up()
    first = downloader.pid
    assert first is not None
    tiktok.inject(Fault.MEDIA_STALL, post_id=POST)
    into = workdir(tmp_path, "a")
    stalled = asyncio.create_task(downloader.fetch(link(tiktok, POST), into, BUDGET))
    await tiktok.wait_for_media_request()

    os.kill(first, signal.SIGKILL)
    with pytest.raises(FetchError) as died:
        await asyncio.wait_for(stalled, 10)
    download = await downloader.fetch(link(tiktok, POST), workdir(tmp_path, "b"), BUDGET)

    assert died.value.reason is Reason.FAILED
    assert download.path.read_bytes() == h264_clip.path.read_bytes()
    assert downloader.pid not in (None, first)


async def test_a_cancelled_fetch_stops_its_job_in_the_child_and_the_child_serves_on(
    downloader: ProcessDownloader, tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    """The media trickles in (10 s for the clip): a fetch cancelled halfway returns only once
    the child's thread has stopped writing, since the caller removes the job directory next."""
    await downloader.warm_up()
    child = downloader.pid
    into = workdir(tmp_path, "job")
    tiktok.add_video(POST_TRICKLING, h264_clip, bytes_per_s=h264_clip.size // 10)
    trickling = asyncio.create_task(downloader.fetch(link(tiktok, POST_TRICKLING), into, BUDGET))
    async with asyncio.timeout(30):
        while tiktok.media_bytes_sent < h264_clip.size // 5:  # noqa: ASYNC110 - a counter
            await asyncio.sleep(0.02)

    trickling.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trickling
    left = {path.name: path.stat().st_size for path in into.iterdir()}
    await asyncio.sleep(0.5)
    again = await downloader.fetch(link(tiktok, POST), workdir(tmp_path, "again"), BUDGET)

    # Nothing was written after the fetch returned, and the same child serves on.
    assert {path.name: path.stat().st_size for path in into.iterdir()} == left
    assert again.path.exists()
    assert downloader.pid == child


async def test_close_ends_the_child_and_the_child_holds_no_secret(
    downloader: ProcessDownloader, tiktok: TikTokStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "123456:child-must-not-see")
    monkeypatch.setenv("REDIS_URL", "redis://:password@localhost:1/0")
    await downloader.warm_up()
    child = downloader.pid
    assert child is not None
    environ = Path(f"/proc/{child}/environ").read_bytes()

    await asyncio.to_thread(downloader.close)

    assert b"child-must-not-see" not in environ
    assert b"password" not in environ
    assert b"MALLOC_ARENA_MAX=1" in environ
    assert not alive(child)


async def test_an_early_child_is_the_one_the_first_fetch_uses(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    """bot.__main__ starts the process before the bot's imports; the downloader takes it over
    instead of starting another."""
    early = EarlyChild()
    pid = early.pid
    process = ProcessDownloader(config_for(tiktok), early)
    try:
        download = await process.fetch(link(tiktok, POST), workdir(tmp_path, "job"), BUDGET)
        assert download.path.read_bytes() == h264_clip.path.read_bytes()
        assert pid is not None
        assert process.pid == pid
        assert early.pid is None
    finally:
        await asyncio.to_thread(process.close)
    assert not alive(pid)


def test_an_early_child_nobody_took_ends_without_a_word(capfd: pytest.CaptureFixture[str]) -> None:
    """A bot that stops before it wants the process (a missing token, DOWNLOAD_PROCESS read
    as false later) closes it: no config ever comes, and it exits quietly."""
    early = EarlyChild()
    pid = early.pid
    assert pid is not None
    early.close()
    assert not alive(pid)
    assert early.take() is None
    assert capfd.readouterr().err == ""


def test_a_child_told_to_quit_ends_at_once_while_its_input_stays_open(
    tiktok: TikTokStandIn, capfd: pytest.CaptureFixture[str]
) -> None:
    """The bot sends the quit frame before it closes the child's stdin: the child's frames
    thread is then inside the next read, and the child must not wait for it at exit (CPython
    aborts a shutdown that cannot take stdin's lock)."""
    process = spawn()
    assert process.stdin is not None
    assert process.stdout is not None
    try:
        process.stdin.write(pickle.dumps(config_for(tiktok)))
        process.stdin.flush()
        assert pickle.load(process.stdout) == ("ready",)  # noqa: S301 - our own child
        process.stdin.write(pickle.dumps(("quit",)))
        process.stdin.flush()
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
        process.wait()
        process.stdin.close()
        process.stdout.close()
    assert "Fatal Python error" not in capfd.readouterr().err


async def test_the_childs_log_lines_carry_the_job_key_and_never_the_proxy_password(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The child logs as the bot does: the job's key on each line, and the secret it holds (the
    password in DOWNLOAD_PROXY's URL) redacted wherever a line would show it. Here the password
    is the post's id, which the line about the retry names."""
    secret = POST_OF_SECRET
    tiktok.add_video(POST_OF_SECRET, h264_clip)
    tiktok.inject(Fault.PAGE_ERROR, times=1)
    proxy = tiktok.proxy_url.replace("://", f"://reshare:{secret}@", 1)
    process = ProcessDownloader(dataclasses.replace(config_for(tiktok), proxies=(proxy,)))
    JOB_KEY.set("key-of-job-1")
    try:
        download = await process.fetch(
            link(tiktok, POST_OF_SECRET), workdir(tmp_path, "job"), BUDGET
        )
    finally:
        await asyncio.to_thread(process.close)
    assert download.path.read_bytes() == h264_clip.path.read_bytes()
    logs = capfd.readouterr().err
    assert re.search(
        r" INFO \[download process\] bot\.download \[job=key-of-job-1\]: attempt 1 of "
        r"https://www\.tiktok\.com/@_/video/\[redacted\] failed",
        logs,
    ), logs
    assert secret not in logs


async def test_a_proxy_refused_in_the_child_rests_in_the_bots_pool_too(
    tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    """The bot's short-link lookups use the bot's pool: a proxy TikTok refuses the child's
    jobs through must rest there too, and one that works is counted as working."""
    first, second = tiktok.proxy_url, tiktok.add_proxy()
    tiktok.block_proxy(first)
    pool = ProxyPool([first, second], fail_limit=1)
    config = dataclasses.replace(config_for(tiktok), proxies=(first, second))
    process = ProcessDownloader(config, proxies=pool)
    try:
        download = await process.fetch(link(tiktok, POST), workdir(tmp_path, "job"), BUDGET)
    finally:
        await asyncio.to_thread(process.close)
    assert download.path.read_bytes() == h264_clip.path.read_bytes()
    assert pool.resting(first)
    assert not pool.resting(second)
    assert pool.order() == [second, first]


def test_the_child_environment_drops_every_secret_setting() -> None:
    environ = {
        "PATH": "/usr/bin",
        "TELEGRAM_BOT_TOKEN": "t",
        "DISCORD_BOT_TOKEN": "d",
        "TELEGRAM_WEBHOOK_SECRET": "s",
        "COBALT_API_KEY": "k",
        "REDIS_URL": "redis://:p@h/0",
        "MALLOC_ARENA_MAX": "2",
    }

    assert child_environment(environ) == {"PATH": "/usr/bin", "MALLOC_ARENA_MAX": "2"}
