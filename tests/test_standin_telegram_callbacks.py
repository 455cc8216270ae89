"""The Bot API stand-in's inline buttons, deletions and chat members, driven by the real
python-telegram-bot: what per-chat settings and buttons under videos need."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from telegram import (
    Bot,
    ChatMemberAdministrator,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberOwner,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Update,
)
from telegram.error import BadRequest

from tests.standins.telegram_api import FakeBotApi

TOO_OLD = "(?i)query is too old and response timeout expired or query ID is invalid"
NOT_MODIFIED = "(?i)message is not modified"
TEXT_BUTTON = "Text buttons are unallowed in the inline keyboard"
GROUP = -4001
SUPERGROUP = -1004001
KEYBOARD = InlineKeyboardMarkup(
    [
        [InlineKeyboardButton("Settings", callback_data="settings")],
        [InlineKeyboardButton("Source", url="https://example.com/clip")],
    ]
)


@pytest.fixture
async def bot(api: FakeBotApi) -> AsyncIterator[Bot]:
    async with Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as real:
        yield real


async def _updates(bot: Bot) -> list[Update]:
    """Everything pending, confirmed at once."""
    updates = list(await bot.get_updates(timeout=0))
    if updates:
        await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    return updates


async def _send_raw(api: FakeBotApi, chat_id: int, markup: dict[str, Any]) -> dict[str, Any]:
    """sendMessage as JSON over plain HTTP: the whole answer, descriptions as Telegram words
    them (PTB would build the markup itself and capitalize errors)."""
    async with httpx.AsyncClient() as client:
        params = {"chat_id": chat_id, "text": "hi", "reply_markup": markup}
        url = f"{api.root}/bot{api.token}/sendMessage"
        answer: dict[str, Any] = (await client.post(url, json=params)).json()
        return answer


# Keyboards


async def test_sent_messages_keep_their_inline_keyboard(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(1001)
    sent = await bot.send_message(1001, "Your clip", reply_markup=KEYBOARD)
    assert sent.reply_markup == KEYBOARD
    video = await bot.send_video(1001, video=b"\x00mp4" * 8, reply_markup=KEYBOARD)
    assert video.reply_markup == KEYBOARD
    history = api.chat_history(1001)
    assert [m["reply_markup"] for m in history] == [KEYBOARD.to_dict()] * 2


async def test_a_reply_keyboard_is_not_part_of_the_message(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(1001)
    sent = await _send_raw(api, 1001, {"keyboard": [[{"text": "a reply keyboard"}]]})
    assert "reply_markup" not in sent["result"]
    assert "reply_markup" not in api.chat_history(1001)[0]


async def test_a_button_keeps_the_first_action_as_telegram_bot_api_reads_it(
    api: FakeBotApi, bot: Bot
) -> None:
    api.add_chat(1001)
    button = {"text": "both", "url": "https://example.com", "callback_data": "x"}
    sent = await _send_raw(api, 1001, {"inline_keyboard": [[button]]})
    assert sent["result"]["reply_markup"] == {
        "inline_keyboard": [[{"text": "both", "url": "https://example.com"}]]
    }
    empty_url = {"text": "data", "url": "", "callback_data": "x"}
    sent = await _send_raw(api, 1001, {"inline_keyboard": [[empty_url]]})
    first = sent["result"]["reply_markup"]["inline_keyboard"][0][0]
    assert first == {"text": "data", "callback_data": "x"}


@pytest.mark.parametrize(
    ("button", "error"),
    [
        ({"text": "long", "callback_data": "x" * 65}, "BUTTON_DATA_INVALID"),
        ({"text": "bytes", "callback_data": "é" * 33}, "BUTTON_DATA_INVALID"),
        ({"text": "", "callback_data": "x"}, "inline keyboard button text must be non-empty"),
        ({"text": "no action"}, f"can't parse inline keyboard button: {TEXT_BUTTON}"),
        (
            {"text": "empty data", "callback_data": ""},
            f"can't parse inline keyboard button: {TEXT_BUTTON}",
        ),
        ({"callback_data": "x"}, "can't parse inline keyboard button: Can't find field \"text\""),
    ],
)
async def test_inline_keyboards_are_checked(
    api: FakeBotApi, bot: Bot, button: dict[str, Any], error: str
) -> None:
    api.add_chat(1001)
    answer = await _send_raw(api, 1001, {"inline_keyboard": [[button]]})
    assert answer == {"ok": False, "error_code": 400, "description": f"Bad Request: {error}"}
    assert api.chat_history(1001) == []


async def test_sixty_four_bytes_of_callback_data_are_fine(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(1001)
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("ok", callback_data="x" * 64)]])
    assert (await bot.send_message(1001, "hi", reply_markup=markup)).reply_markup == markup


# Pressing buttons


async def test_a_press_is_a_callback_query_update(api: FakeBotApi, bot: Bot) -> None:
    api.inject_message("hello", language_code="de")
    await _updates(bot)
    sent = await bot.send_message(1001, "Your clip", reply_markup=KEYBOARD)
    query_id = api.press_button(1001, sent.message_id, "settings")
    [update] = await _updates(bot)
    query = update.callback_query
    assert query is not None
    assert (query.id, query.data, query.from_user.id) == (query_id, "settings", 42)
    assert query.from_user.language_code == "de"
    assert query.message is not None
    assert query.message.message_id == sent.message_id
    assert query.chat_instance
    again = api.press_button(1001, sent.message_id, "settings")
    [second] = await _updates(bot)
    assert second.callback_query is not None
    assert second.callback_query.chat_instance == query.chat_instance
    assert again != query_id


async def test_pressing_a_button_that_is_not_there_is_refused(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(1001)
    sent = await bot.send_message(1001, "Your clip", reply_markup=KEYBOARD)
    plain = await bot.send_message(1001, "no buttons")
    with pytest.raises(ValueError, match="no button"):
        api.press_button(1001, sent.message_id, "other")
    with pytest.raises(ValueError, match="no button"):
        api.press_button(1001, plain.message_id, "settings")
    with pytest.raises(ValueError, match="not in chat"):
        api.press_button(1001, 999, "settings")


async def test_answer_callback_query_is_recorded_once(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(1001)
    sent = await bot.send_message(1001, "Your clip", reply_markup=KEYBOARD)
    query_id = api.press_button(1001, sent.message_id, "settings")
    with pytest.raises(KeyError):
        api.callback_answer(query_id)
    assert await bot.answer_callback_query(query_id, text="Saved", show_alert=True)
    answer = api.callback_answer(query_id)
    assert answer.params["text"] == "Saved"
    assert answer.params["show_alert"] is True
    with pytest.raises(BadRequest, match=TOO_OLD):
        await bot.answer_callback_query(query_id)


async def test_a_late_or_unknown_answer_is_too_old(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(1001)
    sent = await bot.send_message(1001, "Your clip", reply_markup=KEYBOARD)
    api.callback_window_s = 0.0
    query_id = api.press_button(1001, sent.message_id, "settings")
    for unanswerable in (query_id, "12345"):
        with pytest.raises(BadRequest, match=TOO_OLD):
            await bot.answer_callback_query(unanswerable)


# editMessageReplyMarkup


async def test_edit_message_reply_markup(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(1001)
    sent = await bot.send_message(1001, "Your clip", reply_markup=KEYBOARD)
    other = InlineKeyboardMarkup([[InlineKeyboardButton("Back", callback_data="back")]])
    edited = await bot.edit_message_reply_markup(1001, sent.message_id, reply_markup=other)
    assert not isinstance(edited, bool)
    assert edited.reply_markup == other
    assert api.chat_history(1001)[0]["reply_markup"] == other.to_dict()
    api.press_button(1001, sent.message_id, "back")
    with pytest.raises(BadRequest, match=NOT_MODIFIED):
        await bot.edit_message_reply_markup(1001, sent.message_id, reply_markup=other)
    await bot.edit_message_reply_markup(1001, sent.message_id)
    assert "reply_markup" not in api.chat_history(1001)[0]
    with pytest.raises(BadRequest, match=NOT_MODIFIED):
        await bot.edit_message_reply_markup(1001, sent.message_id)


async def test_edit_message_reply_markup_errors(api: FakeBotApi, bot: Bot) -> None:
    user = api.inject_message("hello")
    with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
        await bot.edit_message_reply_markup(1001, 999, reply_markup=KEYBOARD)
    with pytest.raises(BadRequest, match=r"(?i)message can't be edited"):
        await bot.edit_message_reply_markup(1001, user["message_id"], reply_markup=KEYBOARD)


# deleteMessage


async def test_the_bot_deletes_its_own_message(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(1001)
    sent = await bot.send_message(1001, "Your clip")
    kept = await bot.send_message(1001, "kept")
    assert await bot.delete_message(1001, sent.message_id)
    assert api.deleted(1001, sent.message_id)
    assert not api.deleted(1001, kept.message_id)
    assert [m["message_id"] for m in api.chat_history(1001)] == [kept.message_id]
    with pytest.raises(BadRequest) as raised:
        await bot.delete_message(1001, sent.message_id)
    assert raised.value.message == "Message to delete not found"  # PTB capitalizes


async def test_private_chats_allow_deleting_the_users_messages_for_48_hours(
    api: FakeBotApi, bot: Bot
) -> None:
    fresh = api.inject_message("a link")
    old = api.inject_message("an old link")
    assert await bot.delete_message(1001, fresh["message_id"])
    api.backdate(1001, old["message_id"], 48 * 3600)
    with pytest.raises(BadRequest) as raised:
        await bot.delete_message(1001, old["message_id"])
    assert raised.value.message == "Message can't be deleted for everyone"
    assert not api.deleted(1001, old["message_id"])


async def test_groups_need_an_administrator_to_delete_others_messages(
    api: FakeBotApi, bot: Bot
) -> None:
    user = api.inject_message("a link", chat_id=GROUP, chat_type="group")
    with pytest.raises(BadRequest) as raised:
        await bot.delete_message(GROUP, user["message_id"])
    assert raised.value.message == "Message can't be deleted"
    api.add_chat(GROUP, "group", bot_status="administrator")
    assert await bot.delete_message(GROUP, user["message_id"])
    assert api.deleted(GROUP, user["message_id"])


async def test_supergroups_need_can_delete_messages(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(
        SUPERGROUP, "supergroup", bot_status="administrator", bot_can_delete_messages=False
    )
    user = api.inject_message("a link", chat_id=SUPERGROUP, chat_type="supergroup")
    with pytest.raises(BadRequest, match="can't be deleted"):
        await bot.delete_message(SUPERGROUP, user["message_id"])
    member = await bot.get_chat_member(SUPERGROUP, bot.id)
    assert isinstance(member, ChatMemberAdministrator)
    assert not member.can_delete_messages
    api.add_chat(SUPERGROUP, "supergroup", bot_can_delete_messages=True)
    api.backdate(SUPERGROUP, user["message_id"], 72 * 3600)
    assert await bot.delete_message(SUPERGROUP, user["message_id"])


# Chat members


async def test_chat_members_have_their_shapes(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(SUPERGROUP, "supergroup", user_id=7)
    api.set_member(SUPERGROUP, 7, "creator")
    api.set_member(SUPERGROUP, 8, "administrator")
    api.set_member(SUPERGROUP, 9, "member")
    owner = await bot.get_chat_member(SUPERGROUP, 7)
    assert isinstance(owner, ChatMemberOwner)
    assert owner.user.id == 7
    admin = await bot.get_chat_member(SUPERGROUP, 8)
    assert isinstance(admin, ChatMemberAdministrator)
    assert admin.can_delete_messages
    assert admin.can_restrict_members
    assert not admin.can_promote_members
    assert isinstance(await bot.get_chat_member(SUPERGROUP, 9), ChatMemberMember)
    assert isinstance(await bot.get_chat_member(SUPERGROUP, 10), ChatMemberLeft)
    admins = await bot.get_chat_administrators(SUPERGROUP)
    assert [m.user.id for m in admins] == [7, 8]
    api.add_chat(SUPERGROUP, "supergroup", bot_status="administrator")
    admins = await bot.get_chat_administrators(SUPERGROUP)
    assert [m.user.id for m in admins] == [7, 8, bot.id]


async def test_member_statuses_are_checked(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(1001)
    api.add_chat(GROUP, "group")
    with pytest.raises(ValueError, match="private"):
        api.set_member(1001, 42, "administrator")
    with pytest.raises(ValueError, match="supergroups"):
        api.set_member(GROUP, 42, "restricted")
    with pytest.raises(ValueError, match="status"):
        api.set_member(GROUP, 42, "owner")
    with pytest.raises(BadRequest, match="no administrators in the private chat"):
        await bot.get_chat_administrators(1001)


# language_code


async def test_language_code_follows_the_user(api: FakeBotApi, bot: Bot) -> None:
    api.inject_message("hallo", language_code="de")
    api.inject_message("hello", user_id=43, chat_id=1002, language_code=None)
    api.inject_inline_query("clip")
    first, second, inline = await _updates(bot)
    assert first.effective_user is not None
    assert first.effective_user.language_code == "de"
    assert second.effective_user is not None
    assert second.effective_user.language_code is None
    assert inline.inline_query is not None
    assert inline.inline_query.from_user.language_code == "de"
