"""A Telegram Bot API stand-in: a real aiohttp server speaking the Bot API wire protocol.

The real python-telegram-bot (or any HTTP client) talks to it over a local socket; tests inject
user messages and read what the bot sent, like a conversation. See DESIGN.md section 9.

With a webhook set (setWebhook), the stand-in POSTs each update to it the way Telegram does,
retrying until the receiver confirms with a 2xx answer (DESIGN.md section 13).

Inline mode: a test plays the user who types "@bot query" (inject_inline_query) and picks a
result (choose_inline_result); answerInlineQuery, editMessageMedia and editMessageText are checked
and worded as telegram-bot-api and TDLib check and word them (their sources are named where the
checks are).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import copy
import enum
import functools
import json
import mimetypes
import random
import re
import secrets
import ssl
import struct
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import aiohttp
from aiohttp import BodyPartReader, hdrs, web
from yarl import URL

from tests.standins.lifecycle import StandIn, listen

__all__ = [
    "POLLING_METHODS",
    "TRANSIENT_FAULTS",
    "ApiCall",
    "FakeBotApi",
    "Fault",
    "UploadedFile",
    "WebhookDelivery",
    "utf16_len",
]

JsonObject = dict[str, Any]
_Handler = Callable[["ApiCall"], Awaitable[Any]]
_WakeReason = Literal["update", "conflict", "webhook", "closing"]

# Form values are JSON-encoded except for fields the Bot API types as String (PTB sends those raw),
# so "123" as a caption must stay a string while "123" as a width becomes an int.
_STRING_FIELDS = frozenset(
    {
        "action",
        "animation",
        "audio",
        "business_connection_id",
        "callback_query_id",
        "caption",
        "cover",
        "description",
        "document",
        "emoji",
        "file_id",
        "inline_message_id",
        "inline_query_id",
        "language_code",
        "message_effect_id",
        "name",
        "next_offset",
        "parse_mode",
        "performer",
        "photo",
        "secret_token",
        "short_description",
        "sticker",
        "text",
        "thumbnail",
        "title",
        "url",
        "video",
        "video_note",
        "voice",
    }
)
_INT_OR_STRING_FIELDS = frozenset({"chat_id", "from_chat_id"})
# In the order of Telegram's allowed-updates mask (getWebhookInfo lists allowed_updates so).
_UPDATE_KIND_ORDER = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "inline_query",
    "chosen_inline_result",
    "callback_query",
    "shipping_query",
    "pre_checkout_query",
    "poll",
    "poll_answer",
    "my_chat_member",
    "chat_member",
    "chat_join_request",
    "chat_boost",
    "removed_chat_boost",
    "message_reaction",
    "message_reaction_count",
    "business_connection",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "purchased_paid_media",
)
_UPDATE_KINDS = frozenset(_UPDATE_KIND_ORDER)
# Telegram leaves these out unless a bot asks for them by name.
_DEFAULT_UPDATE_KINDS = _UPDATE_KINDS - {
    "chat_member",
    "message_reaction",
    "message_reaction_count",
}
_CHAT_ACTIONS = frozenset(
    {
        "typing",
        "upload_photo",
        "record_video",
        "upload_video",
        "record_voice",
        "upload_voice",
        "upload_document",
        "choose_sticker",
        "find_location",
        "record_video_note",
        "upload_video_note",
    }
)
_HTML_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "code": "code",
    "pre": "pre",
    "a": "text_link",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "blockquote": "blockquote",
}
# Bare host names count as links only for real top-level domains ("clip.mp4" is not a link).
# fmt: off
_BARE_HOST_TLDS = frozenset({
    "com", "org", "net", "io", "me", "ly", "co", "ru", "de", "uk", "fr", "it", "es", "nl", "pl",
    "br", "in", "jp", "cn", "tv", "app", "dev", "info", "biz", "xyz", "gg", "us", "ca", "au", "eu",
    "ch", "se", "no", "fi", "dk", "at", "be", "cz", "ua", "kz", "tr", "ir", "id", "vn", "kr", "mx",
    "ar", "cl", "pt", "gr", "hu", "ro", "sk", "to", "fm",
})
# fmt: on
_URL_RE = re.compile(
    r"(?<![\w@/.:-])"
    r"(?P<scheme>https?://)?"
    r"(?P<host>(?:\d{1,3}(?:\.\d{1,3}){3})"
    r"|(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?P<tld>[a-z]{2,63}|xn--[a-z0-9-]{1,59})(?![\w-]))"
    r"(?::\d{1,5})?"
    r"(?:[/?#][^\s<>\"«»]*)?",
    re.IGNORECASE,
)
_COMMAND_RE = re.compile(r"(?<![\w/])/[a-zA-Z0-9_]{1,64}(?:@[a-zA-Z0-9_]{3,32})?(?![\w@/])")
_TRAILING_PUNCTUATION = ".,:;!?'\""
_HTML_CHAR_REF = re.compile(r"&(?:#(\d{1,7})|#[xX]([0-9a-fA-F]{1,6})|(lt|gt|amp|quot));")
_HTML_ATTR = re.compile(r"""([\w-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_CONFLICT_DESCRIPTION = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
_WEBHOOK_ACTIVE_DESCRIPTION = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
_SET_WEBHOOK_CONFLICT_DESCRIPTION = "Conflict: terminated by setWebhook request"
_SECRET_TOKEN_RE = re.compile(r"[A-Za-z0-9_-]*")
_SECRET_TOKEN_HEADER = "X-Telegram-Bot-Api-Secret-Token"
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
_WEBHOOK_PORTS = frozenset({443, 80, 88, 8443})
_DEFAULT_MAX_CONNECTIONS = 40
# A webhook's 2xx answer may carry one Bot API call, which Telegram carries out, except these
# (and any get* method).
_NOT_IN_WEBHOOK_ANSWERS = frozenset({"setwebhook", "deletewebhook", "close", "logout"})
_NGINX_BAD_GATEWAY = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
_DOWNLOAD_LIMIT_BYTES = 20 * 1024 * 1024
# Inline mode: what telegram-bot-api (Client.cpp) and TDLib (InlineQueriesManager.cpp,
# InlineMessageManager.cpp) check, and the server errors they pass on (QUERY_ID_INVALID reworded).
_QUERY_TOO_OLD = "query is too old and response timeout expired or query ID is invalid"
_MAX_INLINE_RESULTS = 50
_MAX_RESULT_ID_BYTES = 64
_MAX_CALLBACK_DATA_BYTES = 64
_START_PARAMETER_RE = re.compile(r"[A-Za-z0-9_-]*")
_NOT_MODIFIED = (
    "message is not modified: specified new message content and reply markup are exactly the "
    "same as a current content and reply markup of the message"
)
# Result type -> (its URL field, its file id field, the kind of file the id must be). A result
# of these types has a URL (Telegram fetches it) or a file id (a file the bot sent before).
_MEDIA_RESULTS: dict[str, tuple[str, str, str]] = {
    "video": ("video_url", "video_file_id", "video"),
    "photo": ("photo_url", "photo_file_id", "photo"),
    "gif": ("gif_url", "gif_file_id", "animation"),
    "mpeg4_gif": ("mpeg4_url", "mpeg4_file_id", "animation"),
    "document": ("document_url", "document_file_id", "document"),
    "audio": ("audio_url", "audio_file_id", "audio"),
    "voice": ("voice_url", "voice_file_id", "voice"),
}
# Known to the Bot API, checked here for their required fields only; the stand-in does not
# post them (choose_inline_result refuses).
_OTHER_RESULTS: dict[str, tuple[str, ...]] = {
    "sticker": ("sticker_file_id",),
    "contact": ("phone_number", "first_name"),
    "location": ("latitude", "longitude", "title"),
    "venue": ("latitude", "longitude", "title", "address"),
    "game": ("game_short_name",),
}
# How TDLib names file types in "Can't use file of type X as Y".
_TD_FILE_TYPES = {
    "video": "Video",
    "photo": "Photo",
    "animation": "Animation",
    "document": "Document",
    "audio": "Audio",
    "voice": "VoiceNote",
    "thumbnail": "Thumbnail",
}
_INPUT_MEDIA_TYPES = frozenset({"video", "photo", "animation", "document", "audio"})
_MESSAGE_CONTENT_KEYS = (
    "text",
    "entities",
    "link_preview_options",
    "video",
    "photo",
    "animation",
    "document",
    "audio",
    "voice",
    "caption",
    "caption_entities",
    "reply_markup",
)
_BOT_STATUSES = frozenset({"administrator", "member", "left", "kicked"})
_MEMBER_STATUSES = frozenset({"creator", "administrator", "member", "restricted", "left", "kicked"})
# deleteMessage: how long a message in a private chat or basic group may still be deleted for
# everyone (the Bot API docs: "less than 48 hours ago"; TDLib's revoke time limit).
_REVOKE_WINDOW_S = 48 * 3600
# ChatMemberRestricted's permissions, in telegram-bot-api's order (json_store_permissions).
_PERMISSIONS = (
    "can_send_messages",
    "can_send_media_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_react_to_messages",
    "can_edit_tag",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
)
_CANT_DELETE = "message can't be deleted"
_CANT_DELETE_FOR_EVERYONE = "message can't be deleted for everyone"
# What the bot does on its own while polling or taking a webhook (everything else answers
# someone): random faults leave these alone, or it never starts.
POLLING_METHODS = frozenset(
    {
        "getMe",
        "getUpdates",
        "deleteWebhook",
        "setWebhook",
        "getWebhookInfo",
        "setMyCommands",
        "close",
    }
)


# The emoji a bot may react with (Bot API, ReactionTypeEmoji).
REACTION_EMOJI: Final = frozenset(
    {
        "❤",
        "👍",
        "👎",
        "🔥",
        "🥰",
        "👏",
        "😁",
        "🤔",
        "🤯",
        "😱",
        "🤬",
        "😢",
        "🎉",
        "🤩",
        "🤮",
        "💩",
        "🙏",
        "👌",
        "🕊",
        "🤡",
        "🥱",
        "🥴",
        "😍",
        "🐳",
        "❤\u200d🔥",
        "🌚",
        "🌭",
        "💯",
        "🤣",
        "⚡",
        "🍌",
        "🏆",
        "💔",
        "🤨",
        "😐",
        "🍓",
        "🍾",
        "💋",
        "🖕",
        "😈",
        "😴",
        "😭",
        "🤓",
        "👻",
        "👨\u200d💻",
        "👀",
        "🎃",
        "🙈",
        "😇",
        "😨",
        "🤝",
        "✍",
        "🤗",
        "🫡",
        "🎅",
        "🎄",
        "☃",
        "💅",
        "🤪",
        "🗿",
        "🆒",
        "💘",
        "🙉",
        "🦄",
        "😘",
        "💊",
        "🙊",
        "😎",
        "👾",
        "🤷\u200d♂",
        "🤷",
        "🤷\u200d♀",
        "😡",
    }
)


class Fault(enum.Enum):
    """What `fail_randomly` may do to a call instead of answering it normally."""

    RATE_LIMITED = "429 Too Many Requests with parameters.retry_after"
    SERVER_ERROR = "500 Internal Server Error"
    BAD_GATEWAY = "502 Bad Gateway"
    SLOW = "the call is carried out, its answer comes late"
    RESET_AFTER_BODY = "the call is carried out, then the connection drops without an answer"
    RESET_BEFORE_BODY = "the connection drops before the body is read; nothing is done"
    TOO_LARGE = "413 Request Entity Too Large"


# The bot still answers once under these: it retries the refusals, waits for the slow answer,
# and does not send again what was carried out. RESET_BEFORE_BODY looks the same to a client as
# RESET_AFTER_BODY (the request went out, no answer came), so the bot cannot know it may send
# again: that reply is lost (logged), never doubled. TOO_LARGE turns a video into a reason.
# SLOW is transient while its delay is shorter than the bot's TELEGRAM_TIMEOUT_S.
TRANSIENT_FAULTS = frozenset(
    {
        Fault.RATE_LIMITED,
        Fault.SERVER_ERROR,
        Fault.BAD_GATEWAY,
        Fault.SLOW,
        Fault.RESET_AFTER_BODY,
    }
)


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """One multipart file part as it arrived."""

    filename: str
    content_type: str
    data: bytes
    # Bytes received; equals len(data) unless the stand-in was told not to keep uploads.
    size: int = 0


@dataclass(frozen=True, slots=True)
class ApiCall:
    """One Bot API request as received: form values JSON-decoded, file parts kept aside.

    Files larger than the upload limit are not kept (the call answered 413).
    """

    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    at: float
    # What the call answered ("result" of the JSON body) once it succeeded; None before, or
    # when it failed.
    result: Any = None


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One POST of an update to the webhook, recorded when it ended."""

    update_id: int
    # How many times this update was posted so far, this one included (redeliveries count on).
    attempt: int
    url: str
    # The receiver's HTTP status; None when no answer came (see ``error``).
    status: int | None
    # What went wrong, worded as getWebhookInfo's last_error_message; None for a 2xx answer.
    error: str | None
    # "confirmed" (2xx), "retry" (will be posted again), "dropped" (webhook_max_attempts reached)
    # or "cancelled" (the webhook was changed or deleted, or the stand-in stopped, mid-POST).
    outcome: Literal["confirmed", "retry", "dropped", "cancelled"]
    at: float  # time.monotonic() when the POST started
    ended_at: float  # ... and when it ended

    @property
    def ok(self) -> bool:
        return self.outcome == "confirmed"


@dataclass(slots=True)
class _Webhook:
    """A webhook as set, and the deliveries to it."""

    url: str
    target: URL  # where the POSTs go: ``url``, or its path on ``ip_address``
    # When ``target`` is ``ip_address``: the Host header, and the name TLS checks.
    host_header: str | None
    server_hostname: str | None
    secret_token: str
    max_connections: int
    ip_address: str  # as the bot gave it, "" for none
    certificate: bytes | None
    ssl_context: ssl.SSLContext | None
    last_error_date: int = 0
    last_error_message: str = ""
    session: aiohttp.ClientSession | None = None
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    # Queues (chats, or users for chat-less updates) with a POST in flight: Telegram posts an
    # update only once the one before it in its chat was confirmed.
    busy: set[tuple[str, int]] = field(default_factory=set)
    failures: dict[int, int] = field(default_factory=dict)
    not_before: dict[int, float] = field(default_factory=dict)  # loop.time() of the next try
    timer: asyncio.TimerHandle | None = None

    def same_as(
        self,
        url: str,
        secret_token: str,
        max_connections: int,
        ip_address: str,
        certificate: bytes | None,
    ) -> bool:
        return (
            (self.url, self.secret_token, self.max_connections, self.ip_address)
            == (url, secret_token, max_connections, ip_address)
            and self.certificate is None
            and certificate is None
        )


@dataclass(frozen=True, slots=True)
class _Described:
    """A successful answer that also carries a description (setWebhook, deleteWebhook)."""

    result: Any
    description: str


@dataclass(slots=True)
class _StoredFile:
    """A file the fake holds: what a file_id resolves to, and its Telegram object."""

    file_id: str
    file_unique_id: str
    data: bytes
    file_path: str
    obj: JsonObject
    kind: str  # "video", "photo", "animation", "document", "audio", "voice" or "thumbnail"


@dataclass(slots=True)
class _InlineQuery:
    """An inline query a user typed, and how the bot answered it."""

    query_id: str
    user: JsonObject
    query: str
    at: float  # time.monotonic() when it was sent to the bot
    answer: ApiCall | None = None
    results: dict[str, JsonObject] = field(default_factory=dict)


@dataclass(slots=True)
class _CallbackQuery:
    """A press of an inline button, and how the bot answered it."""

    query_id: str
    at: float  # time.monotonic() when it was sent to the bot
    answer: ApiCall | None = None


@dataclass(slots=True)
class _Chat:
    info: JsonObject
    # The bot's membership: "administrator", "member", "left" or "kicked".
    bot_status: str = "member"
    # The bot's can_delete_messages right while it is an administrator.
    bot_can_delete_messages: bool = True
    next_message_id: int = 1
    messages: dict[int, JsonObject] = field(default_factory=dict)
    deleted: set[int] = field(default_factory=set)
    # Users' statuses as set_member set them (ChatMember "status" values).
    members: dict[int, str] = field(default_factory=dict)
    # Telegram's chat_instance: one per chat, the same in every callback query from it.
    instance: str = field(default_factory=lambda: str(secrets.randbits(63)))

    def take_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id


class _ApiError(Exception):
    """An error answer of the Bot API: {"ok": false, "error_code": ..., "description": ...}."""

    def __init__(
        self, error_code: int, description: str, parameters: JsonObject | None = None
    ) -> None:
        super().__init__(description)
        self.error_code = error_code
        self.description = description
        self.parameters = parameters

    def response(self) -> web.Response:
        if self.error_code == 502:
            # Telegram's nginx front answers it, not the Bot API: an HTML page, no JSON.
            return web.Response(status=502, text=_NGINX_BAD_GATEWAY, content_type="text/html")
        body: JsonObject = {
            "ok": False,
            "error_code": self.error_code,
            "description": self.description,
        }
        if self.parameters:
            body["parameters"] = self.parameters
        return web.json_response(body, status=self.error_code)


@dataclass(frozen=True, slots=True)
class _Reset:
    """Close the connection without an answer, before reading the body or after acting on it."""

    after_body: bool


@dataclass(frozen=True, slots=True)
class _Delay:
    """Act on the call, then answer after `seconds`."""

    seconds: float


@dataclass(frozen=True, slots=True)
class _Chaos:
    rng: random.Random
    rate: float
    kinds: tuple[Fault, ...]
    retry_after: int
    delay_s: float


_Misbehaviour = _ApiError | _Reset | _Delay


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of Telegram entity offsets."""
    return len(text.encode("utf-16-le")) // 2


def _answered(call: ApiCall, result: Any) -> None:
    """Fill in a recorded call's result: once, when its handler returned (calls are recorded
    as they arrive, so waiters see them before they are answered)."""
    object.__setattr__(call, "result", result.result if isinstance(result, _Described) else result)


def _dropped(request: web.Request) -> web.Response:
    """Close the connection at once: the client sees it end with no answer."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=204)


def _bad_request(reason: str) -> _ApiError:
    return _ApiError(400, f"Bad Request: {reason}")


def _td_error(message: str) -> _ApiError:
    """A 400 worded as telegram-bot-api words TDLib's and its own errors (fail_query_with_error):
    the first letter lowered unless the message is an upper-case server error code."""
    if len(message) >= 2 and not (message[1] == "_" or message[1].isupper()):
        message = message[0].lower() + message[1:]
    return _bad_request(message)


class _Unparsable(Exception):
    """A JSON object telegram-bot-api cannot read; the message is its own wording."""


def _required_string(obj: JsonObject, name: str) -> str:
    """td's JsonObject::get_required_string_field: a string, or a number taken as one."""
    if name not in obj:
        raise _Unparsable(f'Can\'t find field "{name}"')
    value = obj[name]
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise _Unparsable(f'Field "{name}" must be of type String')


def _optional_string(obj: JsonObject, name: str) -> str:
    return _required_string(obj, name) if obj.get(name) is not None else ""


def _object_field(obj: JsonObject, name: str) -> JsonObject:
    value = obj[name]
    if not isinstance(value, dict):
        raise _Unparsable(f'Field "{name}" must be of type Object')
    return copy.deepcopy(value)


def _read_inline_button(button: Any) -> JsonObject:
    """One InlineKeyboardButton as telegram-bot-api reads it (get_inline_keyboard_button_type:
    the first action present wins, an empty url or callback_data counts as none) and writes it
    back (JsonInlineKeyboardButton: text, looks, and that one action)."""
    if not isinstance(button, dict):
        raise _Unparsable("InlineKeyboardButton must be an Object")
    read: JsonObject = {"text": _required_string(button, "text")}
    for looks in ("icon_custom_emoji_id", "style"):
        if button.get(looks):
            read[looks] = str(button[looks])
    if url := _optional_string(button, "url"):
        return read | {"url": url}
    if data := _optional_string(button, "callback_data"):
        return read | {"callback_data": data}
    if "callback_game" in button:
        return read | {"callback_game": {}}
    if "pay" in button:
        return read | {"pay": True}
    if "switch_inline_query" in button:
        return read | {"switch_inline_query": _required_string(button, "switch_inline_query")}
    if "switch_inline_query_chosen_chat" in button:
        return read | {
            "switch_inline_query_chosen_chat": _object_field(
                button, "switch_inline_query_chosen_chat"
            )
        }
    if "switch_inline_query_current_chat" in button:
        query = _required_string(button, "switch_inline_query_current_chat")
        return read | {"switch_inline_query_current_chat": query}
    if "login_url" in button:
        return read | {"url": _required_string(_object_field(button, "login_url"), "url")}
    for name in ("web_app", "copy_text"):
        if name in button:
            return read | {name: _object_field(button, name)}
    raise _Unparsable("Text buttons are unallowed in the inline keyboard")


def _new_inline_message_id(chat_id: int, message_id: int) -> str:
    """An id shaped like Telegram's: base64url of a serialized inputBotInlineMessageID64."""
    packed = struct.pack("<IiqiQ", 0xB6D915D7, 2, chat_id, message_id, secrets.randbits(63))
    return base64.urlsafe_b64encode(packed).decode().rstrip("=")


def _is_inline_message_id(value: str) -> bool:
    """Whether TDLib could parse it (20 or 28 bytes of base64url); Telegram judges the rest."""
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (ValueError, binascii.Error):
        return False
    return len(raw) in (20, 28)


def _decode_field(name: str, raw: str) -> Any:
    if name in _STRING_FIELDS:
        return raw
    if name in _INT_OR_STRING_FIELDS:
        try:
            return int(raw)
        except ValueError:
            return raw
    try:
        return json.loads(raw)
    except ValueError:
        return raw


def _flag(value: Any) -> bool:
    """A Boolean parameter as the Bot API reads it."""
    return value is True or value == 1 or (isinstance(value, str) and value.lower() == "true")


def _clamped_int(value: Any, default: int, low: int, high: int) -> int:
    """An Integer parameter as the Bot API reads it: junk counts as 0, then clamped."""
    if value is None or value == "":
        number = default
    else:
        try:
            number = int(value)
        except (TypeError, ValueError):
            number = 0
    return min(max(number, low), high)


def _queue_of(update: JsonObject) -> tuple[str, int]:
    """The delivery queue of an update: its chat, else its user, else its own.

    Telegram keeps the order within a queue (one update in flight per queue) but not across.
    """
    for kind, payload in update.items():
        if kind == "update_id" or not isinstance(payload, dict):
            continue
        chat = payload.get("chat")
        if isinstance(chat, dict) and isinstance(chat.get("id"), int):
            return ("chat", chat["id"])
        user = payload.get("from", payload.get("user"))
        if isinstance(user, dict) and isinstance(user.get("id"), int):
            return ("user", user["id"])
    return ("update", int(update["update_id"]))


def _delivery_error(error: aiohttp.ClientError) -> str:
    """A failed POST in the words getWebhookInfo's last_error_message uses."""
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return f"SSL error {{{error.certificate_error}}}"
    if isinstance(error, aiohttp.ClientConnectorError):
        if isinstance(error.os_error, ssl.SSLError):
            return f"SSL error {{{error.os_error}}}"
        if isinstance(error.os_error, ConnectionRefusedError):
            return "Connection refused"
        return error.os_error.strerror or str(error.os_error)
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "Webhook connection closed"
    if isinstance(error, aiohttp.ClientOSError):
        return error.strerror or str(error)
    return str(error) or type(error).__name__


def _retry_after(response: aiohttp.ClientResponse) -> int:
    """A receiver's Retry-After in seconds (Telegram honours it, up to an hour); 0 if none."""
    value = response.headers.get(hdrs.RETRY_AFTER, "").strip()
    return min(int(value), 3600) if value.isdigit() else 0


def _find_entities(text: str) -> list[JsonObject]:
    """Mark links and bot commands like Telegram does, offsets in UTF-16 code units."""
    spans: list[tuple[int, int, str]] = []
    for match in _URL_RE.finditer(text):
        if not match.group("scheme") and (match.group("tld") or "").lower() not in (
            _BARE_HOST_TLDS
        ):
            continue
        start, end = match.span()
        while end > start and (
            text[end - 1] in _TRAILING_PUNCTUATION
            or (text[end - 1] == ")" and text.count("(", start, end) < text.count(")", start, end))
        ):
            end -= 1
        spans.append((start, end, "url"))
    for match in _COMMAND_RE.finditer(text):
        if not any(s <= match.start() < e for s, e, _ in spans):
            spans.append((match.start(), match.end(), "bot_command"))
    spans.sort()
    return [
        {"type": kind, "offset": utf16_len(text[:start]), "length": utf16_len(text[start:end])}
        for start, end, kind in spans
    ]


def _unescape_html(text: str) -> str:
    def replace(ref: re.Match[str]) -> str:
        decimal, hexadecimal, named = ref.groups()
        if named:
            return _HTML_NAMED[named]
        return chr(int(decimal) if decimal else int(hexadecimal, 16))

    return _HTML_CHAR_REF.sub(replace, text)


def _parse_html(source: str) -> tuple[str, list[JsonObject]]:
    """Turn HTML-formatted text into plain text and entities, failing where Telegram fails."""
    out: list[str] = []
    length = 0
    stack: list[tuple[str, int, JsonObject]] = []
    entities: list[JsonObject] = []

    def fail(reason: str, at: int) -> _ApiError:
        offset = len(source[:at].encode())
        return _bad_request(f"can't parse entities: {reason} at byte offset {offset}")

    def emit(chunk: str) -> None:
        nonlocal length
        out.append(chunk)
        length += utf16_len(chunk)

    i = 0
    while i < len(source):
        char = source[i]
        if char == "&":
            ref = _HTML_CHAR_REF.match(source, i)
            end = ref.end() if ref else i + 1
            emit(_unescape_html(source[i:end]))
            i = end
            continue
        if char != "<":
            emit(char)
            i += 1
            continue
        end = source.find(">", i)
        if end < 0:
            raise fail("Unclosed start tag", i)
        body = source[i + 1 : end]
        if body.startswith("/"):
            name = body[1:].strip().lower()
            if not stack or stack[-1][0] != name:
                raise fail(f'Unmatched end tag "{name}"', i)
            tag, start, attributes = stack.pop()
            if length > start:
                entities.append(
                    {
                        "type": _HTML_ENTITY_TYPES[tag],
                        "offset": start,
                        "length": length - start,
                        **attributes,
                    }
                )
        else:
            name_match = re.match(r"[a-zA-Z][\w-]*", body)
            name = name_match.group(0).lower() if name_match else ""
            if name not in _HTML_ENTITY_TYPES:
                raise fail(f'Unsupported start tag "{name}"', i)
            attrs = {
                key.lower(): double or single or bare
                for key, double, single, bare in _HTML_ATTR.findall(body[len(name) :])
            }
            extra: JsonObject = {}
            if name == "a":
                extra["url"] = _unescape_html(attrs.get("href", ""))
            elif name == "span" and attrs.get("class") != "tg-spoiler":
                raise fail('Tag "span" must have class "tg-spoiler"', i)
            stack.append((name, length, extra))
        i = end + 1
    if stack:
        tag = stack[-1][0]
        raise _bad_request(
            f"can't parse entities: Can't find end tag corresponding to start tag \"{tag}\""
        )
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a JPEG, PNG, GIF or WebP image; None for anything else."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return int.from_bytes(data[6:8], "little"), int.from_bytes(data[8:10], "little")
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and len(data) >= 30:
        if data[12:16] == b"VP8X":
            return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(
                data[27:30], "little"
            )
        if data[12:16] == b"VP8 ":
            return int.from_bytes(data[26:28], "little") & 0x3FFF, int.from_bytes(
                data[28:30], "little"
            ) & 0x3FFF
        if data[12:16] == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
        return None
    return _jpeg_size(data)


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    if data[:2] != b"\xff\xd8":
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        seg_len = int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            if pos + 9 > len(data):
                return None
            height = int.from_bytes(data[pos + 5 : pos + 7], "big")
            width = int.from_bytes(data[pos + 7 : pos + 9], "big")
            return width, height
        pos += 2 + seg_len
    return None


def _same_content(old: JsonObject, new: JsonObject) -> bool:
    """Whether an edit changes nothing users see: files compared by file_unique_id."""

    def essence(content: JsonObject) -> JsonObject:
        seen: JsonObject = {}
        for key, value in content.items():
            if isinstance(value, list) and value and isinstance(value[0], dict):
                value = [item.get("file_unique_id", item) for item in value]
            elif isinstance(value, dict) and "file_unique_id" in value:
                value = value["file_unique_id"]
            seen[key] = value
        return seen

    return essence(old) == essence(new)


class FakeBotApi(StandIn):
    """A Bot API server on 127.0.0.1 (a free port) for one bot token.

    Usage: ``async with FakeBotApi() as api:`` then point the bot at ``api.root`` (the bot appends
    ``/bot<token>/<method>`` and ``/file/bot<token>/<path>``). Bot API methods are answered like
    Telegram answers them, including its error bodies; send* methods need a chat the fake knows
    (one a message was injected into, or one given to ``add_chat``). ``fail_next``,
    ``reset_next``, ``delay_next`` and ``fail_randomly`` make it misbehave on the test's command.

    Webhook mode: once the bot called setWebhook, getUpdates answers 409 and the stand-in POSTs
    every pending and injected update to the webhook itself, like Telegram: JSON, with the
    X-Telegram-Bot-Api-Secret-Token header when a secret was set, up to ``max_connections`` at
    once, one at a time per chat, again after a delay until a 2xx answer confirms it. Tests read
    ``webhook_deliveries``, wait with ``webhook_drained`` and make Telegram repeat itself with
    ``redeliver``. deleteWebhook goes back to getUpdates; unconfirmed updates stay pending.

    Inline mode: ``inject_inline_query``, then ``inline_answer`` (what the bot answered in time,
    within ``inline_window_s``), ``choose_inline_result`` (the user posts a result somewhere;
    a "chosen_inline_result" update follows while ``inline_feedback`` is on), and
    ``inline_message`` (the posted message after the bot's edits by its inline_message_id).
    Storage chats: ``add_chat(chat_id, "channel", bot_status=...)``.

    Inline buttons: sent messages keep their inline keyboard; ``press_button`` /
    ``press_inline_button`` queue a "callback_query" update, ``callback_answer`` reads its
    answer (within ``callback_window_s``). ``set_member`` sets users' statuses for
    getChatMember and getChatAdministrators; ``deleted`` and ``backdate`` serve deleteMessage.
    """

    def __init__(
        self,
        token: str = "123456:TEST-token",  # noqa: S107 - a made-up token for a local stand-in
        *,
        bot_username: str = "reshare_test_bot",
        upload_limit_bytes: int = 50_000_000,
        download_limit_bytes: int = _DOWNLOAD_LIMIT_BYTES,
        keep_uploads: bool = True,
        webhook_retry_delay_s: float = 0.05,
        webhook_max_retry_delay_s: float = 1.0,
        webhook_max_attempts: int | None = None,
        webhook_timeout_s: float = 10.0,
        webhook_ssl_context: ssl.SSLContext | None = None,
        set_webhook_interval_s: float = 1.0,
    ) -> None:
        """``keep_uploads=False`` keeps only sizes: benchmarks measure the bot's memory, not
        the uploads a real Bot API server would hold elsewhere.

        Webhook deliveries: a failed POST (no 2xx answer in ``webhook_timeout_s``) is tried
        again after ``webhook_retry_delay_s``, doubling up to ``webhook_max_retry_delay_s``, or
        after the receiver's Retry-After. Telegram retries at once, then after 2 s doubling up to
        a minute or two, and drops an update a day old; the stand-in keeps trying until it stops
        or ``webhook_max_attempts`` POSTs of one update failed (then it drops it). HTTPS webhooks
        are checked with ``webhook_ssl_context`` (default: the system's CAs), or against the
        certificate the bot uploaded. Like Telegram, setWebhook answers 429 (retry_after 1) when
        called again within ``set_webhook_interval_s``; 0 turns that off.
        """
        self.token = token
        self.webhook_retry_delay_s = webhook_retry_delay_s
        self.webhook_max_retry_delay_s = webhook_max_retry_delay_s
        self.webhook_max_attempts = webhook_max_attempts
        self.webhook_timeout_s = webhook_timeout_s
        self.webhook_ssl_context = webhook_ssl_context
        self.set_webhook_interval_s = set_webhook_interval_s
        self.keep_uploads = keep_uploads
        self.upload_limit_bytes = upload_limit_bytes
        self.download_limit_bytes = download_limit_bytes
        self.bot_user: JsonObject = {
            "id": int(token.split(":", 1)[0]),
            "is_bot": True,
            "first_name": "Reshare Test",
            "username": bot_username,
        }
        self._calls: list[ApiCall] = []
        self._calls_changed = asyncio.Event()
        self._chats: dict[int, _Chat] = {}
        # Unconfirmed updates, for getUpdates or the webhook (Telegram's single queue).
        self._updates: list[JsonObject] = []
        self._updates_changed = asyncio.Event()
        self._injected: dict[int, JsonObject] = {}
        # update_id -> time.monotonic() when getUpdates first handed it to the bot (benchmarks).
        self.handed_at: dict[int, float] = {}
        self._next_update_id = 10_000
        self._webhook: _Webhook | None = None
        self._webhook_closings: set[asyncio.Task[None]] = set()
        self._deliveries: list[WebhookDelivery] = []
        self._posts_per_update: dict[int, int] = {}
        self._next_set_webhook_at = 0.0
        self._allowed_updates: frozenset[str] = _DEFAULT_UPDATE_KINDS
        self._poll: asyncio.Future[_WakeReason] | None = None
        self._closing = False
        self._files: dict[str, _StoredFile] = {}
        self._files_by_path: dict[str, _StoredFile] = {}
        self._next_file_number = 1
        self._next_media_group_id = 13_000_000_000_000_000
        self._failures: dict[str, list[_Misbehaviour]] = {}
        self._chaos: _Chaos | None = None
        # (method, what was done) for every fault that fired, in order.
        self.faults: list[tuple[str, str]] = []
        self._commands: dict[str, list[JsonObject]] = {}
        # Inline mode, as BotFather sets it: /setinline (getMe's supports_inline_queries) and
        # /setinlinefeedback (whether chosen_inline_result updates come).
        self.inline_mode = True
        self.inline_feedback = True
        # How long an inline query may wait for its answer (Telegram gives about 10 s).
        self.inline_window_s = 10.0
        self._inline_queries: dict[str, _InlineQuery] = {}
        # inline_message_id -> (chat id, message id) of the message it names.
        self._inline_messages: dict[str, tuple[int, int]] = {}
        # How long a button press may wait for answerCallbackQuery (Telegram's client shows
        # its spinner about 15 s).
        self.callback_window_s = 15.0
        self._callback_queries: dict[str, _CallbackQuery] = {}
        # Each user's language (from.language_code), as their latest message set it.
        self._languages: dict[int, str | None] = {}
        self._reactions: dict[tuple[int, int], list[str]] = {}
        self._runner: web.AppRunner | None = None
        self._root: str | None = None
        self._methods: dict[str, tuple[str, _Handler]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "logOut": self._true,
                "close": self._true,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "getUpdates": self._get_updates,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
                "setMyDescription": self._true,
                "setMyShortDescription": self._true,
                "sendMessage": self._send_message,
                "sendChatAction": self._send_chat_action,
                "sendVideo": self._send_video,
                "sendDocument": self._send_document,
                "sendPhoto": self._send_photo,
                "sendAudio": self._send_audio,
                "sendMediaGroup": self._send_media_group,
                "editMessageText": self._edit_message_text,
                "editMessageMedia": self._edit_message_media,
                "getChat": self._get_chat,
                "getChatMember": self._get_chat_member,
                "deleteMessage": self._delete_message,
                "setMessageReaction": self._set_message_reaction,
                "answerCallbackQuery": self._answer_callback_query,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "getChatAdministrators": self._get_chat_administrators,
                "answerInlineQuery": self._answer_inline_query,
                "getFile": self._get_file,
            }.items()
        }

    # Lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("FakeBotApi is already running")
        app = web.Application(client_max_size=2100 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_method)
        app.router.add_get("/file/bot{token}/{file_path:.+}", self._handle_download)
        # Cancel a handler when its client goes away, as a dropped long poll must not linger.
        self._runner, port = await listen(app, shutdown_timeout=2.0, handler_cancellation=True)
        self._closing = False
        self._root = f"http://127.0.0.1:{port}"
        self._pump_webhook()

    async def stop(self) -> None:
        """End pending long polls (they answer an empty list), cancel webhook deliveries in
        flight (the webhook stays set) and close the server."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing = True
        self._wake_poll("closing")
        if self._webhook is not None:
            await self._end_deliveries(self._webhook)
        await runner.cleanup()
        # Webhooks unset by calls the cleanup cancelled still end their deliveries.
        await asyncio.gather(*self._webhook_closings)

    @property
    def root(self) -> str:
        """The server root, what TELEGRAM_API_URL would be (no trailing slash)."""
        if self._root is None:
            raise RuntimeError("FakeBotApi is not started")
        return self._root

    @property
    def base_url(self) -> str:
        """What PTB's ``base_url`` should be."""
        return f"{self.root}/bot"

    @property
    def base_file_url(self) -> str:
        """What PTB's ``base_file_url`` should be."""
        return f"{self.root}/file/bot"

    # Test side: the user's half of the conversation

    def add_chat(
        self,
        chat_id: int,
        chat_type: str = "private",
        *,
        user_id: int = 42,
        title: str | None = None,
        bot_status: str | None = None,
        bot_can_delete_messages: bool | None = None,
    ) -> JsonObject:
        """Make a chat known, e.g. a storage chat the bot sends to without being written to.

        ``chat_type``: "private", "group", "supergroup" or "channel". ``bot_status`` is the
        bot's membership ("administrator", "member", "left" or "kicked"; by default an
        administrator of a channel, a member elsewhere). In a channel only an administrator
        posts (as the channel); in groups a bot that left or was kicked cannot send; getChat and
        getChatMember answer accordingly. Given again for a known chat, it changes the status.
        ``bot_can_delete_messages`` is the administrator bot's right to delete others' messages
        (on by default).
        """
        if bot_status is not None and bot_status not in _BOT_STATUSES:
            raise ValueError(f"bot_status must be one of {sorted(_BOT_STATUSES)}")
        user = self._user(user_id, is_bot=False)
        chat = self._ensure_chat(chat_id, chat_type, user, title)
        if bot_status is not None:
            chat.bot_status = bot_status
        if bot_can_delete_messages is not None:
            chat.bot_can_delete_messages = bot_can_delete_messages
        return copy.deepcopy(chat.info)

    def set_member(self, chat_id: int, user_id: int, status: str) -> None:
        """Make a user a chat's "creator", "administrator" (every right but promoting),
        "member", "restricted" (supergroups only), "left" or "kicked", as getChatMember and
        getChatAdministrators then answer. The bot's own status is add_chat's ``bot_status``."""
        if status not in _MEMBER_STATUSES:
            raise ValueError(f"status must be one of {sorted(_MEMBER_STATUSES)}")
        chat = self._chats.get(chat_id)
        if chat is None:
            raise ValueError(f"chat {chat_id} is not known (add_chat it first)")
        kind = chat.info["type"]
        if kind == "private":
            raise ValueError("a private chat has no member statuses")
        if status == "restricted" and kind != "supergroup":
            raise ValueError("only supergroups restrict members")
        if user_id == self.bot_user["id"]:
            raise ValueError("the bot's own status is add_chat's bot_status")
        chat.members[user_id] = status

    def inject_message(
        self,
        text: str,
        *,
        chat_id: int = 1001,
        chat_type: str = "private",
        user_id: int = 42,
        is_bot: bool = False,
        entities: list[JsonObject] | None = None,
        reply_to_message_id: int | None = None,
        language_code: str | None = "en",
    ) -> JsonObject:
        """Queue a "message" update from a user; returns the Message as the bot will see it.

        Without ``entities``, links and commands are marked the way Telegram marks them.
        ``language_code`` is the user's app language (None: Telegram sends none); their
        callback and inline queries carry it from then on.
        """
        self._languages[user_id] = language_code
        user = self._user(user_id, is_bot=is_bot)
        chat = self._ensure_chat(chat_id, chat_type, user, None)
        message = self._user_message(chat, user, text, entities)
        if reply_to_message_id is not None:
            message["reply_to_message"] = self._reply_target(
                chat, reply_to_message_id, allow_missing=False
            )
        self.inject_update("message", message)
        return copy.deepcopy(message)

    def inject_command(
        self,
        command: str,
        args: str = "",
        *,
        mention_bot: bool = False,
        chat_id: int = 1001,
        chat_type: str = "private",
        user_id: int = 42,
    ) -> JsonObject:
        """Queue ``/command args`` (``/command@bot args`` with ``mention_bot``, as in groups)."""
        text = "/" + command.lstrip("/")
        if mention_bot:
            text += "@" + self.bot_user["username"]
        if args:
            text += " " + args
        return self.inject_message(text, chat_id=chat_id, chat_type=chat_type, user_id=user_id)

    def inject_edited_message(
        self,
        text: str,
        *,
        chat_id: int = 1001,
        chat_type: str = "private",
        user_id: int = 42,
        is_bot: bool = False,
        entities: list[JsonObject] | None = None,
        message_id: int | None = None,
    ) -> JsonObject:
        """Queue an "edited_message" update: a user changed the text of one of their messages.

        ``message_id`` picks the message; by default it is the user's latest one in the chat, or
        a new one if there is none (sent before the bot was listening).
        """
        user = self._user(user_id, is_bot=is_bot)
        chat = self._ensure_chat(chat_id, chat_type, user, None)
        if message_id is None:
            own = [m for m in chat.messages.values() if m.get("from", {}).get("id") == user_id]
            message_id = own[-1]["message_id"] if own else None
        if message_id is None:
            message = self._user_message(chat, user, text, entities)
        elif (found := chat.messages.get(message_id)) is not None:
            message = found
        else:
            raise ValueError(f"message {message_id} is not in chat {chat_id}")
        message["text"] = text
        message.pop("entities", None)
        marked = _find_entities(text) if entities is None else entities
        if marked:
            message["entities"] = marked
        message["edit_date"] = int(time.time())
        self.inject_update("edited_message", message)
        return copy.deepcopy(message)

    # Test side: inline mode (the user types "@bot query" somewhere and picks a result)

    def inject_inline_query(
        self,
        query: str,
        *,
        user_id: int = 42,
        chat_type: str | None = "private",
        offset: str = "",
    ) -> str:
        """Queue an "inline_query" update; returns its id (a string, like Telegram's).

        The bot has ``inline_window_s`` from now to answer it. ``chat_type`` is where the user
        types ("sender", "private", "group", "supergroup", "channel"; None leaves it out).
        """
        if not self.inline_mode:
            raise ValueError("inline mode is off (BotFather's /setinline): Telegram sends no query")
        user = self._user(user_id, is_bot=False)
        query_id = str(secrets.randbits(62) | 1 << 62)
        self._inline_queries[query_id] = _InlineQuery(
            query_id=query_id, user=user, query=query, at=time.monotonic()
        )
        payload: JsonObject = {"id": query_id, "from": user, "query": query, "offset": offset}
        if chat_type is not None:
            payload["chat_type"] = chat_type
        self.inject_update("inline_query", payload)
        return query_id

    def inline_answer(self, query_id: str) -> ApiCall:
        """The answerInlineQuery call that answered this query; KeyError if none did."""
        query = self._inline_queries.get(query_id)
        if query is None or query.answer is None:
            raise KeyError(f"inline query {query_id} has no answer (yet)")
        return query.answer

    def choose_inline_result(
        self,
        query_id: str,
        result_id: str,
        *,
        chat_id: int = 1001,
        chat_type: str = "private",
    ) -> JsonObject:
        """The user picks a result of an answered query: Telegram posts it into the chat.

        The message is the user's, ``via_bot`` the bot, its content the result's (the text of an
        article, the file of a media result with its caption) with the result's inline keyboard.
        Only a result with a keyboard gets an ``inline_message_id`` (the bot's handle to edit it
        later). With ``inline_feedback`` on, a "chosen_inline_result" update follows. The bot
        gets no "message" update for the post: users mostly post in chats the bot is not in.

        Returns the posted message, with "inline_message_id" added when it has one.
        """
        query = self._inline_queries.get(query_id)
        if query is None or query.answer is None:
            raise ValueError(f"inline query {query_id} was not answered")
        result = query.results.get(result_id)
        if result is None:
            raise ValueError(f"the answer to {query_id} has no result {result_id!r}")
        user = query.user
        chat = self._ensure_chat(chat_id, chat_type, user, None)
        message: JsonObject = {"message_id": chat.take_message_id()}
        if chat_type == "channel":
            message["sender_chat"] = dict(chat.info)
        else:
            message["from"] = dict(user)
        message |= {
            "chat": dict(chat.info),
            "date": int(time.time()),
            "via_bot": dict(self.bot_user),
            **self._result_content(result),
        }
        markup = result.get("reply_markup")
        if markup:
            message["reply_markup"] = copy.deepcopy(markup)
        chat.messages[message["message_id"]] = message
        posted = copy.deepcopy(message)
        chosen: JsonObject = {"result_id": result_id, "from": dict(user), "query": query.query}
        if markup:
            inline_message_id = _new_inline_message_id(chat_id, message["message_id"])
            self._inline_messages[inline_message_id] = (chat_id, message["message_id"])
            chosen["inline_message_id"] = posted["inline_message_id"] = inline_message_id
        if self.inline_feedback:
            self.inject_update("chosen_inline_result", chosen)
        return posted

    def inline_message(self, inline_message_id: str) -> JsonObject:
        """The message an inline_message_id names, as users see it now (edits applied)."""
        chat_id, message_id = self._inline_messages[inline_message_id]
        return copy.deepcopy(self._chats[chat_id].messages[message_id])

    @property
    def inline_messages(self) -> dict[str, JsonObject]:
        """Every message posted from an inline result with a keyboard, by inline_message_id."""
        return {key: self.inline_message(key) for key in self._inline_messages}

    # Test side: inline buttons (a user presses one under a bot's message)

    def press_button(
        self, chat_id: int, message_id: int, callback_data: str, *, user_id: int = 42
    ) -> str:
        """Queue a "callback_query" update: a user pressed the button with ``callback_data``
        under a message in a chat; returns the query's id. The bot has ``callback_window_s``
        to answer it (answerCallbackQuery). ValueError if the message has no such button."""
        chat = self._chats.get(chat_id)
        message = None if chat is None else chat.messages.get(message_id)
        if chat is None or message is None:
            raise ValueError(f"message {message_id} is not in chat {chat_id}")
        self._find_button(message, callback_data)
        return self._press(user_id, callback_data, chat, {"message": copy.deepcopy(message)})

    def press_inline_button(
        self, inline_message_id: str, callback_data: str, *, user_id: int = 42
    ) -> str:
        """Like press_button, under a message posted from an inline result: the update names
        it by ``inline_message_id`` and carries no message."""
        where = self._inline_messages.get(inline_message_id)
        if where is None:
            raise ValueError(f"no inline message {inline_message_id}")
        chat = self._chats[where[0]]
        message = chat.messages.get(where[1])
        if message is None:
            raise ValueError(f"inline message {inline_message_id} was deleted")
        self._find_button(message, callback_data)
        payload: JsonObject = {"inline_message_id": inline_message_id}
        return self._press(user_id, callback_data, chat, payload)

    def callback_answer(self, query_id: str) -> ApiCall:
        """The answerCallbackQuery call that answered this press; KeyError if none did."""
        query = self._callback_queries.get(query_id)
        if query is None or query.answer is None:
            raise KeyError(f"callback query {query_id} has no answer (yet)")
        return query.answer

    def deleted(self, chat_id: int, message_id: int) -> bool:
        """Whether the bot deleted this message (deleteMessage)."""
        chat = self._chats.get(chat_id)
        return chat is not None and message_id in chat.deleted

    def backdate(self, chat_id: int, message_id: int, seconds: float) -> None:
        """Make a message older by ``seconds`` (its date), e.g. past deleteMessage's 48 hours."""
        self._chats[chat_id].messages[message_id]["date"] -= int(seconds)

    @staticmethod
    def _find_button(message: JsonObject, callback_data: str) -> None:
        rows = message.get("reply_markup", {}).get("inline_keyboard", [])
        if not any(button.get("callback_data") == callback_data for row in rows for button in row):
            raise ValueError(
                f"message {message['message_id']} has no button with callback_data "
                f"{callback_data!r}"
            )

    def _press(self, user_id: int, data: str, chat: _Chat, where: JsonObject) -> str:
        query_id = str(secrets.randbits(62) | 1 << 62)
        self._callback_queries[query_id] = _CallbackQuery(query_id=query_id, at=time.monotonic())
        payload: JsonObject = {
            "id": query_id,
            "from": self._user(user_id, is_bot=False),
            **where,
            "chat_instance": chat.instance,
            "data": data,
        }
        self.inject_update("callback_query", payload)
        return query_id

    def inject_update(self, kind: str, payload: JsonObject) -> int:
        """Queue a raw update of any kind; returns its update_id.

        Like Telegram, an update of a kind the bot did not allow (allowed_updates) is dropped.
        """
        if kind not in _UPDATE_KINDS:
            raise ValueError(f"unknown update kind {kind!r}")
        update_id = self._next_update_id
        self._next_update_id += 1
        if kind in self._allowed_updates:
            update = {"update_id": update_id, kind: copy.deepcopy(payload)}
            self._injected[update_id] = copy.deepcopy(update)
            self._updates.append(update)
            self._updates_did_change()
            self._wake_poll("update")
            self._pump_webhook()
        return update_id

    def redeliver(self, update_id: int) -> None:
        """Make Telegram POST an update to the webhook again though it was confirmed.

        Telegram does this when its connection drops after the receiver answered 200: the bot
        must expect the same update_id twice.
        """
        if self._webhook is None:
            raise RuntimeError("no webhook is set: only a webhook gets an update twice")
        update = self._injected.get(update_id)
        if update is None:
            raise ValueError(f"update {update_id} was not injected (or not allowed)")
        if any(pending["update_id"] == update_id for pending in self._updates):
            raise ValueError(f"update {update_id} is not confirmed yet")
        self._updates.append(copy.deepcopy(update))
        self._updates_did_change()
        self._pump_webhook()

    def fail_next(
        self,
        method: str,
        error_code: int = 429,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` calls of ``method`` with an error (429 by default)."""
        self._queue(method, [self._error(error_code, description, retry_after)] * times)

    def reset_next(self, method: str, *, after_body: bool = False, times: int = 1) -> None:
        """Drop the connection of the next ``times`` calls of ``method`` without an answer:
        before reading the body (nothing is done), or ``after_body`` once the call was carried
        out (the message exists; only its answer is lost)."""
        self._queue(method, [_Reset(after_body)] * times)

    def delay_next(self, method: str, seconds: float, *, times: int = 1) -> None:
        """Carry out the next ``times`` calls of ``method`` at once but answer after ``seconds``
        (the client may give up waiting; the message exists all the same)."""
        self._queue(method, [_Delay(seconds)] * times)

    def fail_randomly(
        self,
        rng: random.Random,
        rate: float,
        kinds: Collection[Fault] = TRANSIENT_FAULTS,
        *,
        retry_after: int = 1,
        delay_s: float = 1.0,
    ) -> None:
        """From now on, treat each call the bot makes to answer someone (not its polling) with
        one of ``kinds`` at probability ``rate``, drawn from ``rng`` (seed it to replay a run).
        ``rate=0`` turns it off. Faults queued by the other methods come first."""
        chosen = tuple(sorted(kinds, key=lambda kind: kind.name))
        self._chaos = _Chaos(rng, rate, chosen, retry_after, delay_s) if rate > 0 else None

    @staticmethod
    def _error(error_code: int, description: str | None, retry_after: int | None) -> _ApiError:
        parameters: JsonObject | None = None
        if error_code == 429:
            retry_after = 1 if retry_after is None else retry_after
        if retry_after is not None:
            parameters = {"retry_after": retry_after}
        if description is None:
            description = {
                400: "Bad Request",
                403: "Forbidden: bot was blocked by the user",
                413: "Request Entity Too Large",
                429: f"Too Many Requests: retry after {retry_after}",
                500: "Internal Server Error",
                502: "Bad Gateway",
            }.get(error_code, f"Error {error_code}")
        return _ApiError(error_code, description, parameters)

    def _queue(self, method: str, faults: list[_Misbehaviour]) -> None:
        self._failures.setdefault(self._canonical(method), []).extend(faults)

    def _next_fault(self, name: str) -> _Misbehaviour | None:
        if failures := self._failures.get(name):
            return failures.pop(0)
        chaos = self._chaos
        if chaos is None or name in POLLING_METHODS or chaos.rng.random() >= chaos.rate:
            return None
        kind = chaos.rng.choice(chaos.kinds)
        faults: dict[Fault, _Misbehaviour] = {
            Fault.RATE_LIMITED: self._error(429, None, chaos.retry_after),
            Fault.SERVER_ERROR: self._error(500, None, None),
            Fault.BAD_GATEWAY: self._error(502, None, None),
            Fault.TOO_LARGE: self._error(413, None, None),
            Fault.SLOW: _Delay(chaos.delay_s),
            Fault.RESET_AFTER_BODY: _Reset(after_body=True),
            Fault.RESET_BEFORE_BODY: _Reset(after_body=False),
        }
        return faults[kind]

    # Test side: what the bot did

    @property
    def calls(self) -> list[ApiCall]:
        """Every request with the right token, in the order they were read."""
        return list(self._calls)

    def calls_to(self, method: str) -> list[ApiCall]:
        name = self._canonical(method)
        return [call for call in self._calls if call.method == name]

    def chat_history(self, chat_id: int) -> list[JsonObject]:
        """The chat as a user sees it now: all messages, edits applied, deleted ones gone."""
        chat = self._chats.get(chat_id)
        if chat is None:
            return []
        return [copy.deepcopy(chat.messages[key]) for key in sorted(chat.messages)]

    @property
    def pending_updates(self) -> list[JsonObject]:
        """Updates not yet confirmed: by a getUpdates offset past them, or a webhook's 2xx."""
        return copy.deepcopy(self._updates)

    @property
    def webhook_url(self) -> str:
        """The webhook the bot set; "" while it polls."""
        return "" if self._webhook is None else self._webhook.url

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        """Every POST of an update to a webhook, in the order they ended."""
        return list(self._deliveries)

    async def wait_for_deliveries(
        self,
        count: int = 1,
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 - a bound on the wait reads better in a test
    ) -> list[WebhookDelivery]:
        """Wait until at least ``count`` POSTs to a webhook ended; returns all of them."""
        await self._wait_until(
            lambda: len(self._deliveries) >= count,
            timeout,
            lambda: f"expected {count} webhook deliveries within {timeout}s",
        )
        return self.webhook_deliveries

    async def webhook_drained(
        self,
        *,
        timeout: float = 30.0,  # noqa: ASYNC109 - a bound on the wait reads better in a test
    ) -> list[WebhookDelivery]:
        """Wait until no update is pending: the webhook confirmed every one (or, past
        ``webhook_max_attempts``, they were dropped); returns every delivery so far.

        While polling, getUpdates offsets confirm updates, so this waits for those instead.
        """
        await self._wait_until(
            lambda: not self._updates,
            timeout,
            lambda: (
                f"updates {[u['update_id'] for u in self._updates]} still pending after "
                f"{timeout}s (webhook {self.webhook_url or 'not set'})"
            ),
        )
        return self.webhook_deliveries

    async def _wait_until(
        self, done: Callable[[], bool], seconds: float, failure: Callable[[], str]
    ) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while not done():
            remaining = deadline - loop.time()
            changed = self._updates_changed
            try:
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                seen = "\n  ".join(map(repr, self._deliveries)) or "(none)"
                raise AssertionError(f"{failure()}; deliveries:\n  {seen}") from None

    async def wait_for_call(
        self,
        method: str,
        *,
        count: int = 1,
        timeout: float = 30.0,  # noqa: ASYNC109 - a bound on the wait reads better in a test
    ) -> list[ApiCall]:
        """Wait until at least ``count`` calls of ``method`` arrived; returns all of them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found := self.calls_to(method)) < count:
            remaining = deadline - loop.time()
            changed = self._calls_changed
            try:
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(changed.wait(), remaining)
            except TimeoutError:
                seen = "\n  ".join(self._describe(call) for call in self._calls) or "(none)"
                raise AssertionError(
                    f"expected {count} {self._canonical(method)} call(s) within {timeout}s, "
                    f"got {len(found)}; calls seen:\n  {seen}"
                ) from None
        return found

    def file_bytes(self, call: ApiCall, field_name: str = "video") -> bytes:
        """The bytes a send* call carried in a field: an upload, an attach:// part or a file_id."""
        return self._data_of(call, field_name, call.params.get(field_name))

    def video_bytes(self, call: ApiCall) -> bytes:
        """The bytes of the video a sendVideo call sent."""
        return self.file_bytes(call, "video")

    def media_group_bytes(self, call: ApiCall) -> list[bytes]:
        """The bytes of each item of a sendMediaGroup call, in order."""
        return [
            self._data_of(call, "media", item.get("media")) for item in call.params.get("media", [])
        ]

    def _data_of(self, call: ApiCall, field_name: str, value: Any) -> bytes:
        try:
            return self._resolve(call, field_name, value).data
        except _ApiError as error:
            raise AssertionError(
                f"{call.method} carried no usable {field_name!r}: {error.description}"
            ) from None

    # HTTP

    async def _handle_method(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            await request.release()
            return _ApiError(401, "Unauthorized").response()
        name, handler = self._methods.get(
            request.match_info["method"].lower(), (request.match_info["method"], None)
        )
        fault = self._next_fault(name) if handler is not None else None
        if isinstance(fault, _Reset) and not fault.after_body:
            self.faults.append((name, "reset before the body"))
            return _dropped(request)
        try:
            params, files, too_large = await self._read_request(request)
        except _ApiError as error:
            return error.response()
        call = ApiCall(method=name, params=params, files=files, at=time.monotonic())
        self._record_call(call)
        try:
            if too_large:
                raise _ApiError(413, "Request Entity Too Large")
            if handler is None:
                raise _ApiError(404, "Not Found")
            if isinstance(fault, _ApiError):
                self.faults.append((name, f"{fault.error_code} {fault.description}"))
                raise fault
            result = await handler(call)
        except _ApiError as error:
            return error.response()
        _answered(call, result)
        if isinstance(fault, _Reset):
            self.faults.append((name, "reset after the call was carried out"))
            return _dropped(request)
        if isinstance(fault, _Delay):
            self.faults.append((name, f"answered {fault.seconds} s late"))
            await asyncio.sleep(fault.seconds)
        if isinstance(result, _Described):
            return web.json_response(
                {"ok": True, "result": result.result, "description": result.description}
            )
        return web.json_response({"ok": True, "result": result})

    def _record_call(self, call: ApiCall) -> None:
        self._calls.append(call)
        self._calls_changed.set()
        self._calls_changed = asyncio.Event()

    async def _read_request(
        self, request: web.Request
    ) -> tuple[dict[str, Any], dict[str, UploadedFile], bool]:
        """Parameters (query, form, multipart or JSON), kept files, whether one was too big."""
        params: dict[str, Any] = {
            key: _decode_field(key, value) for key, value in request.query.items()
        }
        files: dict[str, UploadedFile] = {}
        too_large = False
        if request.content_type == "multipart/form-data":
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                if not isinstance(part, BodyPartReader) or part.name is None:
                    await part.release()
                    continue
                if part.filename is None:
                    params[part.name] = _decode_field(part.name, await part.text())
                    continue
                data = await self._read_file_part(part)
                if data is None:
                    too_large = True
                    continue
                files[part.name] = UploadedFile(
                    filename=part.filename,
                    content_type=part.headers.get(hdrs.CONTENT_TYPE, "application/octet-stream"),
                    data=data if self.keep_uploads else b"",
                    size=len(data),
                )
        elif request.content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise _bad_request("can't parse JSON encoded request body") from None
            if not isinstance(body, dict):
                raise _bad_request("JSON encoded request body must be an object")
            params.update(body)
        elif request.content_type == "application/x-www-form-urlencoded":
            form = await request.post()
            params.update({key: _decode_field(key, str(value)) for key, value in form.items()})
        else:
            await request.release()
        return params, files, too_large

    async def _read_file_part(self, part: BodyPartReader) -> bytes | None:
        """The part's bytes, or None past the upload limit (the rest is drained, not kept)."""
        buffer = bytearray()
        size = 0
        while chunk := await part.read_chunk(1 << 20):
            size += len(chunk)
            if size <= self.upload_limit_bytes:
                buffer += chunk
            else:
                buffer.clear()
        return bytes(buffer) if size <= self.upload_limit_bytes else None

    async def _handle_download(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return _ApiError(401, "Unauthorized").response()
        stored = self._files_by_path.get(request.match_info["file_path"])
        if stored is None:
            return _ApiError(404, "Not Found").response()
        return web.Response(body=stored.data, content_type="application/octet-stream")

    # Bot API methods

    async def _true(self, call: ApiCall) -> bool:
        return True

    async def _get_me(self, call: ApiCall) -> JsonObject:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": self.inline_mode,
            "can_connect_to_business": False,
            "has_main_web_app": False,
        }

    async def _set_webhook(self, call: ApiCall) -> _Described:
        """Checks and order as in telegram-bot-api's Client::process_set_webhook_query."""
        params = call.params
        url = params.get("url")
        url = url if isinstance(url, str) else ""
        if not url:
            return await self._delete_webhook(call)
        now = time.monotonic()
        if now < self._next_set_webhook_at:
            raise self._error(429, None, 1)
        self._next_set_webhook_at = now + self.set_webhook_interval_s
        secret_token = str(params.get("secret_token") or "")
        max_connections = _clamped_int(
            params.get("max_connections"), _DEFAULT_MAX_CONNECTIONS, 1, 100
        )
        ip_address = str(params.get("ip_address") or "")
        certificate = self._certificate(call)
        drop_pending = _flag(params.get("drop_pending_updates"))
        current = self._webhook
        if (
            current is not None
            and current.same_as(url, secret_token, max_connections, ip_address, certificate)
            and not drop_pending
        ):
            self._allow_updates(params)
            return _Described(True, "Webhook is already set")
        self._wake_poll("webhook")
        while self._webhook is not None:  # also one set by a call that overtook this one
            await self._close_webhook()
        if drop_pending:
            self._drop_pending_updates()
        target, host_header, server_hostname = self._webhook_target(url, ip_address)
        if len(secret_token) > 256:
            raise _bad_request("secret token is too long")
        if not _SECRET_TOKEN_RE.fullmatch(secret_token):
            raise _bad_request("secret token contains unallowed characters")
        ssl_context = self._webhook_ssl(target, certificate)
        self._allow_updates(params)
        self._webhook = _Webhook(
            url=url,
            target=target,
            host_header=host_header,
            server_hostname=server_hostname,
            secret_token=secret_token,
            max_connections=max_connections,
            ip_address=ip_address,
            certificate=certificate,
            ssl_context=ssl_context,
        )
        self._pump_webhook()
        return _Described(True, "Webhook was set")

    async def _delete_webhook(self, call: ApiCall) -> _Described:
        """deleteWebhook, and setWebhook with an empty url."""
        was_set = await self._close_webhook()
        if _flag(call.params.get("drop_pending_updates")):
            self._drop_pending_updates()
        return _Described(True, "Webhook was deleted" if was_set else "Webhook is already deleted")

    async def _get_webhook_info(self, call: ApiCall) -> JsonObject:
        hook = self._webhook
        info: JsonObject = {
            "url": "" if hook is None else hook.url,
            "has_custom_certificate": hook is not None and hook.certificate is not None,
            "pending_update_count": len(self._updates),
        }
        if hook is not None:
            if hook.last_error_date:
                info["last_error_date"] = hook.last_error_date
                info["last_error_message"] = hook.last_error_message
            info["max_connections"] = hook.max_connections
            # Telegram shows the address it posts to: ip_address, or what the host resolved to.
            info["ip_address"] = hook.ip_address or str(hook.target.host).replace(
                "localhost", "127.0.0.1"
            )
        if self._allowed_updates != _DEFAULT_UPDATE_KINDS:
            info["allowed_updates"] = [k for k in _UPDATE_KIND_ORDER if k in self._allowed_updates]
        return info

    async def _get_updates(self, call: ApiCall) -> list[JsonObject]:
        if self._webhook is not None:
            raise _ApiError(409, _WEBHOOK_ACTIVE_DESCRIPTION)
        params = call.params
        offset = int(params.get("offset") or 0)
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        timeout = max(float(params.get("timeout") or 0), 0.0)
        self._allow_updates(params)
        pending = len(self._updates)
        if offset > 0:
            self._updates = [u for u in self._updates if u["update_id"] >= offset]
        elif offset < 0:
            self._updates = self._updates[offset:]
        if len(self._updates) != pending:
            self._updates_did_change()
        self._wake_poll("conflict")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self._updates and not self._closing:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            poll: asyncio.Future[_WakeReason] = loop.create_future()
            self._poll = poll
            try:
                reason = await asyncio.wait_for(poll, remaining)
            except TimeoutError:
                break
            finally:
                if self._poll is poll:
                    self._poll = None
            if reason == "conflict":
                raise _ApiError(409, _CONFLICT_DESCRIPTION)
            if reason == "webhook":
                raise _ApiError(409, _SET_WEBHOOK_CONFLICT_DESCRIPTION)
        handed = self._updates[:limit]
        now = time.monotonic()
        for update in handed:
            self.handed_at.setdefault(update["update_id"], now)
        return copy.deepcopy(handed)

    async def _set_my_commands(self, call: ApiCall) -> bool:
        commands = call.params.get("commands")
        if not isinstance(commands, list):
            raise _bad_request("can't parse commands JSON object")
        self._commands[self._commands_key(call)] = commands
        return True

    async def _get_my_commands(self, call: ApiCall) -> list[JsonObject]:
        return self._commands.get(self._commands_key(call), [])

    async def _delete_my_commands(self, call: ApiCall) -> bool:
        self._commands.pop(self._commands_key(call), None)
        return True

    async def _send_message(self, call: ApiCall) -> JsonObject:
        chat = self._chat_to_post(call)
        text, entities = self._formatted(call, "text", "entities")
        if not text.strip():
            raise _bad_request("message text is empty")
        if utf16_len(text) > 4096:
            raise _bad_request("message is too long")
        content: JsonObject = {"text": text}
        if entities:
            content["entities"] = entities
        return self._bot_message(chat, call, content)

    async def _send_chat_action(self, call: ApiCall) -> bool:
        self._chat_to_post(call)
        if call.params.get("action") not in _CHAT_ACTIONS:
            raise _bad_request("wrong parameter action in request")
        return True

    async def _send_video(self, call: ApiCall) -> JsonObject:
        chat = self._chat_to_post(call)
        content = self._caption(call)
        content["video"] = self._media_object(call, "video", call.params.get("video"), call.params)
        return self._bot_message(chat, call, content)

    async def _send_document(self, call: ApiCall) -> JsonObject:
        chat = self._chat_to_post(call)
        content = self._caption(call)
        content["document"] = self._media_object(
            call, "document", call.params.get("document"), call.params
        )
        return self._bot_message(chat, call, content)

    async def _send_audio(self, call: ApiCall) -> JsonObject:
        chat = self._chat_to_post(call)
        content = self._caption(call)
        content["audio"] = self._media_object(call, "audio", call.params.get("audio"), call.params)
        return self._bot_message(chat, call, content)

    async def _send_photo(self, call: ApiCall) -> JsonObject:
        chat = self._chat_to_post(call)
        content = self._caption(call)
        content["photo"] = [
            self._media_object(call, "photo", call.params.get("photo"), call.params)
        ]
        return self._bot_message(chat, call, content)

    async def _send_media_group(self, call: ApiCall) -> list[JsonObject]:
        chat = self._chat_to_post(call)
        media = call.params.get("media")
        if not isinstance(media, list) or not all(isinstance(item, dict) for item in media):
            raise _bad_request("can't parse media JSON object")
        if len(media) > 10:
            raise _bad_request("too much messages to send as an album")
        if len(media) < 2:
            raise _bad_request("media group must contain 2-10 items")
        kinds = {item.get("type") for item in media}
        if not kinds <= {"photo", "video", "document", "audio"}:
            raise _bad_request("wrong media type in the album")
        if len(kinds) > 1 and kinds & {"document", "audio"}:
            raise _bad_request("documents and audio can be grouped only with their own kind")
        group_id = str(self._next_media_group_id)
        self._next_media_group_id += 1
        contents: list[JsonObject] = []
        for item in media:
            kind = item["type"]
            content = self._caption(call, item)
            obj = self._media_object(call, kind, item.get("media"), item)
            content[kind] = [obj] if kind == "photo" else obj
            content["media_group_id"] = group_id
            contents.append(content)
        return [self._bot_message(chat, call, content) for content in contents]

    async def _delete_message(self, call: ApiCall) -> bool:
        """The Bot API docs' rules: the bot's own messages, and incoming ones in private chats;
        others' in a group as an administrator, in a supergroup or channel with
        can_delete_messages. Private chats and basic groups revoke only within 48 hours
        (TDLib's can_revoke_message; supergroups and channels delete without revoking)."""
        chat = self._chat(call)
        message_id = self._int_param(call, "message_id")
        self._check_access(chat)
        message = chat.messages.get(message_id)
        if message is None:
            raise _bad_request("message to delete not found")
        kind = chat.info["type"]
        admin = chat.bot_status == "administrator"
        if self._sent_by_bot(message) or kind == "private":
            allowed = kind != "channel" or admin
        elif kind == "group":
            allowed = admin
        else:
            allowed = admin and chat.bot_can_delete_messages
        if not allowed:
            raise _bad_request(_CANT_DELETE)
        revokes = kind in ("private", "group")
        if revokes and time.time() - message["date"] >= _REVOKE_WINDOW_S:
            raise _bad_request(_CANT_DELETE_FOR_EVERYONE)
        del chat.messages[message_id]
        chat.deleted.add(message_id)
        return True

    async def _set_message_reaction(self, call: ApiCall) -> bool:
        """Only the emoji Telegram allows bots to react with; the bot's reaction replaces its
        earlier one."""
        chat = self._chat(call)
        message_id = self._int_param(call, "message_id")
        if message_id not in chat.messages:
            raise _bad_request("message to react not found")
        reaction = call.params.get("reaction") or []
        if not isinstance(reaction, list) or not all(isinstance(r, dict) for r in reaction):
            raise _bad_request("can't parse reaction types JSON object")
        emoji = [r.get("emoji") for r in reaction if r.get("type") == "emoji"]
        if len(emoji) != len(reaction) or not all(e in REACTION_EMOJI for e in emoji):
            raise _bad_request("REACTION_INVALID")
        self._reactions[(int(chat.info["id"]), message_id)] = [str(e) for e in emoji]
        return True

    def reactions(self, chat_id: int, message_id: int) -> list[str]:
        """The bot's reaction on a message (setMessageReaction), empty when none."""
        return list(self._reactions.get((chat_id, message_id), []))

    async def _get_file(self, call: ApiCall) -> JsonObject:
        stored = self._files.get(str(call.params.get("file_id", "")))
        if stored is None:
            raise _bad_request("invalid file_id")
        if len(stored.data) > self.download_limit_bytes:
            raise _bad_request("file is too big")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
            "file_path": stored.file_path,
        }

    # Bot API methods: chats

    async def _get_chat(self, call: ApiCall) -> JsonObject:
        chat = self._chat(call)
        self._check_access(chat)
        full: JsonObject = {
            **copy.deepcopy(chat.info),
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }
        return full

    async def _get_chat_member(self, call: ApiCall) -> JsonObject:
        """The bot's own membership as add_chat set it; users as set_member set them, else the
        chat's user (or one who wrote there) is a member and anyone else has left. Fields as
        telegram-bot-api's JsonChatMember writes them."""
        chat = self._chat(call)
        user_id = call.params.get("user_id")
        if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id <= 0:
            raise _td_error("Invalid user_id specified")
        self._check_access(chat)
        if user_id == self.bot_user["id"]:
            return self._member(chat, dict(self.bot_user), chat.bot_status)
        status = chat.members.get(user_id)
        if status is None:
            own = chat.info["type"] == "private" or any(
                m.get("from", {}).get("id") == user_id for m in chat.messages.values()
            )
            status = "member" if own else "left"
        return self._member(chat, self._user(user_id, is_bot=False), status)

    async def _get_chat_administrators(self, call: ApiCall) -> list[JsonObject]:
        """The creator and administrators set_member made, and the bot when it is one."""
        chat = self._chat(call)
        if chat.info["type"] == "private":
            raise _bad_request("there are no administrators in the private chat")
        self._check_access(chat)
        admins = [
            self._member(chat, self._user(user_id, is_bot=False), status)
            for user_id, status in chat.members.items()
            if status in ("creator", "administrator")
        ]
        if chat.bot_status == "administrator":
            admins.append(self._member(chat, dict(self.bot_user), chat.bot_status))
        return admins

    def _member(self, chat: _Chat, user: JsonObject, status: str) -> JsonObject:
        """One ChatMember as telegram-bot-api's JsonChatMember writes it. Administrators other
        than the bot hold every right but promoting; the bot holds what a storage chat needs."""
        kind = chat.info["type"]
        member: JsonObject = {"user": user, "status": status}
        if status == "creator":
            member["is_anonymous"] = False
        elif status == "kicked":
            member["until_date"] = 0
        elif status == "restricted":
            member |= {"until_date": 0, **dict.fromkeys(_PERMISSIONS, False), "is_member": True}
        elif status == "administrator":
            is_bot = user["id"] == self.bot_user["id"]
            can_delete = chat.bot_can_delete_messages if is_bot else True
            member |= {
                "can_be_edited": False,
                "can_manage_chat": True,
                "can_change_info": not is_bot,
            }
            if kind == "channel":
                member |= {"can_post_messages": True, "can_edit_messages": True}
            member |= {
                "can_delete_messages": can_delete,
                "can_invite_users": not is_bot,
                "can_restrict_members": not is_bot,
            }
            if kind in ("group", "supergroup"):
                member["can_pin_messages"] = not is_bot
            if kind == "supergroup":
                member["can_manage_topics"] = False
            member |= {
                "can_promote_members": False,
                "can_manage_video_chats": not is_bot,
                "can_post_stories": False,
                "can_edit_stories": False,
                "can_delete_stories": False,
            }
            if kind == "channel":
                member["can_manage_direct_messages"] = False
            member |= {"is_anonymous": False, "can_manage_voice_chats": not is_bot}
        return member

    # Bot API methods: inline buttons

    async def _answer_callback_query(self, call: ApiCall) -> bool:
        """telegram-bot-api passes the call to Telegram as it is (cache_time clamped); an
        unknown, late or already answered query is Telegram's QUERY_ID_INVALID, reworded."""
        query = self._callback_queries.get(str(call.params.get("callback_query_id", "")))
        if (
            query is None
            or query.answer is not None
            or time.monotonic() - query.at > self.callback_window_s
        ):
            raise _bad_request(_QUERY_TOO_OLD)
        query.answer = call
        return True

    async def _edit_message_reply_markup(self, call: ApiCall) -> JsonObject | bool:
        """editMessageReplyMarkup of a chat message (returns it) or an inline message (true);
        without reply_markup the keyboard goes."""
        markup = self._edit_markup(call)
        message, inline = self._edit_target(call)
        if markup == message.get("reply_markup"):
            raise _bad_request(_NOT_MODIFIED)
        if markup is None:
            del message["reply_markup"]
        else:
            message["reply_markup"] = markup
        return True if inline else copy.deepcopy(message)

    # Bot API methods: inline mode

    async def _answer_inline_query(self, call: ApiCall) -> bool:
        """Checked in telegram-bot-api's order: its JSON reading (process_answer_inline_query_
        query), then TDLib's (InlineQueriesManager::answer_inline_query), then Telegram's."""
        params = call.params
        button = params.get("button")
        try:
            if button is not None and button != "":
                self._read_results_button(button)
        except _Unparsable as error:
            raise _td_error(f"Can't parse inline query results button: {error}") from None
        results = self._read_inline_results(params.get("results"))
        if isinstance(button, dict) and "start_parameter" in button:
            start = str(button["start_parameter"])
            if not start:
                raise _td_error("Can't use empty start_parameter")
            if len(start) > 64:
                raise _td_error("Too long start_parameter specified")
            if not _START_PARAMETER_RE.fullmatch(start):
                raise _td_error("Unallowed characters in start_parameter are used")
        for result in results:
            self._check_inline_result(result)
        query = self._inline_queries.get(str(params.get("inline_query_id", "")))
        if (
            query is None
            or query.answer is not None
            or time.monotonic() - query.at > self.inline_window_s
        ):
            raise _bad_request(_QUERY_TOO_OLD)
        seen: set[str] = set()
        for result in results:
            result_id = result["id"]
            if not result_id:
                raise _bad_request("RESULT_ID_EMPTY")
            if len(result_id.encode()) > _MAX_RESULT_ID_BYTES:
                raise _bad_request("RESULT_ID_INVALID")
            if result_id in seen:
                raise _bad_request("RESULT_ID_DUPLICATE")
            seen.add(result_id)
        query.answer = call
        query.results = {result["id"]: result for result in results}
        return True

    @staticmethod
    def _read_results_button(button: Any) -> None:
        if not isinstance(button, dict):
            raise _Unparsable("InlineQueryResultsButton must be an Object")
        _required_string(button, "text")
        if "start_parameter" in button:
            _required_string(button, "start_parameter")
            return
        if "web_app" in button:
            web_app = button["web_app"]
            if not isinstance(web_app, dict):
                raise _Unparsable('Field "web_app" must be of type Object')
            _required_string(web_app, "url")
            return
        raise _Unparsable("InlineQueryResultsButton must have exactly one optional field")

    def _read_inline_results(self, value: Any) -> list[JsonObject]:
        """The results as telegram-bot-api reads them: ids and types as strings, required
        fields present. Each comes back as given, with "type" lowered and "id" a string."""
        if value is None or value == "":
            return []
        if isinstance(value, str):
            raise _td_error(f"Can't parse JSON encoded inline query results: {value[:40]}")
        if not isinstance(value, list):
            raise _td_error("Expected an Array of inline query results")
        if len(value) > _MAX_INLINE_RESULTS:
            raise _td_error("Too many inline query results specified")
        results: list[JsonObject] = []
        for raw in value:
            try:
                results.append(self._read_inline_result(raw))
            except _Unparsable as error:
                raise _td_error(f"Can't parse inline query result: {error}") from None
        return results

    def _read_inline_result(self, raw: Any) -> JsonObject:
        if not isinstance(raw, dict):
            raise _Unparsable("Inline query result must be an object")
        result = copy.deepcopy(raw)
        kind = result["type"] = _required_string(result, "type").lower()
        result["id"] = _required_string(result, "id")
        content = result.get("input_message_content")
        if content is not None:
            if not isinstance(content, dict):
                raise _Unparsable('Field "input_message_content" must be of type Object')
            if not _optional_string(content, "message_text") and kind == "article":
                known = ("latitude", "phone_number", "payload")
                if not any(key in content for key in known):
                    raise _Unparsable("Input message content is not specified")
        elif kind == "article":
            _required_string(result, "message_text")  # the legacy place of an article's text
        markup = result.get("reply_markup")
        if markup is not None:
            if not isinstance(markup, dict):
                raise _Unparsable('Field "reply_markup" must be of type Object')
            result["reply_markup"] = self._read_markup(markup)
        if kind == "article":
            _required_string(result, "title")
        elif kind in _MEDIA_RESULTS:
            url_field, file_id_field, _ = _MEDIA_RESULTS[kind]
            url = _optional_string(result, url_field)
            if kind in ("video", "document", "voice") or (kind == "audio" and url):
                _required_string(result, "title")
            if url and kind in ("video", "document"):
                _required_string(result, "mime_type")
            if not url:
                _required_string(result, file_id_field)
        elif kind in _OTHER_RESULTS:
            for name in _OTHER_RESULTS[kind]:
                if name not in result:
                    raise _Unparsable(f'Can\'t find field "{name}"')
        else:
            raise _Unparsable(f'type "{kind}" is unsupported for the inline query result')
        return result

    def _check_inline_result(self, result: JsonObject) -> None:
        """TDLib's and Telegram's checks of one result (get_input_bot_inline_result)."""
        kind = result["type"]
        markup = result.get("reply_markup")
        if markup is not None:
            self._inline_only(markup)
        if kind == "article" and not result["title"]:
            raise _bad_request("ARTICLE_TITLE_EMPTY")
        if kind not in _MEDIA_RESULTS:
            return
        url_field, file_id_field, file_kind = _MEDIA_RESULTS[kind]
        url = _optional_string(result, url_field)
        if url:
            mime_type = str(result.get("mime_type", ""))
            if kind == "video" and not mime_type.startswith(("video/mp4", "text/html")):
                raise _td_error("Unallowed video MIME type")
            if kind in ("video", "photo") and not result.get("thumbnail_url"):
                # Required by the Bot API docs; Telegram's error for photos (video: assumed).
                raise _bad_request(f"{kind.upper()}_THUMB_URL_EMPTY")
            return
        self._stored_of_kind(str(result[file_id_field]), file_kind)

    def _stored_of_kind(self, file_id: str, kind: str) -> _StoredFile:
        """A file the bot sent before, usable as ``kind`` (TDLib's FileManager wording)."""
        stored = self._files.get(file_id)
        if stored is None:
            raise _td_error(
                "Wrong remote file identifier specified: can't unserialize it. Wrong last symbol"
            )
        if stored.kind != kind and kind != "document":
            raise _td_error(
                f"Can't use file of type {_TD_FILE_TYPES[stored.kind]} as {_TD_FILE_TYPES[kind]}"
            )
        return stored

    def _result_content(self, result: JsonObject) -> JsonObject:
        """What a chosen result posts: its input_message_content, else its file and caption."""
        content = result.get("input_message_content")
        if content is None and result["type"] == "article":
            content = result  # the legacy place of an article's text
        if content is not None and content.get("message_text"):
            text, entities = self._formatted(None, "message_text", "entities", content)
            posted: JsonObject = {"text": text}
            if entities:
                posted["entities"] = entities
            return posted
        if content is not None or result["type"] not in _MEDIA_RESULTS:
            raise NotImplementedError(f"the stand-in does not post {result['type']} results")
        url_field, file_id_field, kind = _MEDIA_RESULTS[result["type"]]
        url = _optional_string(result, url_field)
        if url:
            obj = self._fetched(kind, url, str(result.get("mime_type", "")), result)
        else:
            obj = copy.deepcopy(self._stored_of_kind(str(result[file_id_field]), kind).obj)
        posted = self._caption(None, result)
        posted[kind] = [obj] if kind == "photo" else obj
        return posted

    def _fetched(self, kind: str, url: str, mime_type: str, meta_source: JsonObject) -> JsonObject:
        """A file Telegram would download from ``url``. The stand-in never goes online: the
        file is empty, its object made from what the bot said about it."""
        name = URL(url).name or "file"
        mime_type = mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        meta: JsonObject = {}
        if kind == "photo":
            meta = {
                "width": int(meta_source.get("photo_width") or meta_source.get("width") or 0),
                "height": int(meta_source.get("photo_height") or meta_source.get("height") or 0),
            }
        else:
            if kind == "video":
                meta = {
                    "width": int(meta_source.get("video_width") or meta_source.get("width") or 0),
                    "height": int(
                        meta_source.get("video_height") or meta_source.get("height") or 0
                    ),
                    "duration": int(
                        meta_source.get("video_duration") or meta_source.get("duration") or 0
                    ),
                }
            meta |= {"file_name": name, "mime_type": mime_type}
        upload = UploadedFile(filename=name, content_type=mime_type, data=b"", size=0)
        return self._store(kind, upload, meta)

    @staticmethod
    def _read_markup(markup: JsonObject) -> JsonObject | None:
        """A reply_markup as telegram-bot-api reads it (get_reply_markup): None when it holds
        no keyboard; inline buttons kept as it writes them back (text and their one action)."""
        inline_keyboard = markup.get("inline_keyboard")
        if inline_keyboard is not None:
            if not isinstance(inline_keyboard, list) or not all(
                isinstance(row, list) for row in inline_keyboard
            ):
                raise _Unparsable(
                    'Field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays'
                )
            rows: list[list[JsonObject]] = []
            for row in inline_keyboard:
                try:
                    rows.append([_read_inline_button(button) for button in row])
                except _Unparsable as error:
                    raise _Unparsable(f"Can't parse inline keyboard button: {error}") from None
            if any(rows):
                return {"inline_keyboard": rows}
        if any(markup.get(key) for key in ("keyboard", "remove_keyboard", "force_reply")):
            return copy.deepcopy(markup)
        return None

    @staticmethod
    def _check_inline_buttons(markup: JsonObject) -> None:
        """TDLib's check of each button's text (get_inline_keyboard_button), then Telegram's
        of callback data (1-64 bytes, else BUTTON_DATA_INVALID)."""
        buttons = [button for row in markup.get("inline_keyboard", []) for button in row]
        for button in buttons:
            if not button["text"]:
                raise _td_error("Inline keyboard button text must be non-empty")
        for button in buttons:
            if len(button.get("callback_data", "").encode()) > _MAX_CALLBACK_DATA_BYTES:
                raise _bad_request("BUTTON_DATA_INVALID")

    @staticmethod
    def _inline_only(markup: JsonObject) -> None:
        """TDLib's get_inline_reply_markup: an inline message takes an inline keyboard only."""
        if not markup.get("inline_keyboard"):
            raise _td_error("Inline keyboard expected")
        FakeBotApi._check_inline_buttons(markup)

    def _edit_markup(self, call: ApiCall) -> JsonObject | None:
        """The reply_markup of an edit: an inline keyboard, or None to remove the keyboard."""
        read = self._call_markup(call)
        if read is not None:
            self._inline_only(read)
        return read

    def _call_markup(self, call: ApiCall) -> JsonObject | None:
        """A call's reply_markup as telegram-bot-api reads it; None when there is none."""
        markup = call.params.get("reply_markup")
        if markup is None or markup == "":
            return None
        if isinstance(markup, str):
            raise _td_error("Can't parse reply keyboard markup JSON object")
        if not isinstance(markup, dict):
            raise _td_error("Object expected as reply markup")
        try:
            return self._read_markup(markup)
        except _Unparsable as error:
            raise _td_error(str(error)) from None

    def _sent_markup(self, call: ApiCall) -> JsonObject | None:
        """The inline keyboard a send* call attaches; reply keyboards are not part of the
        message (they replace the user's keyboard), so None for them."""
        markup = self._call_markup(call)
        if markup is None or "inline_keyboard" not in markup:
            return None
        self._check_inline_buttons(markup)
        return markup

    def _edit_target(self, call: ApiCall) -> tuple[JsonObject, bool]:
        """The message an edit names, and whether it is an inline message.

        Like telegram-bot-api: without chat_id and message_id, inline_message_id names it.
        """
        params = call.params
        if params.get("chat_id") in (None, "") and not params.get("message_id"):
            inline_message_id = str(params.get("inline_message_id") or "")
            if not inline_message_id:
                raise _td_error("Message identifier is not specified")
            where = self._inline_messages.get(inline_message_id)
            if where is None:
                if _is_inline_message_id(inline_message_id):
                    raise _bad_request("MESSAGE_ID_INVALID")
                raise _td_error("Invalid inline message identifier specified")
            chat_id, message_id = where
            message = self._chats[chat_id].messages.get(message_id)
            if message is None:
                raise _bad_request("MESSAGE_ID_INVALID")
            return message, True
        chat = self._chat(call)
        message = chat.messages.get(self._int_param(call, "message_id"))
        if message is None:
            raise _bad_request("message to edit not found")
        if not self._sent_by_bot(message):
            raise _bad_request("message can't be edited")
        return message, False

    async def _edit_message_media(self, call: ApiCall) -> JsonObject | bool:
        """editMessageMedia: an inline message takes a file id or a URL, never a new upload
        (TDLib's InlineMessageManager::edit_inline_message_media finds no remote file)."""
        markup = self._edit_markup(call)
        media = call.params.get("media")
        if not isinstance(media, dict):
            raise _td_error("Can't parse input media JSON object")
        try:
            kind = _required_string(media, "type")
            value = _optional_string(media, "media")
        except _Unparsable as error:
            raise _td_error(f"Can't parse InputMedia: {error}") from None
        if kind not in _INPUT_MEDIA_TYPES:
            raise _td_error(f'Can\'t parse InputMedia: type "{kind}" is unsupported')
        attached = value.removeprefix("attach://") if value.startswith("attach://") else None
        if not value or (attached is not None and attached not in call.files):
            raise _td_error("Can't parse InputMedia: media not found")
        message, inline = self._edit_target(call)
        content = self._caption(call, media)
        if value.startswith(("http://", "https://")):
            obj = self._fetched(kind, value, "", media)
        elif attached is not None:
            if inline:
                raise _td_error("Invalid message content specified")
            obj = self._media_object(call, kind, value, media)
        else:
            if inline or value in self._files:
                self._stored_of_kind(value, kind)
            obj = self._media_object(call, kind, value, media)
        content[kind] = [obj] if kind == "photo" else obj
        if markup is not None:
            content["reply_markup"] = markup
        old = {key: message[key] for key in _MESSAGE_CONTENT_KEYS if key in message}
        if _same_content(old, content):
            raise _bad_request(_NOT_MODIFIED)
        self._replace_content(message, content)
        return True if inline else copy.deepcopy(message)

    @staticmethod
    def _replace_content(message: JsonObject, content: JsonObject) -> None:
        for key in _MESSAGE_CONTENT_KEYS:
            message.pop(key, None)
        message.update(content)
        message["edit_date"] = int(time.time())

    async def _edit_message_text(self, call: ApiCall) -> JsonObject | bool:
        """editMessageText of a chat message (returns it) or an inline message (returns true)."""
        text, entities = self._formatted(call, "text", "entities")
        if not text.strip():
            raise _bad_request("message text is empty")
        if utf16_len(text) > 4096:
            raise _bad_request("message is too long")
        markup = self._edit_markup(call)
        message, inline = self._edit_target(call)
        if "text" not in message:
            raise _bad_request("there is no text in the message to edit")
        content: JsonObject = {"text": text}
        if entities:
            content["entities"] = entities
        if markup is not None:
            content["reply_markup"] = markup
        old = {key: message[key] for key in _MESSAGE_CONTENT_KEYS if key in message}
        old.pop("link_preview_options", None)
        if _same_content(old, content):
            raise _bad_request(_NOT_MODIFIED)
        self._replace_content(message, content)
        return True if inline else copy.deepcopy(message)

    # Webhook

    def _allow_updates(self, params: JsonObject) -> None:
        """Take allowed_updates if given (getUpdates and setWebhook share them)."""
        allowed = params.get("allowed_updates")
        if isinstance(allowed, list) and all(isinstance(kind, str) for kind in allowed):
            kinds = frozenset(kind.lower() for kind in allowed)
            self._allowed_updates = kinds & _UPDATE_KINDS or _DEFAULT_UPDATE_KINDS

    def _drop_pending_updates(self) -> None:
        if self._updates:
            self._updates.clear()
            self._updates_did_change()

    def _updates_did_change(self) -> None:
        self._updates_changed.set()
        self._updates_changed = asyncio.Event()

    @staticmethod
    def _certificate(call: ApiCall) -> bytes | None:
        """The public key certificate a setWebhook call uploaded, if any."""
        upload = call.files.get("certificate")
        reference = call.params.get("certificate")
        if upload is None and isinstance(reference, str) and reference.startswith("attach://"):
            upload = call.files.get(reference.removeprefix("attach://"))
        return None if upload is None else upload.data

    @staticmethod
    def _webhook_target(url: str, ip_address: str) -> tuple[URL, str | None, str | None]:
        """Where a webhook's POSTs go, and (when that is ``ip_address``) the Host header and
        the name TLS checks.

        Telegram posts only over HTTPS, on ports 443, 80, 88 or 8443, to a public IPv4 address
        (the URL's host, or ``ip_address``). Tests listen on this machine, on plain HTTP at a free
        port, so the stand-in relaxes that for loopback addresses (127.0.0.1, ::1, localhost):
        any port, HTTP or HTTPS. Every other address is refused as if it could not be resolved,
        so nothing ever leaves the machine.
        """
        try:
            target = URL(url if "://" in url else "https://" + url)
        except ValueError:
            raise _bad_request("invalid webhook URL specified") from None
        if target.scheme not in ("http", "https") or not target.host:
            raise _bad_request("invalid webhook URL specified")
        address = ip_address or target.host
        if address in _LOOPBACK_HOSTS:
            if not ip_address:
                return target, None, None
            return target.with_host(ip_address), target.host_port_subcomponent, target.host
        if target.scheme != "https":
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if target.port not in _WEBHOOK_PORTS:
            raise _bad_request(
                "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
            )
        raise _bad_request(
            f"bad webhook: Failed to resolve host: {address} (the stand-in posts only to "
            "127.0.0.1, ::1 or localhost)"
        )

    def _webhook_ssl(self, target: URL, certificate: bytes | None) -> ssl.SSLContext | None:
        """How an HTTPS webhook is checked: against an uploaded certificate, else the CAs."""
        if target.scheme != "https":
            return None
        if certificate is None:
            return self.webhook_ssl_context or ssl.create_default_context()
        try:
            return ssl.create_default_context(cadata=certificate.decode("ascii"))
        except (ValueError, ssl.SSLError) as error:
            raise _bad_request(f"bad webhook: Can't create an SSL context: {error}") from None

    async def _close_webhook(self) -> bool:
        """Unset the webhook and end its deliveries; whether one was set.

        Updates it had not confirmed stay pending. The ending runs to its end even if the
        request that asked for it is cancelled.
        """
        hook, self._webhook = self._webhook, None
        if hook is None:
            return False
        closing = asyncio.ensure_future(self._end_deliveries(hook))
        self._webhook_closings.add(closing)
        closing.add_done_callback(self._webhook_closings.discard)
        await asyncio.shield(closing)
        return True

    async def _end_deliveries(self, hook: _Webhook) -> None:
        if hook.timer is not None:
            hook.timer.cancel()
            hook.timer = None
        tasks = list(hook.tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        session, hook.session = hook.session, None
        if session is not None:
            await session.close()

    def _pump_webhook(self) -> None:
        """Start every POST that may start now; wake up again when a retry is due."""
        hook = self._webhook
        if hook is None or self._runner is None:
            return
        loop = asyncio.get_running_loop()
        if hook.timer is not None:
            hook.timer.cancel()
            hook.timer = None
        if hook.session is None:
            hook.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=hook.max_connections,
                    ssl=True if hook.ssl_context is None else hook.ssl_context,
                ),
                skip_auto_headers=(hdrs.USER_AGENT,),
            )
        now = loop.time()
        queues_seen = set(hook.busy)
        wake_at: float | None = None
        for update in self._updates:
            if len(hook.tasks) >= hook.max_connections:
                break
            queue = _queue_of(update)
            if queue in queues_seen:
                continue
            queues_seen.add(queue)
            not_before = hook.not_before.get(update["update_id"], 0.0)
            if not_before > now:
                wake_at = not_before if wake_at is None else min(wake_at, not_before)
                continue
            hook.busy.add(queue)
            task = loop.create_task(self._deliver(hook, hook.session, update))
            hook.tasks.add(task)
            task.add_done_callback(functools.partial(self._delivery_ended, hook, queue))
        if wake_at is not None:
            hook.timer = loop.call_at(wake_at, self._pump_webhook)

    def _delivery_ended(
        self, hook: _Webhook, queue: tuple[str, int], task: asyncio.Task[None]
    ) -> None:
        hook.tasks.discard(task)
        hook.busy.discard(queue)
        if hook is self._webhook:
            self._pump_webhook()

    async def _deliver(
        self, hook: _Webhook, session: aiohttp.ClientSession, update: JsonObject
    ) -> None:
        """POST one update once, and settle what follows from the answer."""
        update_id = int(update["update_id"])
        attempt = self._posts_per_update[update_id] = self._posts_per_update.get(update_id, 0) + 1
        started = time.monotonic()
        status: int | None = None
        error: str | None = None
        retry_after = 0
        answer: JsonObject | None = None
        headers: dict[str, str] = {
            hdrs.CONTENT_TYPE: "application/json",
            hdrs.ACCEPT_ENCODING: "gzip, deflate",
        }
        if hook.secret_token:
            headers[_SECRET_TOKEN_HEADER] = hook.secret_token
        if hook.host_header is not None:
            headers[hdrs.HOST] = hook.host_header
        try:
            async with session.post(
                hook.target,
                data=json.dumps(update, ensure_ascii=False).encode(),
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.webhook_timeout_s),
                allow_redirects=False,
                server_hostname=hook.server_hostname,
            ) as response:
                status = response.status
                body = await response.read()
                if 200 <= status <= 299:
                    answer = self._webhook_answer(response, body)
                else:
                    error = f"Wrong response from the webhook: {status} {response.reason}"
                    retry_after = _retry_after(response)
        except asyncio.CancelledError:
            self._record_delivery(
                hook, update_id, attempt, started, status, "Webhook closed", "cancelled"
            )
            raise
        except TimeoutError:
            error = "Read timeout expired"
        except aiohttp.ClientError as client_error:
            error = _delivery_error(client_error)
        self._settle(hook, update, attempt, started, status, error, retry_after)
        if answer is not None:
            await self._carry_out(answer)

    def _settle(
        self,
        hook: _Webhook,
        update: JsonObject,
        attempt: int,
        started: float,
        status: int | None,
        error: str | None,
        retry_after: int,
    ) -> None:
        update_id = int(update["update_id"])
        outcome: Literal["confirmed", "retry", "dropped"]
        if error is None:
            outcome = "confirmed"
        else:
            hook.last_error_date = int(time.time())
            hook.last_error_message = error
            failures = hook.failures[update_id] = hook.failures.get(update_id, 0) + 1
            if self.webhook_max_attempts is not None and failures >= self.webhook_max_attempts:
                outcome = "dropped"
            else:
                outcome = "retry"
                delay = retry_after or min(
                    self.webhook_retry_delay_s * 2 ** (failures - 1),
                    self.webhook_max_retry_delay_s,
                )
                hook.not_before[update_id] = asyncio.get_running_loop().time() + delay
        if outcome != "retry":
            hook.failures.pop(update_id, None)
            hook.not_before.pop(update_id, None)
            self._updates = [u for u in self._updates if u is not update]
        self._record_delivery(hook, update_id, attempt, started, status, error, outcome)

    def _record_delivery(
        self,
        hook: _Webhook,
        update_id: int,
        attempt: int,
        started: float,
        status: int | None,
        error: str | None,
        outcome: Literal["confirmed", "retry", "dropped", "cancelled"],
    ) -> None:
        self._deliveries.append(
            WebhookDelivery(
                update_id=update_id,
                attempt=attempt,
                url=hook.url,
                status=status,
                error=error,
                outcome=outcome,
                at=started,
                ended_at=time.monotonic(),
            )
        )
        self._updates_did_change()

    @staticmethod
    def _webhook_answer(response: aiohttp.ClientResponse, body: bytes) -> JsonObject | None:
        """The Bot API call a 2xx answer carries (a JSON object with "method"), if any."""
        if response.content_type != "application/json":
            return None
        try:
            answer = json.loads(body)
        except ValueError:
            return None
        if not isinstance(answer, dict) or not isinstance(answer.get("method"), str):
            return None
        method = answer["method"].lower()
        if method in _NOT_IN_WEBHOOK_ANSWERS or method.startswith("get"):
            return None
        return answer

    async def _carry_out(self, answer: JsonObject) -> None:
        """Make a call a webhook answered with; its result (or error) goes to no one."""
        params = {key: value for key, value in answer.items() if key != "method"}
        name, handler = self._methods.get(answer["method"].lower(), (answer["method"], None))
        call = ApiCall(method=name, params=params, files={}, at=time.monotonic())
        self._record_call(call)
        if handler is not None:
            with contextlib.suppress(_ApiError):
                _answered(call, await handler(call))

    # Helpers

    def _canonical(self, method: str) -> str:
        return self._methods.get(method.lower(), (method, None))[0]

    def _describe(self, call: ApiCall) -> str:
        params = {
            key: (value if len(repr(value)) <= 60 else repr(value)[:57] + "...")
            for key, value in call.params.items()
        }
        files = {name: f"{len(f.data)} bytes" for name, f in call.files.items()}
        return f"{call.method} {params}" + (f" files={files}" if files else "")

    def _wake_poll(self, reason: _WakeReason) -> None:
        poll = self._poll
        if poll is not None and not poll.done():
            poll.set_result(reason)

    def _user(self, user_id: int, *, is_bot: bool) -> JsonObject:
        user: JsonObject = {
            "id": user_id,
            "is_bot": is_bot,
            "first_name": f"User {user_id}",
            "username": f"user{user_id}",
        }
        language_code = self._languages.get(user_id, "en")
        if not is_bot and language_code is not None:
            user["language_code"] = language_code
        return user

    def _user_message(
        self, chat: _Chat, user: JsonObject, text: str, entities: list[JsonObject] | None
    ) -> JsonObject:
        message: JsonObject = {
            "message_id": chat.take_message_id(),
            "from": user,
            "chat": dict(chat.info),
            "date": int(time.time()),
            "text": text,
        }
        marked = _find_entities(text) if entities is None else entities
        if marked:
            message["entities"] = marked
        chat.messages[message["message_id"]] = message
        return message

    def _ensure_chat(
        self, chat_id: int, chat_type: str, user: JsonObject, title: str | None
    ) -> _Chat:
        chat = self._chats.get(chat_id)
        if chat is not None:
            if chat.info["type"] != chat_type:
                raise ValueError(f"chat {chat_id} is a {chat.info['type']} chat, not {chat_type}")
            return chat
        if chat_type == "private":
            info: JsonObject = {
                "id": chat_id,
                "type": "private",
                "first_name": user["first_name"],
                "username": user["username"],
            }
        elif chat_type in ("group", "supergroup"):
            info = {"id": chat_id, "type": chat_type, "title": title or f"Test group {chat_id}"}
        elif chat_type == "channel":
            info = {"id": chat_id, "type": "channel", "title": title or f"Test channel {chat_id}"}
        else:
            raise ValueError(f"unsupported chat type {chat_type!r}")
        bot_status = "administrator" if chat_type == "channel" else "member"
        chat = self._chats[chat_id] = _Chat(info=info, bot_status=bot_status)
        return chat

    def _chat(self, call: ApiCall) -> _Chat:
        chat_id = call.params.get("chat_id")
        if chat_id is None or chat_id == "":
            raise _bad_request("chat_id is empty")
        if isinstance(chat_id, str):
            chat = next(
                (c for c in self._chats.values() if "@" + c.info.get("username", "") == chat_id),
                None,
            )
        else:
            chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise _bad_request("chat not found")
        return chat

    def _chat_to_post(self, call: ApiCall) -> _Chat:
        """The chat a send* call names, if the bot may post there."""
        chat = self._chat(call)
        self._check_access(chat)
        if chat.info["type"] == "channel" and chat.bot_status != "administrator":
            # TDLib's DialogManager::can_send_message_to_dialog: only admins post in channels.
            raise _td_error("Need administrator rights in the channel chat")
        return chat

    @staticmethod
    def _check_access(chat: _Chat) -> None:
        """Refuse a chat the bot left or was kicked from (telegram-bot-api's check_chat_access;
        the stand-in's groups and channels are private, so reading needs membership too)."""
        kind = chat.info["type"]
        if kind == "private":
            return
        if chat.bot_status == "kicked":
            raise _ApiError(403, f"Forbidden: bot was kicked from the {kind} chat")
        if chat.bot_status == "left":
            raise _ApiError(403, f"Forbidden: bot is not a member of the {kind} chat")

    def _sent_by_bot(self, message: JsonObject) -> bool:
        """The bot's own message: sent as itself, or as a channel (a post not sent via a bot)."""
        if message.get("from", {}).get("id") == self.bot_user["id"]:
            return True
        return message["chat"]["type"] == "channel" and "via_bot" not in message

    def _int_param(self, call: ApiCall, name: str) -> int:
        value = call.params.get(name)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _bad_request(f"{name} is empty" if value is None else f"invalid {name}")
        return value

    def _commands_key(self, call: ApiCall) -> str:
        scope = call.params.get("scope") or {"type": "default"}
        return json.dumps([scope, call.params.get("language_code", "")], sort_keys=True)

    def _formatted(
        self,
        call: ApiCall | None,
        text_key: str,
        entities_key: str,
        source: JsonObject | None = None,
    ) -> tuple[str, list[JsonObject]]:
        """Text after parse_mode (HTML is parsed; Markdown modes are passed through unparsed).

        Read from ``source`` if given, else from the call's parameters."""
        params = source if source is not None else call.params if call is not None else {}
        text = params.get(text_key)
        if text is None:
            return "", []
        text = str(text)
        entities = params.get(entities_key)
        if isinstance(entities, list):
            return text, entities
        if str(params.get("parse_mode", "")).lower() == "html":
            return _parse_html(text)
        return text, []

    def _caption(self, call: ApiCall | None, source: JsonObject | None = None) -> JsonObject:
        caption, entities = self._formatted(call, "caption", "caption_entities", source)
        if utf16_len(caption) > 1024:
            raise _bad_request("message caption is too long")
        content: JsonObject = {}
        if caption:
            content["caption"] = caption
        if entities:
            content["caption_entities"] = entities
        return content

    def _reply_target(self, chat: _Chat, message_id: int, *, allow_missing: bool) -> JsonObject:
        target = chat.messages.get(message_id)
        if target is None:
            if allow_missing:
                return {}
            raise _bad_request("message to be replied not found")
        quoted = copy.deepcopy(target)
        quoted.pop("reply_to_message", None)
        return quoted

    def _bot_message(self, chat: _Chat, call: ApiCall, content: JsonObject) -> JsonObject:
        markup = self._sent_markup(call)
        message: JsonObject = {"message_id": chat.take_message_id()}
        if chat.info["type"] == "channel":
            message["sender_chat"] = dict(chat.info)  # a bot posts in a channel as the channel
        else:
            message["from"] = dict(self.bot_user)
        message |= {"chat": dict(chat.info), "date": int(time.time())}
        reply = call.params.get("reply_parameters")
        if reply is None and "reply_to_message_id" in call.params:
            reply = {
                "message_id": call.params["reply_to_message_id"],
                "allow_sending_without_reply": call.params.get("allow_sending_without_reply"),
            }
        if reply is not None:
            if not isinstance(reply, dict) or not isinstance(reply.get("message_id"), int):
                raise _bad_request("can't parse reply parameters JSON object")
            target = self._reply_target(
                chat,
                reply["message_id"],
                allow_missing=reply.get("allow_sending_without_reply") is True,
            )
            if target:
                message["reply_to_message"] = target
        if isinstance(call.params.get("message_thread_id"), int):
            message["message_thread_id"] = call.params["message_thread_id"]
        message.update(content)
        if markup is not None:
            message["reply_markup"] = markup
        chat.messages[message["message_id"]] = message
        return copy.deepcopy(message)

    def _resolve(self, call: ApiCall, field_name: str, value: Any) -> UploadedFile | _StoredFile:
        """What a media field refers to: a part of this request or a file sent before."""
        if value is None:
            upload = call.files.get(field_name)
            if upload is None:
                raise _bad_request(f"there is no {field_name} in the request")
            return upload
        if not isinstance(value, str):
            raise _bad_request(f"wrong type of the {field_name} field")
        if value.startswith("attach://"):
            upload = call.files.get(value.removeprefix("attach://"))
            if upload is None:
                raise _bad_request(f"can't find attached file {value!r}")
            return upload
        stored = self._files.get(value)
        if stored is None:
            raise _bad_request("wrong file identifier/HTTP URL specified")
        return stored

    def _media_object(self, call: ApiCall, kind: str, value: Any, params: JsonObject) -> JsonObject:
        """The Telegram object (Video, PhotoSize, Audio, Document) for a media field."""
        upload = self._resolve(call, kind, value)
        if isinstance(upload, _StoredFile):
            return copy.deepcopy(upload.obj)
        if not (upload.size or upload.data):
            raise _bad_request("file must be non-empty")
        mime_type = upload.content_type
        if mime_type == "application/octet-stream":
            mime_type = mimetypes.guess_type(upload.filename)[0] or {
                "video": "video/mp4",
                "audio": "audio/mpeg",
                "photo": "image/jpeg",
            }.get(kind, mime_type)
        meta: JsonObject = {}
        if kind == "photo":
            width, height = _image_size(upload.data) or (0, 0)
            meta = {"width": width, "height": height}
        else:
            if kind == "video":
                meta = {
                    "width": int(params.get("width") or 0),
                    "height": int(params.get("height") or 0),
                    "duration": int(params.get("duration") or 0),
                }
            elif kind == "audio":
                meta = {"duration": int(params.get("duration") or 0)}
                for key in ("performer", "title"):
                    if params.get(key):
                        meta[key] = str(params[key])
            meta["file_name"] = upload.filename
            meta["mime_type"] = mime_type
            thumbnail = self._thumbnail(call, params.get("thumbnail"))
            if thumbnail is not None:
                meta["thumbnail"] = thumbnail
        return self._store(kind, upload, meta)

    def _thumbnail(self, call: ApiCall, value: Any) -> JsonObject | None:
        """A PhotoSize for a valid thumbnail; Telegram ignores thumbnails that break its rules.

        The rules: JPEG, at most 320 px wide and tall, under 200 kB.
        """
        upload = call.files.get("thumbnail")
        if isinstance(value, str) and value.startswith("attach://"):
            upload = call.files.get(value.removeprefix("attach://"))
        if upload is None:
            return None
        size = _jpeg_size(upload.data)
        if size is None or max(size) > 320 or len(upload.data) >= 200_000:
            return None
        width, height = size
        return self._store("thumbnail", upload, {"width": width, "height": height})

    def _store(self, kind: str, upload: UploadedFile, meta: JsonObject) -> JsonObject:
        number = self._next_file_number
        self._next_file_number += 1
        file_id = f"{kind[:2].upper()}AACAgIAAxkBAAI{number:06d}{secrets.token_urlsafe(12)}"
        unique_id = f"AgAD{number:06d}{secrets.token_hex(3)}"
        mime_type = str(meta.get("mime_type", "application/octet-stream"))
        if kind in ("photo", "thumbnail"):
            suffix = ".jpg"
        elif mime_type != "application/octet-stream":
            suffix = mimetypes.guess_extension(mime_type) or ""
        else:
            suffix = "." + upload.filename.rsplit(".", 1)[-1] if "." in upload.filename else ""
        folder = {"audio": "music", "photo": "photos", "thumbnail": "thumbnails"}.get(
            kind, kind + "s"
        )
        obj: JsonObject = {
            "file_id": file_id,
            "file_unique_id": unique_id,
            **meta,
            "file_size": upload.size or len(upload.data),
        }
        stored = _StoredFile(
            file_id=file_id,
            file_unique_id=unique_id,
            data=upload.data,
            file_path=f"{folder}/file_{number}{suffix}",
            obj=obj,
            kind=kind,
        )
        self._files[file_id] = stored
        self._files_by_path[stored.file_path] = stored
        return copy.deepcopy(obj)
