"""Telegram messages to core requests."""

from __future__ import annotations

from dataclasses import dataclass

from telegram import Message, MessageEntity, Update

from bot.codec import DataclassCodec
from bot.model import Sender


@dataclass(frozen=True, slots=True)
class TelegramOrigin:
    """Where to answer: the chat and the message to quote."""

    chat_id: int
    message_id: int
    platform: str = "telegram"


@dataclass(frozen=True, slots=True)
class ButtonOrigin(TelegramOrigin):
    """Where to answer a button press under a message of the bot's (send again, the sound):
    that message is quoted; the press's query id keeps each press a request of its own."""

    query_id: str = ""


@dataclass(frozen=True, slots=True)
class InlineOrigin:
    """Where to answer an inline result a person sent: the sent message, edited in place."""

    inline_message_id: str
    user_id: int
    platform: str = "telegram"


def person_message(update: Update) -> tuple[Message, Sender] | None:
    """The update's message and who sent it, if a person did: messages of bots (our own too)
    and those without a sender are not answered."""
    message = update.message
    if message is None or message.from_user is None or message.from_user.is_bot:
        return None
    user = message.from_user
    return message, Sender(user=user.id, chat=message.chat_id, language=user.language_code)


def origin_of(message: Message) -> TelegramOrigin:
    return TelegramOrigin(chat_id=message.chat_id, message_id=message.message_id)


def texts_of(message: Message) -> list[str]:
    """The message's text or caption, then the targets of links hidden behind words."""
    texts = [message.text or message.caption or ""]
    entities = message.entities or message.caption_entities
    texts.extend(
        entity.url for entity in entities if entity.type == MessageEntity.TEXT_LINK and entity.url
    )
    return texts


def asks_for_video(message: Message) -> bool:
    """Whether the message is a /download command (/download@ThisBot too), which a group that
    has links answered only on request still answers; Telegram delivers commands to a bot in
    privacy mode."""
    return _command_of(message) == "/download"


def asks_for_sound(message: Message) -> bool:
    """Whether the message is an /audio command: the sound of the clip it links, on request
    (in groups too, as /download)."""
    return _command_of(message) == "/audio"


def _command_of(message: Message) -> str | None:
    """The command the message starts with, lowercased and without its @bot part."""
    text = message.text or ""
    for entity in message.entities:
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            return text[: entity.length].partition("@")[0].lower()
    return None


def is_private(message: Message) -> bool:
    return message.chat.type == message.chat.PRIVATE


def origin_codec(token: str) -> DataclassCodec:
    """How the request journal stores Telegram origins: message ids are the bot's own, so they
    are kept under the bot's id (the part of the token before the colon, not the secret)."""
    bot_id, _, _ = token.partition(":")
    return DataclassCodec(TelegramOrigin, ButtonOrigin, InlineOrigin, scope=f"bot{bot_id}")
