"""The Bot API stand-in, driven by the real python-telegram-bot over a local socket."""

from __future__ import annotations

import asyncio
import datetime as dtm
import socket
import ssl
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import trustme
from aiohttp import web
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

from tests.standins.lifecycle import listen
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


# Webhook mode


@dataclass(frozen=True)
class _Post:
    headers: Mapping[str, str]
    content_type: str
    update: dict[str, Any]


class _Receiver:
    """A webhook receiver on 127.0.0.1: keeps every POST, answers with the next of ``statuses``
    (then ``default_status``), holds answers while ``gate`` is closed."""

    def __init__(self) -> None:
        self.url = ""
        self.posts: list[_Post] = []
        self.statuses: list[int] = []
        self.default_status = 200
        self.answer: dict[str, Any] | None = None  # a JSON body for 200 answers
        self.gate = asyncio.Event()
        self.gate.set()
        self.in_flight = 0
        self.most_in_flight = 0
        self._changed = asyncio.Event()

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append(_Post(request.headers, request.content_type, await request.json()))
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        self._changed.set()
        self._changed = asyncio.Event()
        try:
            await self.gate.wait()
        finally:
            self.in_flight -= 1
        status = self.statuses.pop(0) if self.statuses else self.default_status
        if status == 200 and self.answer is not None:
            return web.json_response(self.answer)
        return web.Response(status=status)

    async def wait_for(self, condition: Callable[[], bool]) -> None:
        async with asyncio.timeout(5):
            while not condition():
                await self._changed.wait()

    def texts(self) -> list[str]:
        return [post.update["message"]["text"] for post in self.posts]


async def _serve(receiver: _Receiver, ssl_context: ssl.SSLContext | None = None) -> web.AppRunner:
    app = web.Application()
    app.router.add_post("/hook", receiver.handle)
    runner, port = await listen(app, shutdown_timeout=0.5, ssl_context=ssl_context)
    scheme = "http" if ssl_context is None else "https"
    receiver.url = f"{scheme}://127.0.0.1:{port}/hook"
    return runner


@pytest.fixture
async def receiver() -> AsyncIterator[_Receiver]:
    receiver = _Receiver()
    runner = await _serve(receiver)
    try:
        yield receiver
    finally:
        receiver.gate.set()
        await runner.cleanup()


async def _call(api: FakeBotApi, method: str, **params: Any) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(f"{api.root}/bot{api.token}/{method}", json=params)


async def test_webhook_gets_updates_with_the_secret_header(
    api: FakeBotApi, bot: Bot, receiver: _Receiver
) -> None:
    assert await bot.set_webhook(
        receiver.url,
        secret_token="s3cret_-Token",
        max_connections=5,
        allowed_updates=["message", "callback_query"],
    )
    info = await bot.get_webhook_info()
    sent = api.inject_message("https://vm.tiktok.com/ZMabc123/")
    deliveries = await api.webhook_drained(timeout=5)

    assert (info.url, info.has_custom_certificate, info.pending_update_count) == (
        receiver.url,
        False,
        0,
    )
    assert (info.max_connections, info.allowed_updates, info.ip_address) == (
        5,
        ("message", "callback_query"),
        "127.0.0.1",
    )
    assert info.last_error_date is None
    [post] = receiver.posts
    assert post.headers["X-Telegram-Bot-Api-Secret-Token"] == "s3cret_-Token"
    assert post.content_type == "application/json"
    update = Update.de_json(post.update, bot)
    assert update.message is not None
    assert (update.message.message_id, update.message.text) == (sent["message_id"], sent["text"])
    assert [(d.update_id, d.attempt, d.status, d.outcome) for d in deliveries] == [
        (update.update_id, 1, 200, "confirmed")
    ]
    assert api.pending_updates == []
    assert api.webhook_url == receiver.url


async def test_webhook_without_secret_gets_no_secret_header(
    api: FakeBotApi, bot: Bot, receiver: _Receiver
) -> None:
    await bot.set_webhook(receiver.url)
    api.inject_message("hi")
    await api.webhook_drained(timeout=5)

    [post] = receiver.posts
    assert "X-Telegram-Bot-Api-Secret-Token" not in post.headers
    assert "allowed_updates" not in (await _call(api, "getWebhookInfo")).json()["result"]


async def test_failed_post_is_retried_and_confirmed_once(
    api: FakeBotApi, receiver: _Receiver
) -> None:
    receiver.statuses = [500]
    answer = await _call(api, "setWebhook", url=receiver.url, secret_token="abc")
    update_id = api.inject_update(
        "message", {"message_id": 1, "chat": {"id": 1, "type": "private"}}
    )

    deliveries = await api.webhook_drained(timeout=5)
    info = (await _call(api, "getWebhookInfo")).json()["result"]

    assert answer.json() == {"ok": True, "result": True, "description": "Webhook was set"}
    assert [post.update for post in receiver.posts] == [receiver.posts[0].update] * 2
    assert receiver.posts[0].update["update_id"] == update_id
    assert [(d.attempt, d.status, d.error, d.outcome) for d in deliveries] == [
        (1, 500, "Wrong response from the webhook: 500 Internal Server Error", "retry"),
        (2, 200, None, "confirmed"),
    ]
    assert deliveries[1].at - deliveries[0].ended_at >= 0.04, "retried after a delay"
    assert (
        info["last_error_message"] == "Wrong response from the webhook: 500 Internal Server Error"
    )
    assert abs(info["last_error_date"] - time.time()) < 60
    assert info["pending_update_count"] == 0


async def test_unreachable_webhook_is_retried_until_the_attempts_run_out() -> None:
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        async with FakeBotApi(webhook_max_attempts=3) as api:
            await _call(api, "setWebhook", url=f"http://127.0.0.1:{port}/hook")
            api.inject_message("hi")
            deliveries = await api.webhook_drained(timeout=5)
            info = (await _call(api, "getWebhookInfo")).json()["result"]

    assert [(d.status, d.error, d.outcome) for d in deliveries] == [
        (None, "Connection refused", "retry"),
        (None, "Connection refused", "retry"),
        (None, "Connection refused", "dropped"),
    ]
    assert (info["last_error_message"], info["pending_update_count"]) == ("Connection refused", 0)
    assert api.pending_updates == []


async def test_get_updates_conflicts_while_a_webhook_is_set(
    api: FakeBotApi, bot: Bot, receiver: _Receiver
) -> None:
    polling = asyncio.create_task(bot.get_updates(timeout=10))
    await api.wait_for_call("getUpdates", timeout=5)

    await bot.set_webhook(receiver.url)

    with pytest.raises(Conflict, match="terminated by setWebhook request"):
        await polling
    with pytest.raises(Conflict, match="can't use getUpdates method while webhook is active"):
        await bot.get_updates()
    refused = await _call(api, "getUpdates")
    assert refused.status_code == 409
    assert refused.json() == {
        "ok": False,
        "error_code": 409,
        "description": "Conflict: can't use getUpdates method while webhook is active; "
        "use deleteWebhook to delete the webhook first",
    }


async def test_delete_webhook_goes_back_to_polling_with_updates_pending(
    api: FakeBotApi, bot: Bot, receiver: _Receiver
) -> None:
    receiver.default_status = 503
    await bot.set_webhook(receiver.url)
    api.inject_message("one")
    api.inject_message("two")
    first, second = (u["update_id"] for u in api.pending_updates)
    await api.wait_for_deliveries(2, timeout=5)

    assert await bot.delete_webhook()
    info = await bot.get_webhook_info()
    posted = len(api.webhook_deliveries)
    updates = await bot.get_updates()
    await asyncio.sleep(0.2)  # several retry delays: no POST may follow the deletion

    assert {d.update_id for d in api.webhook_deliveries} == {first}, "one chat, one at a time"
    assert (info.url, info.pending_update_count, info.last_error_date) == ("", 2, None)
    assert [(u.update_id, u.message.text if u.message else None) for u in updates] == [
        (first, "one"),
        (second, "two"),
    ]
    assert len(api.webhook_deliveries) == posted
    assert api.webhook_url == ""
    await bot.get_updates(offset=second + 1)
    assert api.pending_updates == []


async def test_set_webhook_delivers_what_polling_left_unless_dropped(
    receiver: _Receiver,
) -> None:
    async with FakeBotApi(set_webhook_interval_s=0) as api:
        api.inject_message("old")
        await _call(api, "setWebhook", url=receiver.url)
        await api.webhook_drained(timeout=5)
        await _call(api, "deleteWebhook")
        api.inject_message("dropped")
        await _call(api, "setWebhook", url=receiver.url, drop_pending_updates=True)
        api.inject_message("new")
        await api.webhook_drained(timeout=5)

    assert receiver.texts() == ["old", "new"]


async def test_bad_secret_tokens_and_urls_are_refused(receiver: _Receiver) -> None:
    cases = {
        ("has space", receiver.url): "Bad Request: secret token contains unallowed characters",
        ("a+b/c=", receiver.url): "Bad Request: secret token contains unallowed characters",
        ("x" * 257, receiver.url): "Bad Request: secret token is too long",
        ("", "ftp://127.0.0.1/hook"): "Bad Request: invalid webhook URL specified",
        ("", "http://example.com/hook"): (
            "Bad Request: bad webhook: An HTTPS URL must be provided for webhook"
        ),
        ("", "https://example.com:8080/hook"): (
            "Bad Request: bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
        ),
    }
    async with FakeBotApi(set_webhook_interval_s=0) as api:
        answers = {
            case: await _call(api, "setWebhook", url=case[1], secret_token=case[0])
            for case in cases
        }
        unresolvable = await _call(api, "setWebhook", url="https://example.com/hook")
        async with Bot(api.token, base_url=api.base_url) as bot:
            with pytest.raises(BadRequest, match=r"(?i)secret token contains unallowed characters"):
                await bot.set_webhook(receiver.url, secret_token="sécret")
            info = await bot.get_webhook_info()
            assert await bot.set_webhook(receiver.url, secret_token="Z" * 256)

    for case, description in cases.items():
        assert answers[case].status_code == 400, case
        assert answers[case].json() == {
            "ok": False,
            "error_code": 400,
            "description": description,
        }, case
    assert unresolvable.json()["description"].startswith(
        "Bad Request: bad webhook: Failed to resolve host"
    )
    assert info.url == ""
    assert receiver.posts == []


async def test_set_webhook_twice_within_a_second_is_rate_limited(receiver: _Receiver) -> None:
    assert FakeBotApi().set_webhook_interval_s == 1.0, "Telegram's interval"
    async with FakeBotApi(set_webhook_interval_s=30) as api:
        first = await _call(api, "setWebhook", url=receiver.url)
        too_soon = await _call(api, "setWebhook", url=receiver.url)
        deleted = await _call(api, "deleteWebhook")
        deleted_again = await _call(api, "setWebhook", url="")
    async with FakeBotApi(set_webhook_interval_s=0) as api:
        await _call(api, "setWebhook", url=receiver.url)
        again = await _call(api, "setWebhook", url=receiver.url)

    assert first.json()["description"] == "Webhook was set"
    assert too_soon.status_code == 429
    assert too_soon.json()["parameters"] == {"retry_after": 1}
    assert deleted.json()["description"] == "Webhook was deleted", "deleting is not limited"
    assert deleted_again.json()["description"] == "Webhook is already deleted"
    assert again.json()["description"] == "Webhook is already set"


async def test_redeliver_posts_a_confirmed_update_again(
    api: FakeBotApi, receiver: _Receiver
) -> None:
    await _call(api, "setWebhook", url=receiver.url)
    api.inject_message("once")
    [update_id] = [u["update_id"] for u in api.pending_updates]
    await api.webhook_drained(timeout=5)

    api.redeliver(update_id)
    deliveries = await api.webhook_drained(timeout=5)

    assert [post.update["update_id"] for post in receiver.posts] == [update_id, update_id]
    assert receiver.posts[0].update == receiver.posts[1].update
    assert [(d.attempt, d.outcome) for d in deliveries] == [(1, "confirmed"), (2, "confirmed")]
    with pytest.raises(ValueError, match="was not injected"):
        api.redeliver(update_id + 100)
    await _call(api, "deleteWebhook")
    with pytest.raises(RuntimeError, match="no webhook"):
        api.redeliver(update_id)


async def test_posts_keep_chat_order_and_max_connections(
    api: FakeBotApi, receiver: _Receiver
) -> None:
    receiver.gate.clear()
    await _call(api, "setWebhook", url=receiver.url, max_connections=2)
    api.inject_message("a1", chat_id=1)
    api.inject_message("b1", chat_id=2)
    api.inject_message("c1", chat_id=3)
    api.inject_message("a2", chat_id=1)

    await receiver.wait_for(lambda: receiver.in_flight == 2)
    await asyncio.sleep(0.1)  # room for a third POST, which must not come
    held = receiver.texts()
    receiver.gate.set()
    deliveries = await api.webhook_drained(timeout=5)

    assert sorted(held) == ["a1", "b1"], "the first update of the first two chats"
    assert receiver.most_in_flight == 2
    texts = receiver.texts()
    assert sorted(texts) == ["a1", "a2", "b1", "c1"]
    assert texts.index("a1") < texts.index("a2")
    assert [d.outcome for d in deliveries] == ["confirmed"] * 4


async def test_stop_cancels_posts_in_flight(receiver: _Receiver) -> None:
    receiver.gate.clear()
    async with FakeBotApi() as api:
        await _call(api, "setWebhook", url=receiver.url)
        api.inject_message("held")
        await receiver.wait_for(lambda: receiver.in_flight == 1)
        started = time.monotonic()
    stopped_in = time.monotonic() - started

    assert stopped_in < 1
    assert [(d.outcome, d.status) for d in api.webhook_deliveries] == [("cancelled", None)]
    assert [u["message"]["text"] for u in api.pending_updates] == ["held"]


async def test_a_webhook_answer_can_carry_a_bot_api_call(
    api: FakeBotApi, receiver: _Receiver
) -> None:
    receiver.answer = {"method": "sendMessage", "chat_id": 1001, "text": "pong"}
    await _call(api, "setWebhook", url=receiver.url)
    api.inject_message("ping", chat_id=1001)
    await api.webhook_drained(timeout=5)
    [call] = await api.wait_for_call("sendMessage", timeout=5)
    receiver.answer = {"method": "getMe"}
    api.inject_message("again", chat_id=1001)
    await api.webhook_drained(timeout=5)

    assert call.params == {"chat_id": 1001, "text": "pong"}
    assert [m["text"] for m in api.chat_history(1001)] == ["ping", "pong", "again"]
    assert api.calls_to("getMe") == [], "get* methods in answers are ignored"


async def test_https_webhook_is_checked_against_the_uploaded_certificate() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    receiver = _Receiver()
    runner = await _serve(receiver, server_context)
    try:
        async with (
            FakeBotApi(set_webhook_interval_s=0, webhook_max_attempts=1) as api,
            Bot(api.token, base_url=api.base_url) as bot,
        ):
            await bot.set_webhook(receiver.url)
            api.inject_message("untrusted")
            [refused] = await api.webhook_drained(timeout=5)
            await bot.set_webhook(receiver.url, certificate=ca.cert_pem.bytes())
            info = await bot.get_webhook_info()
            api.inject_message("trusted")
            deliveries = await api.webhook_drained(timeout=5)
    finally:
        await runner.cleanup()

    assert refused.outcome == "dropped"
    assert refused.error is not None
    assert refused.error.startswith("SSL error")
    assert info.has_custom_certificate is True
    assert deliveries[-1].outcome == "confirmed"
    assert receiver.texts() == ["trusted"]
