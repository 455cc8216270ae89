"""The Bot API stand-in, driven by the real python-telegram-bot over a local socket."""

from __future__ import annotations

import asyncio
import datetime as dtm
import time
from collections.abc import AsyncIterator

import httpx
import pytest
from telegram import Bot, InputMediaPhoto, Message, MessageEntity, ReplyParameters, Update
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from tests.standins.telegram_api import FakeBotApi


def _jpeg(width: int, height: int) -> bytes:
    """The start of a baseline JPEG: enough for anything that reads its size."""
    frame = b"\x08" + height.to_bytes(2, "big") + width.to_bytes(2, "big") + b"\x03"
    frame += b"\x01\x22\x00\x02\x11\x01\x03\x11\x01"
    return b"\xff\xd8\xff\xc0" + (len(frame) + 2).to_bytes(2, "big") + frame + b"\xff\xd9"


def _png(width: int, height: int) -> bytes:
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + b"\x08\x02\x00\x00\x00"
    return b"\x89PNG\r\n\x1a\n" + len(ihdr).to_bytes(4, "big") + b"IHDR" + ihdr + b"\0" * 4


@pytest.fixture
async def bot(api: FakeBotApi) -> AsyncIterator[Bot]:
    async with Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as real:
        yield real


@pytest.fixture
def ptb_timedelta(monkeypatch: pytest.MonkeyPatch) -> None:
    """PTB 22 warns whenever a duration is read as int (even inside RetryAfter's constructor).

    Opting in to timedelta values keeps those warnings, errors under our settings, away.
    """
    monkeypatch.setenv("PTB_TIMEDELTA", "true")


async def test_get_me_describes_the_bot(api: FakeBotApi, bot: Bot) -> None:
    me = await bot.get_me()

    assert (me.id, me.is_bot, me.username) == (123456, True, "reshare_test_bot")
    assert api.calls_to("getme")[0].method == "getMe"


@pytest.mark.usefixtures("ptb_timedelta")
async def test_send_video_arrives_with_its_bytes_and_decoded_params(
    api: FakeBotApi, bot: Bot
) -> None:
    incoming = api.inject_message("https://vm.tiktok.com/ZMabc123/")
    video = b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 64
    thumbnail = _jpeg(180, 320)

    sent = await bot.send_video(
        chat_id=1001,
        video=video,
        filename="clip.mp4",
        width=720,
        height=1280,
        duration=12,
        supports_streaming=True,
        thumbnail=thumbnail,
        caption="123",
        reply_parameters=ReplyParameters(message_id=incoming["message_id"]),
    )

    [call] = api.calls_to("sendVideo")
    assert call.params["chat_id"] == 1001
    assert (call.params["width"], call.params["height"], call.params["duration"]) == (720, 1280, 12)
    assert call.params["supports_streaming"] is True
    assert call.params["caption"] == "123"
    assert call.params["reply_parameters"] == {"message_id": incoming["message_id"]}
    assert call.params["thumbnail"].startswith("attach://")
    assert (call.files["video"].filename, call.files["video"].content_type) == (
        "clip.mp4",
        "video/mp4",
    )
    assert api.video_bytes(call) == video
    assert api.file_bytes(call, "thumbnail") == thumbnail
    assert sent.video is not None
    assert (sent.video.width, sent.video.height) == (720, 1280)
    assert sent.video.duration == dtm.timedelta(seconds=12)
    assert (sent.video.mime_type, sent.video.file_size) == ("video/mp4", len(video))
    assert sent.video.thumbnail is not None
    assert (sent.video.thumbnail.width, sent.video.thumbnail.height) == (180, 320)
    assert sent.caption == "123"
    assert sent.message_id == incoming["message_id"] + 1
    assert sent.from_user is not None
    assert sent.from_user.id == 123456
    assert sent.reply_to_message is not None
    assert sent.reply_to_message.text == "https://vm.tiktok.com/ZMabc123/"
    assert [m["message_id"] for m in api.chat_history(1001)] == [1, 2]


async def test_thumbnail_breaking_telegrams_rules_is_dropped(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(1001)

    sent = await bot.send_video(1001, video=b"mp4", thumbnail=_jpeg(640, 360))

    assert sent.video is not None
    assert sent.video.thumbnail is None


async def test_media_group_of_two_photos(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(1001)
    photos = [_jpeg(640, 480), _png(10, 20)]

    messages = await bot.send_media_group(
        1001, [InputMediaPhoto(photos[0], caption="first"), InputMediaPhoto(photos[1])]
    )

    [call] = api.calls_to("sendMediaGroup")
    assert [item["media"].startswith("attach://") for item in call.params["media"]] == [True] * 2
    assert api.media_group_bytes(call) == photos
    assert len({m.media_group_id for m in messages}) == 1
    assert [m.caption for m in messages] == ["first", None]
    assert [(m.photo[-1].width, m.photo[-1].height) for m in messages] == [(640, 480), (10, 20)]


async def test_file_id_is_resent_without_upload_and_downloads(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(1001)
    video = b"video bytes" * 100
    first = await bot.send_video(1001, video=video, width=320, height=240)
    assert first.video is not None

    again = await bot.send_video(1001, video=first.video.file_id, caption="again")

    second_call = api.calls_to("sendVideo")[1]
    assert second_call.files == {}
    assert second_call.params["video"] == first.video.file_id
    assert api.video_bytes(second_call) == video
    assert again.video is not None
    assert (again.video.file_id, again.video.width) == (first.video.file_id, 320)
    file = await bot.get_file(first.video.file_id)
    assert bytes(await file.download_as_bytearray()) == video
    with pytest.raises(BadRequest, match=r"(?i)wrong file identifier/HTTP URL specified"):
        await bot.send_video(1001, video="BAACAgIAAxkBAAIunknown")


async def test_wrong_token_and_unknown_method_answer_like_telegram(api: FakeBotApi) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("654321:wrong", base_url=api.base_url, base_file_url=api.base_file_url):
            pass
    async with httpx.AsyncClient() as client:
        unauthorized = await client.post(f"{api.root}/bot654321:wrong/getMe")
        unknown = await client.post(f"{api.root}/bot{api.token}/sendHologram")
    assert unauthorized.status_code == 401
    assert unauthorized.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
    assert unknown.status_code == 404
    assert unknown.json() == {
        "ok": False,
        "error_code": 404,
        "description": "Not Found",
    }
    async with Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as bot:
        with pytest.raises(EndPointNotFound):
            await bot.do_api_request("sendHologram")


async def test_form_and_json_bodies_decode_like_telegram(api: FakeBotApi) -> None:
    api.add_chat(1001)
    url = f"{api.root}/bot{api.token}/sendMessage"
    async with httpx.AsyncClient() as client:
        form = await client.post(
            url, data={"chat_id": "1001", "text": "42", "protect_content": "true"}
        )
        as_json = await client.post(url, json={"chat_id": 1001, "text": "hi"})
        broken = await client.post(url, content=b"{", headers={"Content-Type": "application/json"})

    assert (form.status_code, as_json.status_code, broken.status_code) == (200, 200, 400)
    assert [c.params for c in api.calls_to("sendMessage")] == [
        {"chat_id": 1001, "text": "42", "protect_content": True},
        {"chat_id": 1001, "text": "hi"},
    ]
    assert form.json()["result"]["text"] == "42"
    assert isinstance(as_json.json()["result"]["date"], int)


async def test_upload_past_the_limit_is_refused_with_413() -> None:
    async with (
        FakeBotApi(upload_limit_bytes=1000) as api,
        Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as bot,
    ):
        api.add_chat(1001)
        await bot.send_document(1001, document=b"x" * 1000, filename="fits.bin")
        with pytest.raises(NetworkError, match="Request Entity Too Large") as refused:
            await bot.send_document(1001, document=b"x" * 1001, filename="big.bin")

    assert type(refused.value) is NetworkError
    assert [len(c.files) for c in api.calls_to("sendDocument")] == [1, 0]


@pytest.mark.usefixtures("ptb_timedelta")
async def test_injected_failure_reaches_ptb_as_retry_after(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(1001)
    api.fail_next("sendMessage", retry_after=3)

    with pytest.raises(RetryAfter) as flood:
        await bot.send_message(1001, "hello")
    await bot.send_message(1001, "hello")

    assert flood.value.retry_after == dtm.timedelta(seconds=3)
    assert len(api.calls_to("sendMessage")) == 2


async def test_html_is_parsed_and_bad_html_is_refused(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(1001)

    sent = await bot.send_message(1001, "<b>Clip</b> by @someone &amp; friends", parse_mode="HTML")

    assert sent.text == "Clip by @someone & friends"
    assert [(e.type, e.offset, e.length) for e in sent.entities] == [("bold", 0, 4)]
    with pytest.raises(BadRequest, match=r"(?i)can.t parse entities"):
        await bot.send_message(1001, "I <3 this", parse_mode="HTML")


async def test_replying_to_an_unknown_message_fails(api: FakeBotApi, bot: Bot) -> None:
    api.add_chat(1001)

    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(1001, "hi", reply_parameters=ReplyParameters(message_id=99))
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(5555, "hi")


async def test_injected_links_carry_entities_ptb_can_read(api: FakeBotApi, bot: Bot) -> None:
    text = "🎉🎉 see vm.tiktok.com/ZMabc/, and https://www.tiktok.com/@u/video/1?x=1. /dl"

    message = Message.de_json(api.inject_message(text, chat_type="group", chat_id=-100), bot)

    assert list(message.parse_entities([MessageEntity.URL]).values()) == [
        "vm.tiktok.com/ZMabc/",
        "https://www.tiktok.com/@u/video/1?x=1",
    ]
    assert list(message.parse_entities([MessageEntity.BOT_COMMAND]).values()) == ["/dl"]
    assert message.chat.type == "group"


async def test_edits_arrive_as_edited_message_updates(api: FakeBotApi, bot: Bot) -> None:
    original = api.inject_message("typo vm.tiktok.com/ZMabc/", chat_id=-100, chat_type="group")
    edited = api.inject_edited_message(
        "fixed vm.tiktok.com/ZMabc/", chat_id=-100, chat_type="group"
    )

    updates = await bot.get_updates()

    assert edited["message_id"] == original["message_id"]
    assert [u.message.text for u in updates if u.message] == ["typo vm.tiktok.com/ZMabc/"]
    [edit] = [u.edited_message for u in updates if u.edited_message]
    assert edit.text == "fixed vm.tiktok.com/ZMabc/"
    assert edit.edit_date is not None
    assert list(edit.parse_entities([MessageEntity.URL]).values()) == ["vm.tiktok.com/ZMabc/"]


async def test_long_poll_returns_on_inject_and_on_shutdown(api: FakeBotApi, bot: Bot) -> None:
    polling = asyncio.create_task(bot.get_updates(timeout=10))
    await api.wait_for_call("getUpdates", timeout=5)
    started = time.monotonic()
    api.inject_message("hi")
    updates = await polling
    assert time.monotonic() - started < 1
    assert [u.message.text for u in updates if u.message] == ["hi"]

    polling = asyncio.create_task(bot.get_updates(offset=updates[-1].update_id + 1, timeout=10))
    await api.wait_for_call("getUpdates", count=2, timeout=5)
    started = time.monotonic()
    await api.stop()
    assert await polling == ()
    assert time.monotonic() - started < 1
    assert api.pending_updates == []


async def test_second_poller_terminates_the_first(api: FakeBotApi, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await api.wait_for_call("getUpdates", timeout=5)

    # A second instance, since one Bot's polling connection pool holds a single connection.
    async with Bot(api.token, base_url=api.base_url, base_file_url=api.base_file_url) as other:
        assert await other.get_updates(timeout=0) == ()
    with pytest.raises(Conflict, match=r"(?i)terminated by other getupdates request"):
        await first


async def test_wait_for_call_names_what_it_saw(api: FakeBotApi, bot: Bot) -> None:
    with pytest.raises(AssertionError, match=r"(?s)expected 1 sendVideo call\(s\).*getMe"):
        await api.wait_for_call("sendVideo", timeout=0.05)


async def test_application_polls_handles_and_replies(api: FakeBotApi) -> None:
    async def answer(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_text(f"got {update.message.text}", do_quote=True)

    app = (
        Application.builder()
        .token(api.token)
        .base_url(api.base_url)
        .base_file_url(api.base_file_url)
        .build()
    )
    app.add_handler(MessageHandler(filters.TEXT, answer))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=dtm.timedelta(seconds=10))
        await api.wait_for_call("getUpdates", timeout=5)
        started = time.monotonic()
        first = api.inject_message("one")
        await api.wait_for_call("sendMessage", timeout=5)
        answered_in = time.monotonic() - started
        api.inject_message("two", chat_id=2002, user_id=7)
        await api.wait_for_call("sendMessage", count=2, timeout=5)
        await app.updater.stop()
        await app.stop()

    replies = api.calls_to("sendMessage")
    assert answered_in < 1, "the long poll must return as soon as an update arrives"
    assert [(c.params["chat_id"], c.params["text"]) for c in replies] == [
        (1001, "got one"),
        (2002, "got two"),
    ]
    assert replies[0].params["reply_parameters"]["message_id"] == first["message_id"]
    assert api.pending_updates == [], "PTB confirms what it fetched with the next offset"
    offsets = [c.params.get("offset", 0) for c in api.calls_to("getUpdates")]
    assert offsets == sorted(offsets)
    assert offsets[-1] > 0
    history = api.chat_history(1001)
    assert [m["text"] for m in history] == ["one", "got one"]
    assert history[1]["reply_to_message"]["message_id"] == first["message_id"]
