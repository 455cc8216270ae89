"""The Bot API stand-in's inline mode and storage chats, driven by the real python-telegram-bot.

The user types "@bot query" (inject_inline_query), the bot answers, the user picks a result
(choose_inline_result), and the bot edits what was posted by its inline_message_id.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from telegram import (
    Bot,
    ChatMemberAdministrator,
    ChatMemberMember,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InlineQueryResultCachedVideo,
    InlineQueryResultsButton,
    InputMediaPhoto,
    InputMediaVideo,
    InputTextMessageContent,
    Update,
)
from telegram.error import BadRequest, Forbidden

from tests.standins.telegram_api import FakeBotApi

STORAGE = -1001234567890
TOO_OLD = "query is too old and response timeout expired or query ID is invalid"


@pytest.fixture
async def bot(api: FakeBotApi) -> AsyncIterator[Bot]:
    async with Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as real:
        yield real


async def _stored_video(api: FakeBotApi, bot: Bot, data: bytes = b"\x00mp4" * 64) -> str:
    """Upload a video to a storage channel, as the bot does for inline clips; its file id."""
    api.add_chat(STORAGE, "channel", title="Storage")
    sent = await bot.send_video(STORAGE, video=data, width=720, height=1280, duration=3)
    assert sent.video is not None
    return sent.video.file_id


async def _updates(bot: Bot, api: FakeBotApi) -> list[Update]:
    """Everything pending, confirmed at once (the next getUpdates offset)."""
    updates = list(await bot.get_updates(timeout=0))
    if updates:
        await bot.get_updates(offset=updates[-1].update_id + 1, timeout=0)
    assert api.pending_updates == []
    return updates


async def _raw(api: FakeBotApi, method: str, **params: Any) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        answer: dict[str, Any] = (
            await client.post(f"{api.root}/bot{api.token}/{method}", json=params)
        ).json()
        return answer


def _placeholder(result_id: str = "p1") -> InlineQueryResultArticle:
    return InlineQueryResultArticle(
        id=result_id,
        title="Send the video",
        input_message_content=InputTextMessageContent("Fetching the video…"),
        reply_markup=InlineKeyboardMarkup(
            [[InlineKeyboardButton("Open on TikTok", url="https://www.tiktok.com/@a/video/1")]]
        ),
    )


async def _posted_placeholder(api: FakeBotApi, bot: Bot) -> str:
    """A placeholder the user picked; its inline_message_id."""
    query = api.inject_inline_query("https://vm.tiktok.com/ZMabc/", user_id=77)
    assert await bot.answer_inline_query(query, [_placeholder()], cache_time=0, is_personal=True)
    inline_message_id: str = api.choose_inline_result(query, "p1", chat_id=600)["inline_message_id"]
    return inline_message_id


async def test_inline_query_arrives_and_a_cached_video_is_posted_via_the_bot(
    api: FakeBotApi, bot: Bot
) -> None:
    file_id = await _stored_video(api, bot)
    me = await bot.get_me()
    assert me.supports_inline_queries is True

    query = api.inject_inline_query("https://vm.tiktok.com/ZMabc/", user_id=77, chat_type="group")
    [update] = await _updates(bot, api)
    assert update.inline_query is not None
    assert (update.inline_query.id, update.inline_query.query) == (
        query,
        "https://vm.tiktok.com/ZMabc/",
    )
    assert (update.inline_query.from_user.id, update.inline_query.chat_type) == (77, "group")
    assert update.inline_query.offset == ""

    video = InlineQueryResultCachedVideo(
        id="v1", video_file_id=file_id, title="@dancer", caption="a caption"
    )
    assert await update.inline_query.answer([video], cache_time=3600, is_personal=False)
    answer = api.inline_answer(query)
    assert answer.result is True
    assert answer.params["cache_time"] == 3600
    assert answer.params["results"][0]["video_file_id"] == file_id

    posted = api.choose_inline_result(query, "v1", chat_id=600, chat_type="group")
    assert posted["via_bot"]["id"] == api.bot_user["id"]
    assert posted["from"]["id"] == 77
    assert posted["video"]["file_id"] == file_id
    assert posted["caption"] == "a caption"
    # No keyboard, no inline_message_id: Telegram gives one only to messages it can edit.
    assert "inline_message_id" not in posted
    assert "reply_markup" not in posted
    assert api.chat_history(600) == [posted]
    [chosen] = await _updates(bot, api)
    assert chosen.chosen_inline_result is not None
    assert chosen.chosen_inline_result.result_id == "v1"
    assert chosen.chosen_inline_result.query == "https://vm.tiktok.com/ZMabc/"
    assert chosen.chosen_inline_result.from_user.id == 77
    assert chosen.chosen_inline_result.inline_message_id is None


async def test_an_article_with_a_keyboard_gets_an_inline_message_id(
    api: FakeBotApi, bot: Bot
) -> None:
    query = api.inject_inline_query("https://vm.tiktok.com/ZMabc/", user_id=78)
    await _updates(bot, api)
    button = InlineQueryResultsButton(text="Set me up", start_parameter="inline-help_1")
    assert await bot.answer_inline_query(query, [_placeholder()], button=button, cache_time=0)

    posted = api.choose_inline_result(query, "p1", chat_id=601, chat_type="supergroup")
    inline_message_id = posted["inline_message_id"]
    assert isinstance(inline_message_id, str)
    assert posted["text"] == "Fetching the video…"
    assert posted["reply_markup"]["inline_keyboard"][0][0]["text"] == "Open on TikTok"
    assert posted["via_bot"]["username"] == "reshare_test_bot"
    [chosen] = await _updates(bot, api)
    assert chosen.chosen_inline_result is not None
    assert chosen.chosen_inline_result.inline_message_id == inline_message_id
    seen = api.inline_message(inline_message_id)
    assert "inline_message_id" not in seen  # a test convenience of the returned copy only
    assert seen == {k: v for k, v in posted.items() if k != "inline_message_id"}
    assert set(api.inline_messages) == {inline_message_id}


async def test_without_feedback_no_chosen_inline_result_comes(api: FakeBotApi, bot: Bot) -> None:
    api.inline_feedback = False
    query = api.inject_inline_query("x")
    await _updates(bot, api)
    await bot.answer_inline_query(query, [_placeholder()])

    posted = api.choose_inline_result(query, "p1")

    assert "inline_message_id" in posted
    assert await _updates(bot, api) == []


async def test_an_inline_message_is_edited_into_a_video_by_file_id(
    api: FakeBotApi, bot: Bot
) -> None:
    file_id = await _stored_video(api, bot)
    inline_message_id = await _posted_placeholder(api, bot)

    done = await bot.edit_message_media(
        InputMediaVideo(file_id, caption="@dancer", supports_streaming=True),
        inline_message_id=inline_message_id,
    )

    assert done is True
    now = api.inline_message(inline_message_id)
    assert now["video"]["file_id"] == file_id
    assert now["caption"] == "@dancer"
    assert "text" not in now
    assert "reply_markup" not in now  # none given: the keyboard goes
    assert "edit_date" in now
    assert api.chat_history(600) == [now]
    [edit] = api.calls_to("editMessageMedia")
    assert edit.result is True
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_media(
            InputMediaVideo(file_id, caption="@dancer"), inline_message_id=inline_message_id
        )


async def test_an_inline_message_takes_no_new_upload(api: FakeBotApi, bot: Bot) -> None:
    inline_message_id = await _posted_placeholder(api, bot)
    before = api.inline_message(inline_message_id)

    with pytest.raises(BadRequest, match=r"(?i)^Invalid message content specified$"):
        await bot.edit_message_media(
            InputMediaVideo(b"\x00new upload", filename="clip.mp4"),
            inline_message_id=inline_message_id,
        )
    with pytest.raises(BadRequest, match=r"(?i)wrong remote file identifier specified"):
        await bot.edit_message_media(
            InputMediaVideo("BAACAgIAAxkBAAIunknown"), inline_message_id=inline_message_id
        )
    with pytest.raises(BadRequest, match=r"(?i)MESSAGE_ID_INVALID"):
        await bot.edit_message_text("x", inline_message_id="AgAAAF8nAQA" + "A" * 27)
    with pytest.raises(BadRequest, match=r"(?i)invalid inline message identifier specified"):
        await bot.edit_message_text("x", inline_message_id="not-an-id!")
    assert api.inline_message(inline_message_id) == before


async def test_an_inline_message_is_edited_into_text(api: FakeBotApi, bot: Bot) -> None:
    inline_message_id = await _posted_placeholder(api, bot)
    keyboard = InlineKeyboardMarkup([[InlineKeyboardButton("Retry", callback_data="retry")]])

    done = await bot.edit_message_text(
        "This video is private.", inline_message_id=inline_message_id, reply_markup=keyboard
    )

    assert done is True
    now = api.inline_message(inline_message_id)
    assert now["text"] == "This video is private."
    assert now["reply_markup"] == keyboard.to_dict()
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text(
            "This video is private.", inline_message_id=inline_message_id, reply_markup=keyboard
        )
    # The same text without the keyboard is a change.
    assert await bot.edit_message_text(
        "This video is private.", inline_message_id=inline_message_id
    )
    assert "reply_markup" not in api.inline_message(inline_message_id)


async def test_a_chat_message_is_edited_into_media_and_returned(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(1001)
    text = await bot.send_message(1001, "Fetching…")
    # A baseline JPEG header: 32 x 16.
    photo = b"\xff\xd8\xff\xc0\x00\x11\x08\x00\x10\x00\x20\x03\x01\x22\x00"
    photo += b"\x02\x11\x01\x03\x11\x01\xff\xd9"

    edited = await bot.edit_message_media(
        InputMediaPhoto(photo, caption="done"), chat_id=1001, message_id=text.message_id
    )

    assert not isinstance(edited, bool)
    assert edited.text is None
    assert edited.caption == "done"
    assert (edited.photo[-1].width, edited.photo[-1].height) == (32, 16)


async def test_an_answer_after_the_window_or_twice_is_too_old(api: FakeBotApi, bot: Bot) -> None:
    api.inline_window_s = 0.05
    late = api.inject_inline_query("late")
    await asyncio.sleep(0.1)
    with pytest.raises(BadRequest, match=f"(?i){TOO_OLD}"):
        await bot.answer_inline_query(late, [_placeholder()])
    with pytest.raises(KeyError):
        api.inline_answer(late)

    api.inline_window_s = 10.0
    query = api.inject_inline_query("twice")
    assert await bot.answer_inline_query(query, [_placeholder()])
    with pytest.raises(BadRequest, match=f"(?i){TOO_OLD}"):
        await bot.answer_inline_query(query, [_placeholder("p2")])
    assert [r["id"] for r in api.inline_answer(query).params["results"]] == ["p1"]
    with pytest.raises(BadRequest, match=f"(?i){TOO_OLD}"):
        await bot.answer_inline_query("4611686018427387905", [])


async def test_result_ids_must_be_unique_and_short(api: FakeBotApi, bot: Bot) -> None:
    query = api.inject_inline_query("ids")
    with pytest.raises(BadRequest, match=r"(?i)^RESULT_ID_DUPLICATE$"):
        await bot.answer_inline_query(query, [_placeholder("same"), _placeholder("same")])
    with pytest.raises(BadRequest, match=r"(?i)^RESULT_ID_INVALID$"):
        await bot.answer_inline_query(query, [_placeholder("x" * 65)])
    many = [_placeholder(str(n)) for n in range(51)]
    with pytest.raises(BadRequest, match=r"(?i)^too many inline query results specified$"):
        await bot.answer_inline_query(query, many)
    # Refused answers leave the query open.
    assert await bot.answer_inline_query(query, [_placeholder("x" * 64)])


@pytest.mark.parametrize(
    ("result", "description"),
    [
        (
            {"type": "cached_video", "id": "1", "video_file_id": "x", "title": "t"},
            'Bad Request: can\'t parse inline query result: type "cached_video" is unsupported '
            "for the inline query result",
        ),
        (
            {"type": "article", "id": "1", "input_message_content": {"message_text": "hi"}},
            "Bad Request: can't parse inline query result: Can't find field \"title\"",
        ),
        (
            {"type": "article", "id": "1", "title": "t"},
            "Bad Request: can't parse inline query result: Can't find field \"message_text\"",
        ),
        (
            {"type": "video", "id": "1", "video_url": "https://a.example/v.mp4", "title": "t"},
            "Bad Request: can't parse inline query result: Can't find field \"mime_type\"",
        ),
        (
            {"type": "video", "id": "1", "title": "t"},
            "Bad Request: can't parse inline query result: Can't find field \"video_file_id\"",
        ),
        (
            {
                "type": "video",
                "id": "1",
                "title": "t",
                "video_url": "https://a.example/v.webm",
                "mime_type": "video/webm",
                "thumbnail_url": "https://a.example/t.jpg",
            },
            "Bad Request: unallowed video MIME type",
        ),
        (
            {"type": "video", "id": "1", "title": "t", "video_file_id": "BAACAgIAAxkBAAIunknown"},
            "Bad Request: wrong remote file identifier specified: can't unserialize it. "
            "Wrong last symbol",
        ),
        (
            {"type": "photo", "id": "1", "photo_url": "https://a.example/p.jpg"},
            "Bad Request: PHOTO_THUMB_URL_EMPTY",
        ),
        (
            {
                "type": "article",
                "id": "1",
                "title": "t",
                "input_message_content": {"message_text": "hi"},
                "reply_markup": {"keyboard": [[{"text": "a reply keyboard"}]]},
            },
            "Bad Request: inline keyboard expected",
        ),
        (
            {
                "type": "article",
                "id": "1",
                "title": "t",
                "input_message_content": {"message_text": "hi"},
                "reply_markup": {"inline_keyboard": [[{"text": "no action"}]]},
            },
            "Bad Request: can't parse inline query result: Can't parse inline keyboard button: "
            "Text buttons are unallowed in the inline keyboard",
        ),
        (
            {"type": "article", "id": "1", "title": "", "message_text": "hi"},
            "Bad Request: ARTICLE_TITLE_EMPTY",
        ),
    ],
)
async def test_bad_results_are_refused_in_telegrams_words(
    api: FakeBotApi, result: dict[str, Any], description: str
) -> None:
    query = api.inject_inline_query("bad")

    answer = await _raw(api, "answerInlineQuery", inline_query_id=query, results=[result])

    assert answer == {"ok": False, "error_code": 400, "description": description}


async def test_a_cached_video_needs_a_video_file_id(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(STORAGE, "channel")
    photo = await bot.send_photo(STORAGE, photo=b"\xff\xd8\xff\xd9")
    query = api.inject_inline_query("kinds")
    wrong = InlineQueryResultCachedVideo(
        id="1", video_file_id=photo.photo[-1].file_id, title="not a video"
    )

    with pytest.raises(BadRequest, match=r"(?i)^can't use file of type Photo as Video$"):
        await bot.answer_inline_query(query, [wrong])


@pytest.mark.parametrize(
    ("button", "description"),
    [
        ({"text": "Help", "start_parameter": ""}, "can't use empty start_parameter"),
        (
            {"text": "Help", "start_parameter": "a b"},
            "unallowed characters in start_parameter are used",
        ),
        ({"text": "Help", "start_parameter": "a" * 65}, "too long start_parameter specified"),
        (
            {"text": "Help"},
            "can't parse inline query results button: InlineQueryResultsButton must have "
            "exactly one optional field",
        ),
    ],
)
async def test_bad_results_buttons_are_refused(
    api: FakeBotApi, button: dict[str, str], description: str
) -> None:
    query = api.inject_inline_query("button")

    answer = await _raw(api, "answerInlineQuery", inline_query_id=query, results=[], button=button)

    assert answer["description"] == f"Bad Request: {description}"


async def test_allowed_updates_filter_inline_updates_and_are_remembered(
    api: FakeBotApi, bot: Bot
) -> None:
    await bot.get_updates(timeout=0, allowed_updates=["message"])
    api.inject_inline_query("not asked for")
    api.inject_message("hello")
    [message] = await _updates(bot, api)  # no allowed_updates given: the last ones hold
    assert message.message is not None

    await bot.get_updates(timeout=0, allowed_updates=["inline_query"])
    api.inject_message("not asked for")
    query = api.inject_inline_query("asked for")
    [inline] = await _updates(bot, api)
    assert inline.inline_query is not None
    assert inline.inline_query.id == query
    await bot.answer_inline_query(query, [_placeholder()])
    api.choose_inline_result(query, "p1")
    assert await _updates(bot, api) == []  # chosen_inline_result was not asked for either

    # An empty list means Telegram's default set again.
    await bot.get_updates(timeout=0, allowed_updates=[])
    api.inject_inline_query("default")
    api.inject_message("default")
    assert len(await _updates(bot, api)) == 2


async def test_a_webhooks_allowed_updates_filter_too(api: FakeBotApi, bot: Bot) -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    assert await bot.set_webhook(f"http://127.0.0.1:{port}/hook", allowed_updates=["inline_query"])
    try:
        api.inject_message("not asked for")
        query = api.inject_inline_query("asked for")
        assert [u["inline_query"]["id"] for u in api.pending_updates] == [query]
        assert (await bot.get_webhook_info()).allowed_updates == ("inline_query",)
    finally:
        await bot.delete_webhook(drop_pending_updates=True)


async def test_a_storage_channel_takes_the_bots_uploads(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(STORAGE, "channel", title="Reshare storage")

    sent = await bot.send_video(STORAGE, video=b"\x00mp4", width=720, height=1280)

    assert sent.video is not None
    assert sent.from_user is None
    assert sent.sender_chat is not None
    assert (sent.sender_chat.id, sent.chat.type, sent.chat.title) == (
        STORAGE,
        "channel",
        "Reshare storage",
    )
    chat = await bot.get_chat(STORAGE)
    assert (chat.id, chat.type, chat.title) == (STORAGE, "channel", "Reshare storage")
    member = await bot.get_chat_member(STORAGE, bot.id)
    assert isinstance(member, ChatMemberAdministrator)
    assert member.can_post_messages is True
    assert member.user.id == bot.id


async def test_a_channel_the_bot_does_not_administer_refuses_posts(
    api: FakeBotApi, bot: Bot
) -> None:
    api.add_chat(-1001, "channel", bot_status="member")
    api.add_chat(-1002, "channel", bot_status="left")
    api.add_chat(-1003, "channel", bot_status="kicked")

    with pytest.raises(BadRequest, match=r"(?i)^Need administrator rights in the channel chat$"):
        await bot.send_video(-1001, video=b"\x00mp4")
    assert isinstance(await bot.get_chat_member(-1001, bot.id), ChatMemberMember)
    with pytest.raises(Forbidden, match=r"(?i)bot is not a member of the channel chat"):
        await bot.send_video(-1002, video=b"\x00mp4")
    with pytest.raises(Forbidden, match=r"(?i)bot is not a member of the channel chat"):
        await bot.get_chat(-1002)
    with pytest.raises(Forbidden, match=r"(?i)bot was kicked from the channel chat"):
        await bot.get_chat_member(-1003, bot.id)
    assert api.chat_history(-1001) == []

    api.add_chat(-1001, "channel", bot_status="administrator")  # promoted
    assert (await bot.send_message(-1001, "now it can")).sender_chat is not None
