"""Shared fixtures. Clips are rendered once per test session (per xdist worker); the stand-ins
start afresh for each test. A test file that needs a stand-in set up otherwise (posts, a token)
defines a fixture of the same name, which takes the place of the one here."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis

from adapters.runtime import Reshare
from tests.harness import running_bot
from tests.redis_server import RedisServer
from tests.standins.clips import Clip, make_clip, make_music
from tests.standins.cobalt import CobaltStandIn
from tests.standins.discord_api import FakeDiscord
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import TikTokStandIn


@pytest.fixture
async def tiktok() -> AsyncIterator[TikTokStandIn]:
    """A TikTok stand-in serving nothing yet."""
    async with TikTokStandIn() as tt:
        yield tt


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    """A Bot API stand-in with its default token."""
    async with FakeBotApi() as server:
        yield server


@pytest.fixture
async def bot(tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path) -> AsyncIterator[Reshare]:
    """The real bot, in-process, serving `api` and downloading from `tiktok`."""
    async with running_bot(tiktok, tmp_path / "data", telegram=api) as reshare:
        yield reshare


@pytest.fixture
async def discord_api() -> AsyncIterator[FakeDiscord]:
    """A Discord stand-in (REST and gateway) with its default token."""
    async with FakeDiscord() as server:
        yield server


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A real redis-server (appendonly, on a free port) with its data in `tmp_path / "redis"`."""
    async with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture(scope="session")
def h264_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """A 2 s 360x640 H.264 + AAC clip, like TikTok's h264 renditions."""
    return make_clip(tmp_path_factory.mktemp("clips") / "h264.mp4")


@pytest.fixture(scope="session")
def hevc_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """A 2 s 360x640 HEVC (hvc1) + AAC clip, like TikTok's bytevc1 renditions."""
    return make_clip(tmp_path_factory.mktemp("clips") / "hevc.mp4", codec="hevc")


@pytest.fixture(scope="session")
def tall_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """A second, different H.264 clip (3 s, 432x768), to tell replies apart."""
    return make_clip(
        tmp_path_factory.mktemp("clips") / "tall.mp4", duration=3.0, width=432, height=768
    )


@pytest.fixture(scope="session")
def large_clip(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """Over Discord's default 10 MiB upload limit: 30 s of 1080x1920 at 4 Mbit/s (~15 MB)."""
    return make_clip(
        tmp_path_factory.mktemp("clips") / "large.mp4",
        duration=30.0,
        width=1080,
        height=1920,
        bitrate="4M",
    )


@pytest.fixture(scope="session")
def small_rendition(tmp_path_factory: pytest.TempPathFactory) -> Clip:
    """The same 30 s at 720x1280 and 1.5 Mbit/s (~6 MB): a format that fits 10 MiB as served."""
    return make_clip(
        tmp_path_factory.mktemp("clips") / "small.mp4",
        duration=30.0,
        width=720,
        height=1280,
        bitrate="1500k",
    )


@pytest.fixture
def collect_leaked_sockets() -> Iterator[None]:
    """yt-dlp drops the response of a refused media request without closing it (see
    tests/test_tiktok_faults.py): collected at the end of the test, so its ResourceWarning is
    raised there, where the test's filter ignores it, and never in another test."""
    yield
    gc.collect()


@pytest.fixture(scope="session")
def music(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1 s MP3, like a photo post's sound."""
    return make_music(tmp_path_factory.mktemp("music") / "music.mp3", duration=1.0)


@pytest.fixture
async def cobalt() -> AsyncIterator[CobaltStandIn]:
    """A cobalt instance stand-in that asks for no API key."""
    async with CobaltStandIn() as server:
        yield server


# Contract suites run each store twice: embedded (SQLite, memory) and against a real
# redis-server; a test asks for `mode`, and for `redis` (None in the embedded mode).
@pytest.fixture(params=["embedded", "redis"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def server(mode: str, tmp_path: Path) -> AsyncIterator[RedisServer | None]:
    """A real redis-server in the redis mode; None in the embedded mode."""
    if mode != "redis":
        yield None
        return
    async with RedisServer(tmp_path / "redis") as started:
        yield started


@pytest.fixture
async def redis(server: RedisServer | None) -> AsyncIterator[Redis | None]:
    if server is None:
        yield None
        return
    client = Redis.from_url(server.url)
    try:
        yield client
    finally:
        await client.aclose()
