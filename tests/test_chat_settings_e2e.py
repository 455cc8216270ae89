"""Per-chat settings change what the next request does, end to end with the real bot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from adapters.runtime import Reshare
from adapters.telegram.app import ADMINS_ONLY_TEXT, SETTINGS_SAVED_TEXT, SETTINGS_TEXT
from bot.chat_settings import AutoDetect, ChatSettings
from tests.harness import jobs_done, link, running_bot, tiktok_serving, until
from tests.standins.clips import Clip
from tests.standins.telegram_api import FakeBotApi

POST = "7340000000000000001"
GROUP = -500


async def on_request_only(bot: Reshare, chat: str) -> None:
    store = bot.engine.chat_settings
    assert store is not None
    await store.put(chat, ChatSettings(auto_detect=AutoDetect.ON_REQUEST))


async def test_a_group_that_wants_links_answered_on_request_only_gets_just_those(
    api: FakeBotApi, h264_clip: Clip, tmp_path: Path
) -> None:
    async with (
        tiktok_serving(h264_clip, POST) as tiktok,
        running_bot(tiktok, tmp_path / "data", telegram=api) as bot,
    ):
        await on_request_only(bot, f"telegram:chat:{GROUP}")
        pasted = api.inject_message(link(POST), chat_id=GROUP, chat_type="group")
        asked = api.inject_message(f"/download {link(POST)}", chat_id=GROUP, chat_type="group")
        [video] = await api.wait_for_call("sendVideo")
        await jobs_done(bot)
        # A private chat is the person's own: always answered.
        api.inject_message(link(POST), chat_id=501)
        await api.wait_for_call("sendVideo", count=2)
        await jobs_done(bot)
    replied_to = [
        (int(call.params["chat_id"]), call.params["reply_parameters"]["message_id"])
        for call in api.calls_to("sendVideo")
    ]
    assert video.params["reply_parameters"]["message_id"] == asked["message_id"]
    assert (GROUP, pasted["message_id"]) not in replied_to
    assert len(replied_to) == 2
    assert api.calls_to("sendMessage") == []


async def test_by_default_a_pasted_link_is_answered_in_a_group(
    api: FakeBotApi, h264_clip: Clip, tmp_path: Path
) -> None:
    async with (
        tiktok_serving(h264_clip, POST) as tiktok,
        running_bot(tiktok, tmp_path / "data", telegram=api) as bot,
    ):
        pasted = api.inject_message(link(POST), chat_id=GROUP, chat_type="group")
        [video] = await api.wait_for_call("sendVideo")
        await jobs_done(bot)
    assert video.params["reply_parameters"]["message_id"] == pasted["message_id"]


ADMIN, MEMBER = 71, 72
SETTINGS_GROUP = -600


def settings_reply(api: FakeBotApi) -> dict[str, Any]:
    [message] = [
        m
        for m in api.chat_history(SETTINGS_GROUP)
        if m.get("reply_markup") and m["text"] == SETTINGS_TEXT
    ]
    return message


def buttons(message: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (button["text"], button["callback_data"])
        for row in message["reply_markup"]["inline_keyboard"]
        for button in row
    ]


async def test_a_group_s_admins_change_its_settings_with_buttons_and_others_cannot(
    api: FakeBotApi, h264_clip: Clip, tmp_path: Path
) -> None:
    api.add_chat(SETTINGS_GROUP, "group", user_id=ADMIN, title="friends")
    api.set_member(SETTINGS_GROUP, ADMIN, "administrator")
    api.set_member(SETTINGS_GROUP, MEMBER, "member")
    async with (
        tiktok_serving(h264_clip, POST) as tiktok,
        running_bot(tiktok, tmp_path / "data", telegram=api) as bot,
    ):
        api.inject_message("/settings", chat_id=SETTINGS_GROUP, chat_type="group", user_id=MEMBER)
        [refusal] = await api.wait_for_call("sendMessage")
        assert refusal.params["text"] == ADMINS_ONLY_TEXT
        api.inject_message("/settings", chat_id=SETTINGS_GROUP, chat_type="group", user_id=ADMIN)
        await api.wait_for_call("sendMessage", count=2)
        shown_now = settings_reply(api)
        assert buttons(shown_now) == [
            ("Pasted links: answered", "set:auto_detect"),
            ("Caption: author, text and link", "set:caption"),
            ("Link message: kept", "set:original"),
            ("Failures: short reply", "set:failures"),
            ("Photo posts: photos", "set:slideshow"),
            ("Language: each person's own", "set:language"),
            ("/top: counted", "set:trending"),
        ]
        # A member's press changes nothing.
        press = api.press_button(
            SETTINGS_GROUP, shown_now["message_id"], "set:auto_detect", user_id=MEMBER
        )
        await until(lambda: answered(api, press))
        assert api.callback_answer(press).params["text"] == ADMINS_ONLY_TEXT
        store = bot.engine.chat_settings
        assert store is not None
        assert await store.get(f"telegram:chat:{SETTINGS_GROUP}") == ChatSettings()
        # An admin's press saves the next choice and shows it.
        press = api.press_button(
            SETTINGS_GROUP, shown_now["message_id"], "set:auto_detect", user_id=ADMIN
        )
        await until(lambda: answered(api, press))
        assert api.callback_answer(press).params["text"] == SETTINGS_SAVED_TEXT
        assert buttons(settings_reply(api))[0] == (
            "Pasted links: only with /download",
            "set:auto_detect",
        )
        # And the next pasted link is not answered; /download is.
        api.inject_message(link(POST), chat_id=SETTINGS_GROUP, chat_type="group", user_id=MEMBER)
        asked = api.inject_message(
            f"/download {link(POST)}", chat_id=SETTINGS_GROUP, chat_type="group", user_id=MEMBER
        )
        [video] = await api.wait_for_call("sendVideo")
        await jobs_done(bot)
    assert video.params["reply_parameters"]["message_id"] == asked["message_id"]
    assert len(api.calls_to("sendVideo")) == 1


def answered(api: FakeBotApi, press: str) -> bool:
    try:
        api.callback_answer(press)
    except KeyError:
        return False
    return True
