"""The distributed mode end to end, as real processes: a receiver taking Telegram updates by
webhook and Discord events from the gateway, workers running the jobs, all on one real
redis-server, against the stand-ins."""

from __future__ import annotations

import asyncio
import contextlib
import random
import re
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.cluster import Cluster, cluster
from tests.harness import answers_to, link, replies_to, until
from tests.redis_server import RedisServer
from tests.standins.clips import Clip
from tests.standins.discord_api import FakeDiscord
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import Fault, TikTokStandIn

POSTS = [f"73099000000000{n:05d}" for n in range(40)]


@pytest.fixture
async def tiktok(h264_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        for post in POSTS:
            tt.add_video(post, h264_clip, author="dancer")
        yield tt


async def test_a_receiver_and_a_worker_answer_a_link(
    tiktok: TikTokStandIn, api: FakeBotApi, redis_server: RedisServer, tmp_path: Path
) -> None:
    async with cluster(tmp_path, tiktok, redis_server, telegram=api) as bots:
        await bots.start("receiver", "receive")
        await bots.start("worker-1", "work")
        message = api.inject_message(link(POSTS[0]), chat_id=11)
        await until(lambda: len(replies_to(api, message)) == 1, within_s=60)
        [reply] = replies_to(api, message)
        assert "video" in reply
        codes = await bots.stop_all()
    assert codes == {"receiver": 0, "worker-1": 0}, bots.logs()
    assert bots.temp_files() == []


PRIVATE = "7309900000009999"
REQUESTS = 300
DISCORD_EVERY = 5  # one request in five is a Discord /download
SETTINGS = {
    "JOB_LEASE_S": "3",
    "SHUTDOWN_GRACE_S": "2",
    "WORKERS": "4",
    "DOWNLOAD_TIMEOUT_S": "20",
    "RATE_LIMIT_USER_PER_MIN": "1000",
    "RATE_LIMIT_CHAT_PER_MIN": "1000",
    "LOG_LEVEL": "INFO",
}


class Storm:
    """Requests from many chats on both platforms: new clips, repeats, short links, a private
    post; each one's answers are read back at the stand-ins."""

    def __init__(self, tiktok: TikTokStandIn, api: FakeBotApi, dc: FakeDiscord) -> None:
        self._api = api
        self._dc = dc
        self.asked: list[tuple[str, dict[str, Any]]] = []
        self._rng = random.Random(20261204)
        self.stock(tiktok)

    @staticmethod
    def stock(tiktok: TikTokStandIn) -> None:
        """The private post and the short links (the clips are the fixture's)."""
        tiktok.add_status(PRIVATE, 10216)
        for n, post in enumerate(POSTS[:10]):
            tiktok.add_short_link(f"ZMstorm{n}", f"/@dancer/video/{post}")

    def url(self) -> str:
        roll = self._rng.random()
        if roll < 0.1:
            return f"https://vm.tiktok.com/ZMstorm{self._rng.randrange(10)}/"
        if roll < 0.14:
            return link(PRIVATE)
        return link(self._rng.choice(POSTS))

    def send(self, count: int, *, discord: bool = True) -> None:
        for _ in range(count):
            n = len(self.asked)
            if discord and n % DISCORD_EVERY == 0:
                asked = self._dc.inject_slash_command(
                    "download", {"url": self.url()}, user_id=60_000 + n
                )
                self.asked.append(("discord", asked))
            else:
                message = self._api.inject_message(
                    self.url(), chat_id=70_000 + n, user_id=80_000 + n
                )
                self.asked.append(("telegram", message))

    def answers(self) -> list[list[dict[str, Any]]]:
        return [
            replies_to(self._api, asked) if platform == "telegram" else answers_to(self._dc, asked)
            for platform, asked in self.asked
        ]

    def answered(self) -> int:
        return sum(1 for found in self.answers() if found)

    async def wait_answered(self, count: int, within_s: float = 120.0) -> None:
        """Until `count` requests have an answer. Looked at twice a second: reading 300
        conversations back takes the stand-ins' event loop a while, which the bots share."""
        async with asyncio.timeout(within_s):
            while self.answered() < count:  # noqa: ASYNC110 - the stand-ins' state, polled
                await asyncio.sleep(0.5)

    async def settle(self) -> None:
        """Until every request has an answer (or long enough to say which have none)."""
        with contextlib.suppress(TimeoutError):
            await self.wait_answered(len(self.asked), within_s=180)
        await asyncio.sleep(1.0)  # a second answer to anything would come now


@pytest.fixture
async def discord_api() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as server:
        yield server


async def start_cluster(bots: Cluster, dc: FakeDiscord, workers: int = 3) -> None:
    await bots.start("receiver", "receive")
    await dc.wait_ready(timeout=30)
    for n in range(1, workers + 1):
        await bots.start(f"worker-{n}", "work")


def assert_each_answered_once(storm: Storm, bots: Cluster) -> None:
    answers = storm.answers()
    unanswered = [asked for asked, found in zip(storm.asked, answers, strict=True) if not found]
    twice = [found for found in answers if len(found) > 1]
    assert len(answers) == REQUESTS
    assert unanswered == [], [
        (platform, asked.get("text") or asked.get("data", {}).get("options"), asked.get("chat"))
        for platform, asked in unanswered
    ]
    assert twice == [], [[describe(answer) for answer in found] for found in twice]


def describe(answer: dict[str, Any]) -> tuple[object, ...]:
    """An answer as the failure message shows it: kind, where, when, how it was sent."""
    return (
        kind(answer),
        (answer.get("chat") or {}).get("id") or answer.get("channel_id"),
        answer.get("date") or answer.get("timestamp"),
        (answer.get("interaction_metadata") or {}).get("id"),
        answer.get("flags"),
    )


async def test_three_hundred_requests_survive_a_killed_worker_and_a_restarted_receiver(
    tiktok: TikTokStandIn,
    api: FakeBotApi,
    discord_api: FakeDiscord,
    redis_server: RedisServer,
    h264_clip: Clip,
    tmp_path: Path,
) -> None:
    """Worker 1 downloads through a TikTok whose video servers never answer, so it is killed
    with its jobs in hand, mid-download (each holding its job's and its clip's lease).

    A kill in the instant between the platform taking an answer and the journal noting it
    would send that answer again (at least once); that instant is not what this test aims at.
    """
    storm = Storm(tiktok, api, discord_api)
    async with (
        TikTokStandIn() as silent,
        cluster(
            tmp_path, tiktok, redis_server, telegram=api, discord=discord_api, **SETTINGS
        ) as bots,
    ):
        for post in POSTS:
            silent.add_video(post, h264_clip, author="dancer")
        Storm.stock(silent)
        silent.inject(Fault.MEDIA_SILENT, times=None)
        await bots.start("receiver", "receive")
        await discord_api.wait_ready(timeout=30)
        await bots.start(
            "worker-1", "work", DOWNLOAD_PROXY=silent.proxy_url, DOWNLOAD_TIMEOUT_S="120"
        )
        await bots.start("worker-2", "work")
        await bots.start("worker-3", "work")
        storm.send(100)
        await storm.wait_answered(30)
        await until(lambda: silent.media_requests >= 2, 60)
        await asyncio.sleep(1.0)  # its other slots fill with downloads that never end
        # Worker 1 dies: no goodbye, no acknowledgement.
        assert await bots.processes["worker-1"].stop(signal.SIGKILL) == -signal.SIGKILL
        storm.send(100)
        await storm.wait_answered(150)
        # The receiver restarts: Telegram keeps delivering (and retrying) meanwhile.
        assert await bots.processes["receiver"].stop() == 0
        storm.send(40, discord=False)
        await bots.start("receiver", "receive")
        await discord_api.wait_ready(timeout=30, sessions=2)
        storm.send(60)
        await storm.settle()
        # The killed worker's machine comes back: it clears what the kill left behind.
        bots.processes["worker-1"].env["DOWNLOAD_PROXY"] = tiktok.proxy_url
        await bots.start("worker-1", "work")
        await asyncio.sleep(1.0)
        codes = await bots.stop_all()
    assert_each_answered_once(storm, bots)
    assert set(codes.values()) == {0}, bots.logs()[-5000:]
    assert bots.temp_files() == []
    assert "Traceback" not in bots.logs()
    kinds = {kind(found[0]) for found in storm.answers()}
    assert kinds == {"video", "This video is private."}


async def test_three_hundred_requests_survive_a_redis_restart(
    tiktok: TikTokStandIn,
    api: FakeBotApi,
    discord_api: FakeDiscord,
    redis_server: RedisServer,
    tmp_path: Path,
) -> None:
    storm = Storm(tiktok, api, discord_api)
    async with cluster(
        tmp_path, tiktok, redis_server, telegram=api, discord=discord_api, **SETTINGS
    ) as bots:
        await start_cluster(bots, discord_api)
        storm.send(150)
        await storm.wait_answered(40)
        # Redis restarts from its append-only file; Telegram updates meanwhile get 503s.
        await redis_server.stop()
        storm.send(50, discord=False)
        await asyncio.sleep(1.0)
        await redis_server.start()
        storm.send(100)
        await storm.settle()
        codes = await bots.stop_all()
    assert_each_answered_once(storm, bots)
    assert set(codes.values()) == {0}, bots.logs()[-5000:]
    assert bots.temp_files() == []


def kind(reply: dict[str, Any]) -> str:
    if "video" in reply or any(
        a["filename"].endswith(".mp4") for a in reply.get("attachments", [])
    ):
        return "video"
    return re.sub(r"^<@\d+> ", "", str(reply.get("text") or reply.get("content")))


async def test_fifty_requests_for_one_new_clip_on_three_workers_make_one_download(
    tiktok: TikTokStandIn, api: FakeBotApi, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Single-flight and the cache across machines: one download, one upload, and every other
    worker sends the clip again by the file_id the first upload got."""
    async with cluster(
        tmp_path, tiktok, redis_server, telegram=api, discord=None, **SETTINGS
    ) as bots:
        await bots.start("receiver", "receive")
        for n in range(1, 4):
            await bots.start(f"worker-{n}", "work")
        messages = [
            api.inject_message(link(POSTS[39]), chat_id=90_000 + n, user_id=90_000 + n)
            for n in range(50)
        ]
        await until(lambda: all(replies_to(api, m) for m in messages), within_s=120)
        await asyncio.sleep(1.0)
        answers = [replies_to(api, m) for m in messages]
        ran = [bots.processes[f"worker-{n}"].logs().count("Executing task") for n in (1, 2, 3)]
    assert sum(ran) == 50
    assert sum(1 for jobs in ran if jobs) >= 2, ran  # spread over the workers
    assert all(len(found) == 1 and "video" in found[0] for found in answers)
    assert tiktok.media_requests == 1
    uploads = [c for c in api.calls_to("sendVideo") if c.files]
    assert len(uploads) == 1
    file_id = answers[0][0]["video"]["file_id"]
    assert {found[0]["video"]["file_id"] for found in answers} == {file_id}


async def test_one_process_with_redis_url_is_receiver_and_worker_at_once(
    tiktok: TikTokStandIn, api: FakeBotApi, redis_server: RedisServer, tmp_path: Path
) -> None:
    async with cluster(tmp_path, tiktok, redis_server, telegram=api) as bots:
        await bots.start("bot", "all")
        message = api.inject_message(link(POSTS[1]), chat_id=12)
        await until(lambda: len(replies_to(api, message)) == 1, within_s=60)
        redis = redis_server.client()
        try:
            assert await redis.xlen("reshare:jobs") == 1  # it went through the shared queue
        finally:
            await redis.aclose()
        codes = await bots.stop_all()
    assert codes == {"bot": 0}, bots.logs()
    assert "running (all, distributed, state in Redis)" in bots.logs()
