"""/top: a chat's most reshared clips of the week, counted across link forms, sent again from
the cache, and forgotten when the chat turns counting off (real bot, PTB, stand-ins)."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from adapters.runtime import Reshare, pseudonym_key
from bot.chat_settings import ChatSettings
from bot.stores.trending_rules import pseudonym
from bot.trending import TOP_EMPTY_TEXT, TOP_OFF_TEXT, TOP_UNREACHABLE_TEXT
from tests.harness import jobs_done, link, running_bot
from tests.redis_server import RedisServer
from tests.standins.clips import Clip
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import TikTokStandIn

HIT = "7360000000000000001"
OTHER = "7360000000000000002"
GROUP = -800
ADMIN = 91


@pytest.fixture
async def tiktok(h264_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        tt.add_video(HIT, h264_clip, author="dancer")
        tt.add_video(OTHER, h264_clip, author="singer")
        tt.add_short_link("ZMtop001", f"/@dancer/video/{HIT}")
        yield tt


def top_list(api: FakeBotApi) -> dict[str, Any]:
    [*_, last] = [
        m
        for m in api.chat_history(GROUP)
        if m.get("text", "").startswith(("Most", "/top", "Nothing", "I can't"))
    ]
    return last


async def reshare(api: FakeBotApi, bot: Reshare, text: str, user: int, sent: int) -> None:
    api.inject_message(text, chat_id=GROUP, chat_type="group", user_id=user)
    await api.wait_for_call("sendVideo", count=sent)
    await jobs_done(bot)


async def ask_top(api: FakeBotApi, count: int) -> dict[str, Any]:
    api.inject_message("/top", chat_id=GROUP, chat_type="group", user_id=ADMIN)
    await api.wait_for_call("sendMessage", count=count)
    return top_list(api)


async def test_top_counts_across_link_forms_and_sends_again_from_the_cache(
    api: FakeBotApi, tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", telegram=api) as bot:
        empty = await ask_top(api, 1)
        await reshare(api, bot, link(HIT, "dancer"), 1, 1)
        await reshare(api, bot, "https://vm.tiktok.com/ZMtop001/", 2, 2)
        await reshare(api, bot, f"again {link(HIT)}", 2, 3)
        await reshare(api, bot, link(OTHER, "singer"), 3, 4)
        listed = await ask_top(api, 2)
        fetched_before = tiktok.media_requests
        press = api.press_button(GROUP, listed["message_id"], "again:tiktok:" + HIT, user_id=4)
        [*_, again] = await api.wait_for_call("sendVideo", count=5)
        await jobs_done(bot)
        counted = await ask_top(api, 3)
    assert empty["text"] == TOP_EMPTY_TEXT
    lines = listed["text"].splitlines()
    assert lines[1] == f"1. https://www.tiktok.com/@dancer/video/{HIT} — 🔁 3 · 👤 2"
    assert lines[2] == f"2. https://www.tiktok.com/@singer/video/{OTHER} — 🔁 1 · 👤 1"
    keyboard = listed["reply_markup"]["inline_keyboard"]
    assert [b["callback_data"] for b in keyboard[0]] == [
        f"again:tiktok:{HIT}",
        f"again:tiktok:{OTHER}",
    ]
    # Sent again by its file id, quoting the list: TikTok was not asked.
    assert tiktok.media_requests == fetched_before
    assert isinstance(again.params["video"], str)
    assert again.params["reply_parameters"]["message_id"] == listed["message_id"]
    assert api.callback_answer(press) is not None
    assert counted["text"].splitlines()[1].endswith("🔁 4 · 👤 3")


async def test_turning_top_off_forgets_the_chat_s_counts(
    api: FakeBotApi, tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    api.add_chat(GROUP, "group", user_id=ADMIN)
    api.set_member(GROUP, ADMIN, "administrator")
    async with running_bot(tiktok, tmp_path / "data", telegram=api) as bot:
        await reshare(api, bot, link(HIT), 1, 1)
        api.inject_message("/settings", chat_id=GROUP, chat_type="group", user_id=ADMIN)
        [shown] = await api.wait_for_call("sendMessage")
        press = api.press_button(GROUP, shown.result["message_id"], "set:trending", user_id=ADMIN)
        await api.wait_for_call("answerCallbackQuery")
        off = await ask_top(api, 2)
        # Counting stays off: a reshare now is not kept.
        await reshare(api, bot, link(OTHER), 1, 2)
        store = bot.engine.chat_settings
        assert store is not None
        await store.put(f"telegram:chat:{GROUP}", ChatSettings())
        back = await ask_top(api, 3)
    assert api.callback_answer(press) is not None
    assert off["text"] == TOP_OFF_TEXT
    assert back["text"] == TOP_EMPTY_TEXT


async def test_top_says_so_when_the_counts_cannot_be_read(
    api: FakeBotApi, tiktok: TikTokStandIn, redis_server: RedisServer, tmp_path: Path
) -> None:
    """The counts live in Redis, which is down: a short answer, not silence."""
    async with running_bot(tiktok, tmp_path / "data", telegram=api, redis_url=redis_server.url):
        await redis_server.stop()
        try:
            down = await ask_top(api, 1)
        finally:
            await redis_server.start()
        back = await ask_top(api, 2)
    assert down["text"] == TOP_UNREACHABLE_TEXT
    assert back["text"] == TOP_EMPTY_TEXT


async def test_people_are_written_down_under_a_key_from_the_bot_s_token(
    api: FakeBotApi, tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", telegram=api) as bot:
        await reshare(api, bot, link(HIT), 1, 1)
    with contextlib.closing(sqlite3.connect(tmp_path / "data" / "trending.sqlite3")) as db:
        [(chat, person)] = db.execute("SELECT chat, person FROM trending_reshares").fetchall()
    assert person == pseudonym(pseudonym_key(SecretStr(api.token), None), chat, "1")


def test_the_pseudonym_key_follows_each_of_the_tokens() -> None:
    telegram, discord = SecretStr("123456:telegram-secret"), SecretStr("discord-secret")
    key = pseudonym_key(telegram, discord)
    assert key == pseudonym_key(SecretStr("123456:telegram-secret"), discord)
    assert key not in {
        pseudonym_key(telegram, None),
        pseudonym_key(None, discord),
        pseudonym_key(SecretStr("123456:another"), discord),
    }
