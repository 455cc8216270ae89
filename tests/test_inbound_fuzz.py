"""Each adapter's inbound translation on hostile input: real library objects built from the
platforms' wire JSON, through the adapter's functions and the real Intake. Never an exception,
always in bounded time."""

from __future__ import annotations

import time
from typing import Any

import discord
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from telegram import Message, Update

from adapters.discord import inbound as discord_inbound
from adapters.telegram import inbound as telegram_inbound
from bot.intake import Answer, Intake
from bot.model import Sender, VideoRequest
from bot.queue import AsyncioJobQueue
from bot.sites import SiteCatalog
from bot.stores.memory_limits import MemoryRateLimits

MAX_TEXT = 4096
SECONDS_PER_MESSAGE = 1.0

PIECES = st.sampled_from(
    [
        "https://www.tiktok.com/@a/video/7301234567890123456",
        "https://vm.tiktok.com/ZMabc123/",
        "https://www.tiktok.com/@user",
        "https://www.tiktok.com/tag/cats",
        "https://www.tiktok.com/music/x-123",
        "https://www.tiktok.com/@user/live",
        "http://[::1",
        "https://tiktok.com:99999/",
        "https://%zz%/",
        "tiktok.com/@a/photo/",
        "\u200f",
        "\u202e",
        "\u2066",
        "\x00",
        "\x1b[31m",
        "\r\n",
        "\ufeff",
        "\ud7ff",
        "👨‍👩‍👧",
        " ",
        "(",
        ")",
    ]
)
TEXTS = st.one_of(
    st.text(max_size=MAX_TEXT),
    st.lists(PIECES, max_size=300).map(lambda parts: "".join(parts)[:MAX_TEXT]),
    st.just(" ".join(f"https://vm.tiktok.com/ZM{n:06d}/" for n in range(1000))),
)
URLS = st.one_of(st.text(max_size=300), PIECES)
ENTITY_TYPES = st.sampled_from(["url", "text_link", "mention", "bold", "unknown_kind"])


def new_intake() -> Intake:
    return Intake(
        AsyncioJobQueue(workers=1, maxsize=10_000),
        SiteCatalog(["TikTok"]),
        MemoryRateLimits(user_per_minute=10_000, chat_per_minute=10_000),
    )


@st.composite
def telegram_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A Bot API Message object as getUpdates delivers it, with arbitrary text and entities
    (offsets and lengths may point past the text, as a broken client could send)."""
    text = draw(TEXTS)
    entities = draw(
        st.lists(
            st.fixed_dictionaries(
                {
                    "type": ENTITY_TYPES,
                    "offset": st.integers(0, 2 * MAX_TEXT),
                    "length": st.integers(0, 2 * MAX_TEXT),
                },
                optional={"url": URLS},
            ),
            max_size=50,
        )
    )
    chat_type = draw(st.sampled_from(["private", "group", "supergroup"]))
    as_caption = draw(st.booleans())
    message: dict[str, Any] = {
        "message_id": draw(st.integers(1, 2**31 - 1)),
        "date": 1_760_000_000,
        "chat": {"id": draw(st.integers(-(2**52), 2**52)), "type": chat_type},
        "from": {"id": draw(st.integers(1, 2**52)), "is_bot": False, "first_name": "Ann"},
    }
    if as_caption:
        message.update(caption=text, caption_entities=entities)
    else:
        message.update(text=text, entities=entities)
    return message


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(telegram_messages())
@example(
    {
        "message_id": 1,
        "date": 1_760_000_000,
        "chat": {"id": -5, "type": "group"},
        "from": {"id": 7, "is_bot": False, "first_name": "Ann"},
        "text": "look \u202e" + " ".join(["https://vm.tiktok.com/ZMabc/"] * 1000),
        "entities": [{"type": "text_link", "offset": 9999, "length": 3, "url": "\x00"}],
    }
).via("1000 links, an RTL override and a broken entity")
async def test_telegram_inbound_takes_any_message(payload: dict[str, Any]) -> None:
    intake = new_intake()
    started = time.perf_counter()
    taken = telegram_inbound.person_message(Update(1, message=Message.de_json(payload, None)))
    assert taken is not None
    message, sender = taken
    assert sender == Sender(user=payload["from"]["id"], chat=payload["chat"]["id"])
    answer = await intake.take(
        telegram_inbound.texts_of(message),
        telegram_inbound.origin_of(message),
        50_000_000,
        private=telegram_inbound.is_private(message),
        sender=sender,
    )
    assert time.perf_counter() - started < SECONDS_PER_MESSAGE
    assert isinstance(answer, Answer)
    if "https://vm.tiktok.com/ZMabc/" in payload.get("text", ""):
        assert answer is Answer.QUEUED
    if payload["chat"]["type"] != "private":
        assert answer is not Answer.NO_LINK, "groups are never told that a message had no link"


EXAMPLE_MESSAGE_CREATE = {
    "id": "1200000000000000001",
    "channel_id": "1100000000000000001",
    "type": 0,
    "author": {"id": "7", "username": "ann", "discriminator": "0", "avatar": None},
    "attachments": [],
    "mentions": [],
    "mention_roles": [],
    "mention_everyone": False,
    "pinned": False,
    "tts": False,
    "timestamp": "2026-11-25T12:00:00.000000+00:00",
    "edited_timestamp": None,
    "flags": 0,
}


@st.composite
def discord_messages(draw: st.DrawFn) -> dict[str, Any]:
    """A MESSAGE_CREATE payload with arbitrary content, author name and embed URLs."""
    return {
        **EXAMPLE_MESSAGE_CREATE,
        "id": str(draw(st.integers(1, 2**63 - 1))),
        "content": draw(TEXTS)[:4000],
        "author": {
            "id": str(draw(st.integers(1, 2**63 - 1))),
            "username": draw(st.text(max_size=40)),
            "discriminator": "0",
            "avatar": None,
        },
        "embeds": [{"type": "link", "url": url} for url in draw(st.lists(URLS, max_size=10))],
    }


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=discord_messages(), command_url=URLS)
@example(
    payload={
        **EXAMPLE_MESSAGE_CREATE,
        "content": "watch\u200f https://www.tiktok.com/@a/video/7301234567890123456 \x00",
        "embeds": [{"type": "link", "url": "http://[::1"}],
    },
    command_url="https://vm.tiktok.com/ZMabc123/",
).via("a link beside an RTL mark, NUL and a malformed embed URL")
async def test_discord_inbound_takes_any_message(payload: dict[str, Any], command_url: str) -> None:
    client = discord.Client(intents=discord.Intents.none())
    try:
        channel = client.get_partial_messageable(int(payload["channel_id"]))
        intake = new_intake()
        started = time.perf_counter()
        message = discord.Message(state=client._connection, channel=channel, data=payload)  # type: ignore[arg-type]
        answer = await intake.take(
            discord_inbound.texts_of(message),
            discord_inbound.message_origin(message),
            discord_inbound.message_budget(message),
            private=False,
            sender=Sender(user=message.author.id, chat=message.channel.id),
        )
        command = await intake.request(
            [command_url],
            discord_inbound.InteractionOrigin(application_id=1, token="t"),
            discord_inbound.DEFAULT_UPLOAD_LIMIT,
            private=True,
            sender=Sender(user=1, chat=1),
        )
        assert time.perf_counter() - started < SECONDS_PER_MESSAGE
        assert answer in {Answer.QUEUED, Answer.IGNORED}
        if payload["content"].startswith("watch"):
            assert answer is Answer.QUEUED
            assert not isinstance(command, Answer)
        assert command is Answer.NO_LINK or (
            isinstance(command, VideoRequest) and len(command.links) == 1
        )
    finally:
        await client.close()
