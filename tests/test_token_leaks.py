"""Tokens never show: the real process at DEBUG, with both platforms' APIs failing requests.

Everything is scanned: what the process wrote (stdout, stderr), every file it left in DATA_DIR,
and every text the stand-ins received from it.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Iterable
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.harness import bot_env, run_bot, serving_env
from tests.standins.clips import Clip
from tests.standins.cobalt import CobaltStandIn
from tests.standins.discord_api import FakeDiscord
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import Fault, TikTokStandIn

TELEGRAM_TOKEN = "5550123:TEST-leak-probe_token-telegram"
POST = "7301234567890123499"
PRIVATE_POST = "7301234567890000099"


@pytest.fixture
async def tiktok(h264_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        tt.add_video(POST, h264_clip)
        tt.add_status(PRIVATE_POST, 10216)
        yield tt


def leaks(token: str, texts: Iterable[str]) -> list[str]:
    """The texts holding the token in any form: as is, percent-encoded, `bot<token>`, or the
    secret half of a Telegram token."""
    forms = {token, quote(token, safe=""), quote(token)}
    if ":" in token:
        forms.add(token.partition(":")[2])
    return [text[:200] for text in texts for form in forms if form in text]


def files_text(root: Path) -> list[str]:
    return [p.read_bytes().decode("latin-1") for p in root.rglob("*") if p.is_file()]


async def test_failing_requests_on_both_platforms_at_debug_leak_no_token(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    async with FakeBotApi(token=TELEGRAM_TOKEN) as api, FakeDiscord() as discord_api:
        # Polling fails once, the typing indicator is refused, the first reason is rejected.
        api.fail_next("getUpdates", 500)
        api.fail_next("sendChatAction", 502, times=3)
        api.fail_next("sendMessage", 400, "Bad Request: chat not found")
        discord_api.fail_next("POST", r"/webhooks/", status=500, code=0, times=2)
        discord_api.fail_next("POST", r"/interactions/", status=500, code=0)
        env = serving_env(tmp_path, tiktok, telegram=api, discord=discord_api, LOG_LEVEL="DEBUG")
        process = await run_bot(tmp_path, env)
        private = f"https://www.tiktok.com/@x/video/{PRIVATE_POST}"
        try:
            await discord_api.wait_ready(timeout=60)
            discord_api.inject_slash_command("download", {"url": private})
            discord_api.inject_slash_command("download", {"url": tiktok.post_url(POST)})
            api.inject_message(private, chat_id=31)
            api.inject_message(private, chat_id=32)
            # The second reason goes through once the first was rejected: all failures happened.
            await api.wait_for_call("sendMessage", count=2, timeout=60)
            await discord_api.wait_for_request("POST", r"/interactions/", count=2, timeout=60)
            await discord_api.wait_for_request("POST", r"/webhooks/", count=2, timeout=60)
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
        sent_to_telegram = [json.dumps(call.params) for call in api.calls]
        sent_to_discord = [json.dumps(call.json) for call in discord_api.requests]
    written = [stdout.decode(), stderr.decode(), *files_text(tmp_path / "data")]
    assert "getUpdates" in stderr.decode()  # httpx's DEBUG lines, with their URLs, are there
    assert "Traceback" in stderr.decode() or "Error" in stderr.decode()
    for token in (TELEGRAM_TOKEN, discord_api.token):
        assert leaks(token, written) == []
        assert leaks(token, sent_to_telegram + sent_to_discord) == []


async def test_a_refused_discord_token_is_not_echoed(tmp_path: Path) -> None:
    async with FakeDiscord() as discord_api:
        wrong = "MTExMTExMTExMTEx.TEST.wrong-discord-token-value"
        env = bot_env(
            tmp_path,
            LOG_LEVEL="DEBUG",
            DISCORD_BOT_TOKEN=wrong,
            DISCORD_API_URL=discord_api.api_url,
            DISCORD_GATEWAY_URL=discord_api.gateway_url,
        )
        process = await run_bot(tmp_path, env)
        stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 1
    assert "could not start" in stderr.decode()
    assert leaks(wrong, [stdout.decode(), stderr.decode(), *files_text(tmp_path)]) == []


async def test_the_cobalt_key_and_proxy_passwords_never_show(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    key = "0b7e3c7a-9d41-4f3e-8a55-2c9e1f6d7b10"
    password = "pr0xy-S3cret_pass"
    async with CobaltStandIn(api_key="5d1f0c2e-7a3b-4c8d-9e6f-1a2b3c4d5e6f") as cobalt:
        tiktok.inject(Fault.CHALLENGE, times=None)
        proxy = tiktok.proxy_url.replace("http://", f"http://reshare:{password}@")
        env = bot_env(
            tmp_path,
            LOG_LEVEL="DEBUG",
            DOWNLOAD_PROXY=proxy,
            DOWNLOAD_VERIFY_TLS="false",
            COBALT_API_URL=cobalt.url,
            COBALT_API_KEY=key,
        )
        process = await run_bot(tmp_path, env, "fetch", tiktok.post_url(POST))
        stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
        [asked] = cobalt.api_requests
    assert asked.headers["Authorization"] == f"Api-Key {key}"
    assert process.returncode == 1
    assert "COBALT_API_KEY" in stderr.decode()  # the warning naming the fix is there
    # The password was in use (the proxy was asked with it), and still never written anywhere.
    assert any("proxy-authorization: basic" in head.lower() for head in tiktok.proxy_heads)
    written = [stdout.decode(), stderr.decode(), *files_text(tmp_path)]
    assert [text for text in written if key in text or password in text] == []
