"""The receiver's Telegram webhook, as real processes against the Bot API stand-in and a real
redis-server: the secret is checked, a POST is answered 200 only once its job is queued, a
Redis outage gives 503s that Telegram retries, and an update delivered twice is answered once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.cluster import WEBHOOK_PATH, WEBHOOK_SECRET, cluster
from tests.harness import link, replies_to, until
from tests.redis_server import RedisServer
from tests.standins.clips import Clip
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import TikTokStandIn

POSTS = [f"73099100000000{n:04d}" for n in range(4)]
JOBS = "reshare:jobs"


@pytest.fixture
async def tiktok(h264_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        for post in POSTS:
            tt.add_video(post, h264_clip, author="dancer")
        yield tt


async def test_the_secret_is_checked_before_anything_is_queued(
    tiktok: TikTokStandIn, api: FakeBotApi, redis_server: RedisServer, tmp_path: Path
) -> None:
    async with cluster(tmp_path, tiktok, redis_server, telegram=api) as bots:
        receiver = await bots.start("receiver", "receive")
        [set_webhook] = [call for call in api.calls if call.method == "setWebhook"]
        assert set_webhook.params["secret_token"] == WEBHOOK_SECRET
        assert api.webhook_url == f"http://127.0.0.1:{receiver.port}{WEBHOOK_PATH}"
        update = {
            "update_id": 1,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": 5, "type": "private"},
                "from": {"id": 5, "is_bot": False, "first_name": "U"},
                "text": link(POSTS[0]),
            },
        }
        url = f"http://127.0.0.1:{receiver.port}{WEBHOOK_PATH}"
        async with httpx.AsyncClient() as client:
            missing = await client.post(url, json=update)
            wrong = await client.post(
                url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "not-it"}
            )
        assert (missing.status_code, wrong.status_code) == (401, 403)
        redis = redis_server.client()
        assert await redis.exists(JOBS) == 0 or await redis.xlen(JOBS) == 0
        api.inject_message(link(POSTS[0]), chat_id=6)
        [delivery] = await api.webhook_drained()
        assert delivery.status == 200
        assert await redis.xlen(JOBS) == 1
        await redis.aclose()


async def test_redis_down_gives_503s_and_the_update_is_answered_once_it_is_back(
    tiktok: TikTokStandIn, api: FakeBotApi, redis_server: RedisServer, tmp_path: Path
) -> None:
    async with cluster(tmp_path, tiktok, redis_server, telegram=api, JOB_LEASE_S="3") as bots:
        receiver = await bots.start("receiver", "receive")
        worker = await bots.start("worker", "work")
        await redis_server.kill()
        message = api.inject_message(link(POSTS[1]), chat_id=7)
        await until(lambda: any(d.status == 503 for d in api.webhook_deliveries), 30)
        async with httpx.AsyncClient() as client:
            health = await client.get(f"http://127.0.0.1:{receiver.port}/healthz")
        assert health.status_code == 503
        assert "redis" in health.text
        await redis_server.start()
        await until(lambda: len(replies_to(api, message)) == 1, 60)
        await api.webhook_drained()
        await worker.wait_healthy()
        await asyncio.sleep(1.0)
        assert len(replies_to(api, message)) == 1
        assert {d.status for d in api.webhook_deliveries} == {503, 200}


async def test_an_update_delivered_twice_is_answered_once(
    tiktok: TikTokStandIn, api: FakeBotApi, redis_server: RedisServer, tmp_path: Path
) -> None:
    async with cluster(tmp_path, tiktok, redis_server, telegram=api) as bots:
        await bots.start("receiver", "receive")
        worker = await bots.start("worker", "work")
        message = api.inject_message(link(POSTS[2]), chat_id=8)
        await until(lambda: len(replies_to(api, message)) == 1, 60)
        [first] = await api.webhook_drained()
        api.redeliver(first.update_id)
        deliveries = await api.webhook_drained()
        assert [d.status for d in deliveries] == [200, 200]
        await asyncio.sleep(1.5)
        assert len(replies_to(api, message)) == 1
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{worker.port}/metrics")).text
        found = {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(metrics)
            for sample in family.samples
        }
        video = ("reshare_requests_total", (("outcome", "video"), ("platform", "telegram")))
        assert found[video] == 1


async def test_without_a_webhook_url_the_bot_deletes_the_webhook_and_polls(
    tiktok: TikTokStandIn, api: FakeBotApi, redis_server: RedisServer, tmp_path: Path
) -> None:
    async with cluster(tmp_path, tiktok, redis_server, telegram=api) as bots:
        receiver = await bots.start("receiver", "receive")
        assert api.webhook_url
        await receiver.stop()
        await bots.start("bot", "all", embedded=True)
        assert api.webhook_url == ""
        assert any(call.method == "deleteWebhook" for call in api.calls)
        message = api.inject_message(link(POSTS[3]), chat_id=9)
        await until(lambda: len(replies_to(api, message)) == 1, 60)
