"""A Discord stand-in: a real aiohttp server speaking Discord's REST API and websocket gateway.

The real discord.py talks to it over local sockets (set ``discord.http.Route.BASE`` to ``api_url``
and ``DiscordWebSocket.DEFAULT_GATEWAY`` to ``yarl.URL(gateway_url)``); tests inject what users do
and read what the bot did, like a conversation. Discord's rules that bots trip over are enforced:
the 3 s acknowledge window, one acknowledgement per interaction, 15 min webhook tokens, upload
limits by boost tier or by the interaction's ``attachment_size_limit``, the Message Content intent,
Manage Messages for other people's messages. Sharding works as on Discord: ``GET /gateway/bot``
recommends ``recommended_shards``, and a session that identified with ``shard: [id, count]`` gets
only the events of guilds with ``(guild_id >> 22) % count == id`` (DMs go to shard 0). A user
may install the app to their account: its commands then reach the bot from guilds it is not in
and from group DMs, where it can answer only through the interaction (channel routes: 403,
50001 Missing Access). Message components are checked as Discord checks them
(``discord_components``) and kept on messages; people click buttons and pick in select menus
(``inject_button_click``, ``inject_select``). Members hold permissions per guild
(``set_member_permissions``; the owner has all), which interactions carry and which decide
whether a command's ``default_member_permissions`` let it be offered to them. See DESIGN.md
sections 7, 9 and 13.
"""

from __future__ import annotations

import asyncio
import copy
import enum
import json
import mimetypes
import random
import re
import secrets
import time
import zlib
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from types import MappingProxyType
from typing import Any, Final, Literal

from aiohttp import BodyPartReader, WSMsgType, hdrs, web

from tests.standins.discord_components import (
    BUTTON,
    ComponentError,
    checked,
    find_component,
    picked_values,
)
from tests.standins.lifecycle import StandIn, listen

__all__ = [
    "CONTEXT_BOT_DM",
    "CONTEXT_GUILD",
    "CONTEXT_PRIVATE_CHANNEL",
    "DEFAULT_APPLICATION_ID",
    "DEFAULT_CHANNEL_ID",
    "DEFAULT_GUILD_ID",
    "DEFAULT_TOKEN",
    "DEFAULT_UPLOAD_LIMIT",
    "DEFAULT_USER_ID",
    "GUILD_INSTALL",
    "MIB",
    "PREMIUM_UPLOAD_LIMITS",
    "TRANSIENT_FAULTS",
    "USER_INSTALL",
    "FakeDiscord",
    "FakeGuild",
    "Fault",
    "GatewayEvent",
    "GatewaySession",
    "Intent",
    "RestCall",
    "UploadedFile",
    "shard_id_for",
]

JsonObject = dict[str, Any]
OptionValue = str | int | float | bool

MIB: Final = 1024 * 1024
DEFAULT_UPLOAD_LIMIT: Final = 10 * MIB
# Bots' upload limit by boost tier (DESIGN.md section 7); DMs get the default.
PREMIUM_UPLOAD_LIMITS: Final = MappingProxyType(
    {0: 10 * MIB, 1: 10 * MIB, 2: 50 * MIB, 3: 100 * MIB}
)
_BOOSTS_FOR_TIER: Final = MappingProxyType({0: 0, 1: 2, 2: 7, 3: 14})

DEFAULT_TOKEN: Final = "MTMwMDAwMDAwMDAwMDAwMDAwMQ.GfAkE0.stand-in-token-not-a-real-one"
DEFAULT_APPLICATION_ID: Final = 1_300_000_000_000_000_001
DEFAULT_GUILD_ID: Final = 1_300_000_000_000_000_100
DEFAULT_CHANNEL_ID: Final = 1_300_000_000_000_000_101
DEFAULT_USER_ID: Final = 1_300_000_000_000_000_200

_DISCORD_EPOCH_MS: Final = 1_420_070_400_000
_API_VERSIONS: Final = frozenset({"9", "10"})
_MAX_CONTENT: Final = 2000


class Intent(enum.IntFlag):
    """Gateway intents this stand-in acts on (bit values as Discord defines them)."""

    GUILDS = 1 << 0
    GUILD_MEMBERS = 1 << 1
    GUILD_PRESENCES = 1 << 8
    GUILD_MESSAGES = 1 << 9
    GUILD_MESSAGE_REACTIONS = 1 << 10
    DIRECT_MESSAGES = 1 << 12
    DIRECT_MESSAGE_REACTIONS = 1 << 13
    MESSAGE_CONTENT = 1 << 15


_PRIVILEGED: Final = Intent.GUILD_MEMBERS | Intent.GUILD_PRESENCES | Intent.MESSAGE_CONTENT
_ALL_INTENTS: Final = (1 << 26) - 1


class _Perm(enum.IntFlag):
    CREATE_INSTANT_INVITE = 1 << 0
    ADMINISTRATOR = 1 << 3
    MANAGE_GUILD = 1 << 5
    ADD_REACTIONS = 1 << 6
    VIEW_CHANNEL = 1 << 10
    SEND_MESSAGES = 1 << 11
    MANAGE_MESSAGES = 1 << 13
    EMBED_LINKS = 1 << 14
    ATTACH_FILES = 1 << 15
    READ_MESSAGE_HISTORY = 1 << 16
    USE_EXTERNAL_EMOJIS = 1 << 18
    CONNECT = 1 << 20
    SPEAK = 1 << 21
    CHANGE_NICKNAME = 1 << 26
    USE_APPLICATION_COMMANDS = 1 << 31
    CREATE_PUBLIC_THREADS = 1 << 35
    SEND_MESSAGES_IN_THREADS = 1 << 38


_EVERYONE_PERMISSIONS: Final = int(
    _Perm.CREATE_INSTANT_INVITE
    | _Perm.ADD_REACTIONS
    | _Perm.VIEW_CHANNEL
    | _Perm.SEND_MESSAGES
    | _Perm.EMBED_LINKS
    | _Perm.ATTACH_FILES
    | _Perm.READ_MESSAGE_HISTORY
    | _Perm.USE_EXTERNAL_EMOJIS
    | _Perm.CONNECT
    | _Perm.SPEAK
    | _Perm.CHANGE_NICKNAME
    | _Perm.USE_APPLICATION_COMMANDS
    | _Perm.CREATE_PUBLIC_THREADS
    | _Perm.SEND_MESSAGES_IN_THREADS
)
# What a guild's owner (or an administrator) has: every permission Discord defines.
_ALL_PERMISSIONS: Final = (1 << 53) - 1


# Message flags.
_SUPPRESS_EMBEDS: Final = 1 << 2
_EPHEMERAL: Final = 1 << 6
_LOADING: Final = 1 << 7
_SUPPRESS_NOTIFICATIONS: Final = 1 << 12
_IS_VOICE_MESSAGE: Final = 1 << 13
_IS_COMPONENTS_V2: Final = 1 << 15

# What a bot may set when sending; Discord drops other bits (EPHEMERAL outside interactions too).
_CHANNEL_FLAGS: Final = (
    _SUPPRESS_EMBEDS | _SUPPRESS_NOTIFICATIONS | _IS_VOICE_MESSAGE | _IS_COMPONENTS_V2
)
_INTERACTION_FLAGS: Final = (
    _SUPPRESS_EMBEDS | _EPHEMERAL | _SUPPRESS_NOTIFICATIONS | _IS_COMPONENTS_V2
)
# Application flags Discord sets when a privileged intent is switched on in the portal.
_APP_FLAG_FOR_INTENT: Final = MappingProxyType(
    {
        Intent.GUILD_PRESENCES: 1 << 13,
        Intent.GUILD_MEMBERS: 1 << 15,
        Intent.MESSAGE_CONTENT: 1 << 19,
    }
)
_APPLICATION_COMMAND_BADGE: Final = 1 << 23

# Interaction contexts and the installs behind a command (Discord's numbering).
CONTEXT_GUILD: Final = 0
CONTEXT_BOT_DM: Final = 1
CONTEXT_PRIVATE_CHANNEL: Final = 2
GUILD_INSTALL: Final = 0
USER_INSTALL: Final = 1
# What an app may do through its interactions where only a user installed it (no bot there).
_USER_INSTALL_PERMISSIONS: Final = int(
    _Perm.SEND_MESSAGES | _Perm.EMBED_LINKS | _Perm.ATTACH_FILES | _Perm.USE_EXTERNAL_EMOJIS
)
_GROUP_DM: Final = 3

# Interaction callback types each interaction type accepts (2 command, 3 component).
_CALLBACK_TYPES: Final = MappingProxyType({2: frozenset({4, 5, 9}), 3: frozenset({4, 5, 6, 7, 9})})
_COMMAND_NAME = re.compile(r"[-_'\w]{1,32}")
_USER_MENTION = re.compile(r"<@!?(\d{1,20})>")
_FILE_FIELD = re.compile(r"files\[(\d+)\]")
_CONTENT_FIELDS: Final = ("content", "embeds", "attachments", "components", "poll", "sticker_ids")


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """One file part of a multipart request, as it arrived (``field`` is e.g. ``files[0]``)."""

    filename: str
    content_type: str
    data: bytes
    field: str


@dataclass(frozen=True, slots=True)
class RestCall:
    """One REST request as received and what it was answered.

    ``path`` follows the version prefix (``/channels/1/messages``), percent-decoded. ``json`` is the
    decoded JSON body, or ``payload_json`` (plus any plain form fields) for multipart bodies.
    """

    method: str
    path: str
    query: dict[str, str]
    json: Any
    files: tuple[UploadedFile, ...]
    headers: dict[str, str]
    at: float
    status: int
    response: Any


@dataclass(frozen=True, slots=True)
class GatewayEvent:
    """One DISPATCH frame as the bot received it (content already blanked by intents).

    ``shard`` is the ``(id, count)`` the session identified with, None for an unsharded one.
    """

    name: str
    data: JsonObject
    seq: int
    session_id: str
    shard: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class GatewaySession:
    """A gateway session as the stand-in holds it: ``connected`` is False while it waits to be
    resumed."""

    id: str
    shard: tuple[int, int] | None
    intents: int
    connected: bool


def shard_id_for(guild_id: int | None, shard_count: int) -> int:
    """The shard that receives a guild's events, as Discord routes them; DMs go to shard 0."""
    return 0 if guild_id is None else (guild_id >> 22) % shard_count


@dataclass(slots=True)
class FakeGuild:
    """A guild. Change fields, then ``update_guild`` to tell a connected bot.

    ``bot_member`` is False for a guild the bot was never added to: people there may still use
    the app's commands when they installed it to their account (a user install), but the bot
    gets no events of it and no channel route answers it (403, 50001 Missing Access).
    """

    id: int
    name: str
    channel_id: int
    bot_role_id: int
    premium_tier: int = 0
    bot_can_manage_messages: bool = False
    members: dict[int, str] = field(default_factory=dict)
    bot_member: bool = True
    # The owner has every permission; others what @everyone has plus ``member_permissions``.
    owner_id: int = DEFAULT_USER_ID
    member_permissions: dict[int, int] = field(default_factory=dict)

    @property
    def filesize_limit(self) -> int:
        return PREMIUM_UPLOAD_LIMITS[self.premium_tier]

    @property
    def bot_permissions(self) -> int:
        extra = int(_Perm.MANAGE_MESSAGES) if self.bot_can_manage_messages else 0
        return _EVERYONE_PERMISSIONS | extra

    def permissions_of(self, user_id: int) -> int:
        """A member's permissions (no channel overwrites exist here), as Discord resolves them."""
        if user_id == self.owner_id:
            return _ALL_PERMISSIONS
        granted = _EVERYONE_PERMISSIONS | self.member_permissions.get(user_id, 0)
        return _ALL_PERMISSIONS if granted & _Perm.ADMINISTRATOR else granted


@dataclass(slots=True, eq=False)
class _Channel:
    id: int
    guild_id: int | None
    name: str
    # A DM with the bot: the other user; a group DM: all its users (the bot is never one).
    recipient_id: int | None = None
    group_ids: tuple[int, ...] = ()
    messages: dict[int, JsonObject] = field(default_factory=dict)

    @property
    def is_group(self) -> bool:
        return bool(self.group_ids)


@dataclass(slots=True, eq=False)
class _Interaction:
    id: int
    token: str
    kind: int
    command_type: int
    user_id: int
    channel_id: int
    guild_id: int | None
    attachment_size_limit: int
    payload: JsonObject
    created_at: float
    target_message_id: int | None = None
    dispatched_at: float | None = None
    response_type: int | None = None
    original_id: int | None = None
    followup_ids: list[int] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Close:
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class _Mark:
    """Runs once every frame queued before it has been written."""

    callback: Callable[[], None]


_Outgoing = JsonObject | _Close | _Mark


@dataclass(slots=True, eq=False)
class _Connection:
    ws: web.WebSocketResponse
    deflate: zlib._Compress | None
    outbox: asyncio.Queue[_Outgoing] = field(default_factory=asyncio.Queue)
    session: _Session | None = None
    closed_with: int | None = None
    done: asyncio.Event = field(default_factory=asyncio.Event)

    def send(self, frame: _Outgoing) -> None:
        self.outbox.put_nowait(frame)

    def close(self, code: int, reason: str) -> None:
        self.outbox.put_nowait(_Close(code, reason))


@dataclass(slots=True, eq=False)
class _Session:
    id: str
    intents: int
    shard: tuple[int, int] | None
    connection: _Connection | None
    seq: int = 0
    events: list[GatewayEvent] = field(default_factory=list)

    def receives(self, guild_id: int | None) -> bool:
        """Whether events of this guild (None: a DM) are sent to this session."""
        if self.shard is None:
            return True
        shard_id, shard_count = self.shard
        return shard_id_for(guild_id, shard_count) == shard_id


@dataclass(frozen=True, slots=True)
class _Req:
    params: dict[str, str]
    query: dict[str, str]
    body: Any
    files: tuple[UploadedFile, ...]
    at: float


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Failure:
    method: str
    pattern: re.Pattern[str]
    reply: _Reply


_Handler = Callable[[_Req], _Reply]
RateLimitScope = Literal["user", "shared", "global"]


class Fault(enum.Enum):
    """What `fail_randomly` may answer a request with instead of carrying it out."""

    ROUTE_RATE_LIMITED = "429 on the route's bucket (X-RateLimit-Scope: user)"
    SHARED_RATE_LIMITED = "429 on a shared resource (X-RateLimit-Scope: shared)"
    GLOBAL_RATE_LIMITED = "429 on every route (X-RateLimit-Global: true, global: true)"
    SERVER_ERROR = "500 Internal Server Error"
    TOO_LARGE = "413, code 40005 Request entity too large"


# discord.py waits out every 429 and retries a 500 after a second, so the bot still answers once
# under these. TOO_LARGE turns a video into a reason.
TRANSIENT_FAULTS = frozenset(
    {
        Fault.ROUTE_RATE_LIMITED,
        Fault.SHARED_RATE_LIMITED,
        Fault.GLOBAL_RATE_LIMITED,
        Fault.SERVER_ERROR,
    }
)
# The requests a bot makes to answer someone: random faults leave logging in and syncing alone.
_ANSWER_PATHS = re.compile(r"/(?:channels|webhooks|interactions)/")


@dataclass(frozen=True, slots=True)
class _Chaos:
    rng: random.Random
    rate: float
    kinds: tuple[Fault, ...]
    retry_after: float


class _ApiError(Exception):
    """An error answer as Discord words it: {"message": ..., "code": ...[, "errors": ...]}."""

    def __init__(
        self, status: int, code: int, message: str, errors: JsonObject | None = None
    ) -> None:
        super().__init__(f"{status} {code} {message}")
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors

    def reply(self) -> _Reply:
        body: JsonObject = {"message": self.message, "code": self.code}
        if self.errors is not None:
            body["errors"] = self.errors
        return _Reply(self.status, body)


def _form_error(where: Sequence[str | int], code: str, message: str) -> _ApiError:
    """A 50035 Invalid Form Body whose ``errors`` point at one field, as Discord nests them."""
    errors: JsonObject = {"_errors": [{"code": code, "message": message}]}
    for key in reversed(where):
        errors = {str(key): errors}
    return _ApiError(400, 50035, "Invalid Form Body", errors)


def _unknown(what: str, code: int) -> _ApiError:
    return _ApiError(404, code, f"Unknown {what}")


def _rate_limited(retry_after: float, scope: RateLimitScope, route: str) -> _Reply:
    """A 429 with the headers and body Discord sends for that scope."""
    body: JsonObject = {
        "message": "You are being rate limited.",
        "retry_after": retry_after,
        "global": scope == "global",
    }
    headers = {"Via": "1.1 google", "Retry-After": str(max(1, round(retry_after)))}
    if scope == "global":
        body["code"] = 0
        headers.update({"X-RateLimit-Global": "true", "X-RateLimit-Scope": "global"})
    else:
        headers.update(
            {
                "X-RateLimit-Limit": "5",
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": f"{time.time() + retry_after:.3f}",
                "X-RateLimit-Reset-After": str(retry_after),
                "X-RateLimit-Bucket": f"{zlib.crc32(route.encode()):08x}",
                "X-RateLimit-Scope": scope,
            }
        )
    return _Reply(429, body, headers)


def _status_message(status: int) -> str:
    """How Discord words an error it gives no code of its own: "500: Internal Server Error"."""
    return f"{status}: {HTTPStatus(status).phrase}"


def _missing_permissions() -> _ApiError:
    return _ApiError(403, 50013, "Missing Permissions")


def _iso(snowflake: int) -> str:
    ms = (snowflake >> 22) + _DISCORD_EPOCH_MS
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def _now_iso() -> str:
    return datetime.now(UTC).isoformat()


def _truthy(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("1", "true")


def _object(body: Any) -> JsonObject:
    if not isinstance(body, dict):
        raise _form_error([], "DICT_TYPE_CONVERT", "Only dictionaries may be used in a DictType")
    return body


def _int(value: Any, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise _form_error(
            [where], "NUMBER_TYPE_COERCE", f"Value {value!r} is not snowflake."
        ) from None


def _blanked(message: JsonObject) -> JsonObject:
    """What an app without the Message Content intent gets: the user-written fields emptied."""
    seen = {**message, "content": "", "embeds": [], "attachments": [], "components": []}
    seen.pop("poll", None)
    return seen


class FakeDiscord(StandIn):
    """Discord's REST API and gateway on 127.0.0.1 (a free port) for one bot.

    Usage: ``async with FakeDiscord() as dc:``, point discord.py at ``dc.api_url`` and
    ``dc.gateway_url``, log in with ``dc.token``. One guild (``dc.guild``) with one text channel
    (``dc.channel_id``) exists; ``add_guild`` adds more. Requests with a body must be JSON or
    multipart (anything else answers 400, code 50035, ``CONTENT_TYPE_INVALID``). Every answer with
    a body is ``Content-Type: application/json`` exactly: discord.py parses nothing else.
    ``fail_next``, ``expire_interaction`` and ``fail_randomly`` make it misbehave on the test's
    command.
    """

    def __init__(
        self,
        token: str = DEFAULT_TOKEN,
        *,
        application_id: int = DEFAULT_APPLICATION_ID,
        bot_user_id: int | None = None,
        bot_username: str = "reshare",
        privileged_intents: int = _PRIVILEGED,
        ack_deadline: float = 3.0,
        token_lifetime: float = 15 * 60.0,
        heartbeat_interval_ms: int = 41_250,
        recommended_shards: int = 1,
    ) -> None:
        if recommended_shards < 1:
            raise ValueError("recommended_shards must be at least 1")
        self.token = token
        self.application_id = application_id
        # Discord gives a bot the same id as its application.
        self.bot_user_id = application_id if bot_user_id is None else bot_user_id
        self.bot_username = bot_username
        self.privileged_intents = privileged_intents
        self.ack_deadline = ack_deadline
        self.token_lifetime = token_lifetime
        self.heartbeat_interval_ms = heartbeat_interval_ms
        # What GET /gateway/bot answers as "shards"; an AutoShardedClient without a shard count
        # runs that many.
        self.recommended_shards = recommended_shards
        self.user_id = DEFAULT_USER_ID
        # Set once the first session was sent READY and its GUILD_CREATEs; `ready_sessions`
        # counts them all.
        self.identified = asyncio.Event()
        self.ready_sessions = 0
        self._ready_changed = asyncio.Event()
        self.identify_payloads: list[JsonObject] = []
        self.gateway_connects: list[dict[str, str]] = []
        self._last_snowflake = 0
        self._users: dict[int, JsonObject] = {}
        self._guilds: dict[int, FakeGuild] = {}
        self._channels: dict[int, _Channel] = {}
        self._dm_channels: dict[int, int] = {}
        self._message_channel: dict[int, int] = {}
        self._ephemeral_owner: dict[int, int] = {}
        self._reactions: dict[int, list[str]] = {}
        self._attachment_data: dict[int, bytes] = {}
        self._commands: dict[int | None, list[JsonObject]] = {}
        self._command_ids: dict[tuple[int | None, str, int], int] = {}
        self._interactions: dict[int, _Interaction] = {}
        self._by_token: dict[str, _Interaction] = {}
        self._sessions: dict[str, _Session] = {}
        self._connections: set[_Connection] = set()
        self._dispatched: list[GatewayEvent] = []
        self._requests: list[RestCall] = []
        self._requests_changed = asyncio.Event()
        self._failures: list[_Failure] = []
        self._chaos: _Chaos | None = None
        # (method, path, status) of every fault that fired, in order.
        self.faults: list[tuple[str, str, int]] = []
        self._runner: web.AppRunner | None = None
        self._root: str | None = None
        self._stopping = False
        self._user(self.bot_user_id, bot=True, name=bot_username)
        self.guild = self.add_guild(
            DEFAULT_GUILD_ID, channel_id=DEFAULT_CHANNEL_ID, name="Reshare Test"
        )
        self.guild_id = self.guild.id
        self.channel_id = self.guild.channel_id
        channel, message = r"/channels/(?P<channel>\d+)", r"/messages/(?P<message>\d+)"
        webhook = r"/webhooks/(?P<app>\d+)/(?P<token>[^/]+)"
        webhook_message = webhook + r"/messages/(?P<message>@original|\d+)"
        commands = r"/applications/(?P<app>\d+)(?:/guilds/(?P<guild>\d+))?/commands"
        reaction = channel + message + r"/reactions/(?P<emoji>[^/]+)/@me"
        # The last field says whether the bot token is required; interaction and webhook routes
        # are authorised by the token in their path alone.
        self._routes: list[tuple[str, re.Pattern[str], _Handler, bool]] = [
            (method, re.compile(pattern), handler, auth)
            for method, pattern, handler, auth in (
                ("GET", r"/gateway", self._get_gateway, False),
                ("GET", r"/gateway/bot", self._get_gateway_bot, True),
                ("GET", r"/users/@me", self._get_me, True),
                ("GET", r"/users/(?P<user>\d+)", self._get_user, True),
                ("POST", r"/users/@me/channels", self._create_dm, True),
                ("GET", r"/(?:oauth2/)?applications/@me", self._get_application, True),
                ("GET", commands, self._get_commands, True),
                ("PUT", commands, self._put_commands, True),
                ("GET", channel, self._get_channel, True),
                ("POST", channel + r"/typing", self._typing, True),
                ("GET", channel + r"/messages", self._get_messages, True),
                ("POST", channel + r"/messages", self._create_message, True),
                ("GET", channel + message, self._get_message, True),
                ("PATCH", channel + message, self._edit_message, True),
                ("DELETE", channel + message, self._delete_message, True),
                ("PUT", reaction, self._add_reaction, True),
                ("DELETE", reaction, self._remove_reaction, True),
                (
                    "POST",
                    r"/interactions/(?P<interaction>\d+)/(?P<token>[^/]+)/callback",
                    self._callback,
                    False,
                ),
                ("POST", webhook, self._followup, False),
                ("GET", webhook_message, self._get_webhook_message, False),
                ("PATCH", webhook_message, self._edit_webhook_message, False),
                ("DELETE", webhook_message, self._delete_webhook_message, False),
            )
        ]

    # Lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("FakeDiscord is already running")
        app = web.Application(client_max_size=256 * MIB)
        app.router.add_get("/", self._handle_gateway)
        app.router.add_route("*", r"/api/v{version:\d+}/{tail:.*}", self._handle_rest)
        app.router.add_get(
            "/attachments/{channel:\\d+}/{attachment:\\d+}/{filename}", self._handle_attachment
        )
        app.router.add_route("*", "/{tail:.*}", self._handle_unrouted)
        # A short shutdown: a client still connected may be waiting on a keep-alive connection.
        self._runner, port = await listen(app, shutdown_timeout=1.0, handler_cancellation=True)
        self._root = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Close gateway connections (1001, going away) and the server.

        A bot still connected would reconnect at once: new gateway connections are refused.
        """
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._stopping = True
        for conn in list(self._connections):
            conn.close(1001, "Going away")
        pending = [asyncio.create_task(conn.done.wait()) for conn in self._connections]
        if pending:
            _, late = await asyncio.wait(pending, timeout=5.0)
            for task in late:
                task.cancel()
        await runner.cleanup()

    @property
    def root(self) -> str:
        if self._root is None:
            raise RuntimeError("FakeDiscord is not started")
        return self._root

    @property
    def api_url(self) -> str:
        """What ``discord.http.Route.BASE`` (DISCORD_API_URL) should be."""
        return f"{self.root}/api/v10"

    @property
    def gateway_url(self) -> str:
        """What ``DiscordWebSocket.DEFAULT_GATEWAY`` (DISCORD_GATEWAY_URL) should be."""
        return "ws" + self.root.removeprefix("http") + "/"

    # Test side: the world the bot lives in

    def add_guild(
        self,
        guild_id: int,
        *,
        premium_tier: int = 0,
        bot_can_manage_messages: bool = False,
        name: str | None = None,
        channel_id: int | None = None,
        with_bot: bool = True,
    ) -> FakeGuild:
        """Add a guild with one text channel; a connected bot sees it join (GUILD_CREATE).

        ``with_bot=False``: a guild the bot is not in, where only user-installed commands reach
        it (``inject_slash_command(..., user_install=True)``).
        """
        if premium_tier not in PREMIUM_UPLOAD_LIMITS:
            raise ValueError(f"premium_tier must be 0..3, not {premium_tier}")
        if guild_id in self._guilds:
            raise ValueError(f"guild {guild_id} exists")
        guild = FakeGuild(
            id=guild_id,
            name=name or f"Guild {guild_id}",
            channel_id=channel_id or self._snowflake(),
            bot_role_id=self._snowflake(),
            premium_tier=premium_tier,
            bot_can_manage_messages=bot_can_manage_messages,
            bot_member=with_bot,
        )
        self._guilds[guild_id] = guild
        self._channels[guild.channel_id] = _Channel(guild.channel_id, guild_id, "general")
        if not with_bot:
            return guild
        guild.members[self.bot_user_id] = _now_iso()
        for session in list(self._sessions.values()):
            if session.intents & Intent.GUILDS and session.receives(guild_id):
                payload = self._guild_create(guild, session)
                # A guild joined now, not one coming online: discord.py tells them apart by this.
                del payload["unavailable"]
                self._dispatch_to(session, "GUILD_CREATE", payload)
        return guild

    def update_guild(self, guild: FakeGuild) -> None:
        """Tell connected bots about changed guild fields (GUILD_UPDATE, roles included)."""
        if guild.premium_tier not in PREMIUM_UPLOAD_LIMITS:
            raise ValueError(f"premium_tier must be 0..3, not {guild.premium_tier}")
        if not guild.bot_member:
            return
        self._dispatch(
            "GUILD_UPDATE", self._guild_payload(guild), guild_id=guild.id, intent=Intent.GUILDS
        )

    def set_member_permissions(self, guild_id: int, user_id: int, permissions: int) -> None:
        """What a member's roles grant in a guild beyond @everyone (Discord's permission bits);
        ADMINISTRATOR grants all, as does owning the guild (``FakeGuild.owner_id``). Interactions
        carry the result as ``member.permissions``."""
        guild = self._guilds[guild_id]
        self._user(user_id)
        guild.members.setdefault(user_id, _now_iso())
        guild.member_permissions[user_id] = permissions

    def add_channel(self, guild_id: int, name: str = "more") -> int:
        """Another text channel in a guild; returns its id."""
        guild = self._guilds[guild_id]
        channel_id = self._snowflake()
        self._channels[channel_id] = _Channel(channel_id, guild_id, name)
        if guild.bot_member:
            self._dispatch(
                "CHANNEL_CREATE",
                self._channel_payload(self._channels[channel_id]),
                guild_id=guild_id,
                intent=Intent.GUILDS,
            )
        return channel_id

    def dm_channel_id(self, user_id: int) -> int:
        """The id of the DM channel between the bot and a user (made on first use)."""
        channel_id = self._dm_channels.get(user_id)
        if channel_id is None:
            self._user(user_id)
            channel_id = self._dm_channels[user_id] = self._snowflake()
            self._channels[channel_id] = _Channel(channel_id, None, "", recipient_id=user_id)
        return channel_id

    def add_group_dm(self, *user_ids: int, name: str | None = None) -> int:
        """A group DM of these users (the bot is never in one); returns its channel id. Only
        commands a user installed to their account work there."""
        if len(set(user_ids)) < 2 or self.bot_user_id in user_ids:
            raise ValueError("a group DM needs two or more users, and no bot")
        for user_id in user_ids:
            self._user(user_id)
        channel_id = self._snowflake()
        self._channels[channel_id] = _Channel(
            channel_id, None, name or "", group_ids=tuple(dict.fromkeys(user_ids))
        )
        return channel_id

    # Test side: what users do

    def inject_message(
        self,
        content: str,
        *,
        channel_id: int | None = None,
        guild_id: int | None = DEFAULT_GUILD_ID,
        author_id: int = DEFAULT_USER_ID,
        author_bot: bool = False,
        mentions_bot: bool = False,
        embeds: Sequence[JsonObject] = (),
        reply_to: int | None = None,
    ) -> JsonObject:
        """A user posts a message; returns it as people see it (full content).

        ``channel_id``, when given, decides the guild (or names a group DM, ``add_group_dm``);
        otherwise the guild's text channel is used, or the author's DM with the bot when
        ``guild_id`` is None. ``mentions_bot`` puts
        ``<@bot>`` in front of the content. The bot receives MESSAGE_CREATE only with the
        GUILD_MESSAGES (DIRECT_MESSAGES) intent, and the user-written fields only with
        MESSAGE_CONTENT, in a DM, or when it is mentioned — as Discord does. A bot offline gets
        nothing, as on Discord; the message stays in the channel.
        """
        channel = self._pick_channel(channel_id, guild_id, author_id)
        author = self._user(author_id, bot=author_bot)
        self._join(channel, author_id)
        mention = f"<@{self.bot_user_id}>"
        if mentions_bot and mention not in content:
            content = f"{mention} {content}"
        message = self._new_message(channel, author, content=content, embeds=list(embeds))
        message["mentions"] = [
            copy.deepcopy(self._users[uid]) for uid in self._mentioned_ids(content, channel)
        ]
        if reply_to is not None:
            target = self._stored(channel, reply_to)
            self._reply(message, channel, target, replied_user=True)
        self._store(channel, message)
        return copy.deepcopy(message)

    def inject_dm(self, content: str, *, user_id: int = DEFAULT_USER_ID) -> JsonObject:
        """A user writes to the bot in a DM."""
        return self.inject_message(content, guild_id=None, author_id=user_id)

    def inject_slash_command(
        self,
        name: str,
        options: Mapping[str, OptionValue] | None = None,
        *,
        guild_id: int | None = DEFAULT_GUILD_ID,
        channel_id: int | None = None,
        user_id: int = DEFAULT_USER_ID,
        attachment_size_limit: int = DEFAULT_UPLOAD_LIMIT,
        locale: str = "en-US",
        user_install: bool = False,
        force: bool = False,
    ) -> JsonObject:
        """A user runs ``/name`` (in a guild channel, the bot's DM with ``guild_id=None``, or
        a group DM by its ``channel_id``).

        In a guild, a command whose ``default_member_permissions`` the member lacks is not
        offered to them (ValueError), unless ``force``: the server overrode the command's
        permissions (Server Settings > Integrations), which the bot never learns of.

        ``user_install``: the user installed the app to their account, so the command also
        works where the bot is not (a guild added ``with_bot=False``, a group DM); the
        interaction's ``authorizing_integration_owners`` then hold ``"1": user_id``, beside
        ``"0": guild_id`` where the bot is in the guild. The command must have been synced
        (globally, or to that guild) for that install type and context, as Discord offers users
        only those. Returns the INTERACTION_CREATE payload.
        """
        channel = self._pick_channel(channel_id, guild_id, user_id)
        command = self._command_for(name, 1, channel, user_install=user_install)
        if not force:
            self._check_offered_to(command, channel, user_id)
        values = dict(options or {})
        wire_options: list[JsonObject] = []
        for option in command.get("options") or []:
            if option["name"] in values:
                value = values.pop(option["name"])
                wire_options.append(
                    {"name": option["name"], "type": option["type"], "value": value}
                )
            elif option.get("required"):
                raise ValueError(f"/{name} needs option {option['name']!r}")
        if values:
            raise ValueError(f"/{name} has no option(s) {sorted(values)}")
        data: JsonObject = {"id": command["id"], "name": name, "type": 1, "options": wire_options}
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        interaction = self._new_interaction(
            2, 1, data, channel, user_id, attachment_size_limit, locale, user_install=user_install
        )
        return copy.deepcopy(interaction.payload)

    def inject_message_command(
        self,
        name: str,
        target_message: JsonObject,
        *,
        user_id: int = DEFAULT_USER_ID,
        attachment_size_limit: int = DEFAULT_UPLOAD_LIMIT,
        locale: str = "en-US",
        user_install: bool = False,
        force: bool = False,
    ) -> JsonObject:
        """A user picks the message command ``name`` on a message (Apps > name).

        Discord resolves the full target message whatever the bot's intents. ``user_install``
        and ``force`` as for ``inject_slash_command``. Returns the INTERACTION_CREATE payload.
        """
        channel = self._channel_of(target_message)
        target = self._stored(channel, int(target_message["id"]))
        command = self._command_for(name, 3, channel, user_install=user_install)
        if not force:
            self._check_offered_to(command, channel, user_id)
        data: JsonObject = {
            "id": command["id"],
            "name": name,
            "type": 3,
            "target_id": target["id"],
            "resolved": {"messages": {target["id"]: copy.deepcopy(target)}},
        }
        if command.get("guild_id"):
            data["guild_id"] = command["guild_id"]
        interaction = self._new_interaction(
            2, 3, data, channel, user_id, attachment_size_limit, locale, user_install=user_install
        )
        interaction.target_message_id = int(target["id"])
        return copy.deepcopy(interaction.payload)

    def inject_button_click(
        self,
        custom_id: str,
        message: JsonObject,
        *,
        user_id: int = DEFAULT_USER_ID,
        attachment_size_limit: int = DEFAULT_UPLOAD_LIMIT,
        locale: str = "en-US",
        user_install: bool = False,
    ) -> JsonObject:
        """A user clicks a button on a message (a component interaction, callback types 6/7);
        the button must be on the message as stored, enabled, not a link, and the message one
        the user sees. ``user_install`` as for ``inject_slash_command``."""
        return self._use_component(
            custom_id,
            message,
            {"custom_id": custom_id, "component_type": BUTTON},
            user_id=user_id,
            attachment_size_limit=attachment_size_limit,
            locale=locale,
            user_install=user_install,
        )

    def inject_select(
        self,
        custom_id: str,
        message: JsonObject,
        values: Sequence[str],
        *,
        user_id: int = DEFAULT_USER_ID,
        attachment_size_limit: int = DEFAULT_UPLOAD_LIMIT,
        locale: str = "en-US",
        user_install: bool = False,
    ) -> JsonObject:
        """A user picks ``values`` in a select menu on a message (``data.values``); they must be
        among its options and within its min/max_values, as Discord's client allows no other."""
        channel = self._channel_of(message)
        stored = self._stored(channel, int(message["id"]))
        select = find_component(stored["components"], custom_id)
        if select is None or select["type"] == BUTTON:
            raise ValueError(f"no select menu {custom_id!r} on message {stored['id']}")
        data: JsonObject = {
            "custom_id": custom_id,
            "component_type": select["type"],
            "values": picked_values(select, list(values)),
        }
        return self._use_component(
            custom_id,
            message,
            data,
            user_id=user_id,
            attachment_size_limit=attachment_size_limit,
            locale=locale,
            user_install=user_install,
        )

    def _use_component(
        self,
        custom_id: str,
        message: JsonObject,
        data: JsonObject,
        *,
        user_id: int,
        attachment_size_limit: int,
        locale: str,
        user_install: bool,
    ) -> JsonObject:
        channel = self._channel_of(message)
        stored = self._stored(channel, int(message["id"]))
        owner = self._ephemeral_owner.get(int(stored["id"]))
        if owner is not None and owner != user_id:
            raise ValueError(f"user {user_id} cannot see ephemeral message {stored['id']}")
        component = find_component(stored["components"], custom_id)
        if component is None or component["type"] != data["component_type"]:
            raise ValueError(f"no component {custom_id!r} on message {stored['id']}")
        if component.get("disabled"):
            raise ValueError(f"component {custom_id!r} is disabled")
        interaction = self._new_interaction(
            3,
            0,
            data,
            channel,
            user_id,
            attachment_size_limit,
            locale,
            message=stored,
            user_install=user_install,
        )
        interaction.target_message_id = int(stored["id"])
        return copy.deepcopy(interaction.payload)

    def fail_next(
        self,
        method: str,
        path_pattern: str,
        *,
        status: int = 429,
        code: int = 0,
        message: str | None = None,
        retry_after: float = 0.05,
        scope: RateLimitScope = "user",
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with an error (a 429 by default).

        A 429 is worded as Discord words it for ``scope``: a route's bucket (``user``), a shared
        resource (``shared``), or the global limit (``global``: ``X-RateLimit-Global`` and
        ``"global": true``, which makes discord.py hold every request). All carry
        ``retry_after`` and the ``Via`` header: discord.py takes a 429 without ``Via`` for a
        Cloudflare ban and raises instead of waiting.
        """
        reply = (
            _rate_limited(retry_after, scope, path_pattern)
            if status == 429
            else _Reply(status, {"message": message or _status_message(status), "code": code})
        )
        failure = _Failure(method.upper(), re.compile(path_pattern), reply)
        self._failures.extend([failure] * times)

    def fail_randomly(
        self,
        rng: random.Random,
        rate: float,
        kinds: Collection[Fault] = TRANSIENT_FAULTS,
        *,
        retry_after: float = 0.05,
    ) -> None:
        """From now on, answer each request the bot makes to answer someone (channel messages,
        interaction callbacks and webhooks; not logging in) with one of ``kinds`` at probability
        ``rate``, drawn from ``rng`` (seed it to replay a run). ``rate=0`` turns it off."""
        chosen = tuple(sorted(kinds, key=lambda kind: kind.name))
        self._chaos = _Chaos(rng, rate, chosen, retry_after) if rate > 0 else None

    def expire_interaction(self, interaction_id: int | str) -> None:
        """Move an interaction past its windows: its callback answers 10062 Unknown interaction,
        its webhook 50027 Invalid Webhook Token, as when a job outlasts the 15 minutes."""
        interaction = self._interactions[int(interaction_id)]
        past = time.monotonic() - self.token_lifetime - self.ack_deadline - 1
        interaction.created_at = past
        interaction.dispatched_at = past

    def _random_fault(self, path: str) -> _Reply | None:
        chaos = self._chaos
        if chaos is None or not _ANSWER_PATHS.match(path) or chaos.rng.random() >= chaos.rate:
            return None
        kind = chaos.rng.choice(chaos.kinds)
        if kind is Fault.SERVER_ERROR:
            return _Reply(500, {"message": _status_message(500), "code": 0})
        if kind is Fault.TOO_LARGE:
            return _ApiError(413, 40005, "Request entity too large").reply()
        scope: dict[Fault, RateLimitScope] = {
            Fault.ROUTE_RATE_LIMITED: "user",
            Fault.SHARED_RATE_LIMITED: "shared",
            Fault.GLOBAL_RATE_LIMITED: "global",
        }
        return _rate_limited(chaos.retry_after, scope[kind], path)

    async def disconnect(self, code: int = 4000, *, shard: int | None = None) -> None:
        """Drop the gateway connections with ``code``; 4000 lets the bot RESUME its session.

        With ``shard``, only the connections of sessions identified as that shard id.
        """
        connections = [
            conn
            for conn in self._connections
            if shard is None
            or (conn.session is not None and (conn.session.shard or (0, 1))[0] == shard)
        ]
        for conn in connections:
            conn.close(code, "Dropped by the test")
        for conn in connections:
            await conn.done.wait()

    # Test side: what the bot did

    async def wait_ready(
        self,
        timeout: float = 10.0,  # noqa: ASYNC109 - reads better
        *,
        sessions: int = 1,
    ) -> None:
        """Wait until ``sessions`` sessions (one per shard a bot runs) identified and were sent
        READY and their GUILD_CREATEs, counted since the stand-in started."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.ready_sessions < sessions:
            try:
                await asyncio.wait_for(self._ready_changed.wait(), deadline - loop.time())
            except TimeoutError:
                raise AssertionError(
                    f"{self.ready_sessions} of {sessions} session(s) identified within "
                    f"{timeout}s; gateway connects: {self.gateway_connects}"
                ) from None

    @property
    def connected(self) -> bool:
        """Whether a bot holds an identified gateway connection now."""
        return any(session.connection for session in self._sessions.values())

    @property
    def sessions(self) -> list[GatewaySession]:
        """The gateway sessions alive now (connected, or waiting to be resumed), oldest first."""
        return [
            GatewaySession(
                id=session.id,
                shard=session.shard,
                intents=session.intents,
                connected=session.connection is not None,
            )
            for session in self._sessions.values()
        ]

    @property
    def identified_intents(self) -> int | None:
        """The intents bitfield of the latest IDENTIFY."""
        return self.identify_payloads[-1].get("intents") if self.identify_payloads else None

    @property
    def requests(self) -> list[RestCall]:
        """Every REST request, in the order they were answered."""
        return list(self._requests)

    def requests_to(self, method: str, path_pattern: str) -> list[RestCall]:
        """Requests whose method matches (``*`` for any) and whose path matches the regex from
        its start (so a literal prefix works)."""
        wanted = re.compile(path_pattern)
        return [
            call
            for call in self._requests
            if method in ("*", call.method) and wanted.match(call.path)
        ]

    async def wait_for_request(
        self,
        method: str,
        path_pattern: str,
        *,
        count: int = 1,
        timeout: float = 30.0,  # noqa: ASYNC109 - a bound on the wait reads better in a test
    ) -> list[RestCall]:
        """Wait until at least ``count`` matching requests were answered; returns all of them."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(found := self.requests_to(method, path_pattern)) < count:
            remaining = deadline - loop.time()
            try:
                if remaining <= 0:
                    raise TimeoutError
                await asyncio.wait_for(self._requests_changed.wait(), remaining)
            except TimeoutError:
                seen = "\n  ".join(self._describe(call) for call in self._requests) or "(none)"
                raise AssertionError(
                    f"expected {count} {method} {path_pattern!r} request(s) within {timeout}s, "
                    f"got {len(found)}; requests seen:\n  {seen}"
                ) from None
        return found

    def interaction_responses(self, interaction_id: int | str) -> list[RestCall]:
        """The callback, followups, and reads, edits and deletions of its messages, in order."""
        interaction = self._interactions[int(interaction_id)]
        webhook = f"/webhooks/{self.application_id}/{interaction.token}"
        callback = f"/interactions/{interaction.id}/{interaction.token}/"
        return [
            call
            for call in self._requests
            if call.path == webhook or call.path.startswith((webhook + "/", callback))
        ]

    def messages_in(self, channel_id: int, *, as_user: int | None = None) -> list[JsonObject]:
        """The channel as a user sees it: edits applied, deleted messages gone, and ephemeral
        messages (flag 64) only for the user they were meant for (``as_user``)."""
        channel = self._channels.get(channel_id)
        if channel is None:
            return []
        return [
            copy.deepcopy(message)
            for message_id, message in channel.messages.items()
            if self._ephemeral_owner.get(message_id, as_user) == as_user
        ]

    def message(self, message_id: int | str) -> JsonObject:
        """A message as stored now (ephemeral ones too)."""
        channel = self._channels[self._message_channel[int(message_id)]]
        return copy.deepcopy(channel.messages[int(message_id)])

    def reactions_on(self, message_id: int | str) -> list[str]:
        """The emoji the bot has on a message now, in the order it added them."""
        return list(self._reactions.get(int(message_id), []))

    def attachment_bytes(self, attachment: JsonObject) -> bytes:
        """The bytes behind an attachment object of a stored message."""
        return self._attachment_data[int(attachment["id"])]

    @property
    def commands(self) -> dict[int | None, list[JsonObject]]:
        """The synced application commands: key None for global ones, else the guild id."""
        return copy.deepcopy(self._commands)

    @property
    def dispatched(self) -> list[GatewayEvent]:
        """Every DISPATCH sent to any session, as that session received it."""
        return list(self._dispatched)

    # Ids, users, guilds and channels

    def _snowflake(self) -> int:
        """A Discord id: milliseconds since 2015 in the high bits, so ids sort by time."""
        now = (int(time.time() * 1000) - _DISCORD_EPOCH_MS) << 22
        self._last_snowflake = max(now, self._last_snowflake + 1)
        return self._last_snowflake

    def _user(self, user_id: int, *, bot: bool = False, name: str | None = None) -> JsonObject:
        user = self._users.get(user_id)
        if user is None:
            username = name or f"user{user_id % 100_000}"
            user = self._users[user_id] = {
                "id": str(user_id),
                "username": username,
                "discriminator": "0001" if bot else "0",
                "global_name": None if bot else username.title(),
                "avatar": None,
                "avatar_decoration_data": None,
                "collectibles": None,
                "primary_guild": None,
                "public_flags": 0,
            }
            if bot:
                user["bot"] = True
        return user

    def _bot_user(self) -> JsonObject:
        return copy.deepcopy(self._users[self.bot_user_id])

    def _join(self, channel: _Channel, user_id: int) -> None:
        if channel.guild_id is not None:
            self._guilds[channel.guild_id].members.setdefault(user_id, _now_iso())

    def _pick_channel(self, channel_id: int | None, guild_id: int | None, user_id: int) -> _Channel:
        if channel_id is not None:
            channel = self._channels.get(channel_id)
            if channel is None:
                raise ValueError(f"unknown channel {channel_id}")
            return channel
        if guild_id is None:
            return self._channels[self.dm_channel_id(user_id)]
        guild = self._guilds.get(guild_id)
        if guild is None:
            raise ValueError(f"unknown guild {guild_id}")
        return self._channels[guild.channel_id]

    def _channel_of(self, message: JsonObject) -> _Channel:
        channel = self._channels.get(int(message["channel_id"]))
        if channel is None:
            raise ValueError(f"unknown channel {message['channel_id']}")
        return channel

    def _stored(self, channel: _Channel, message_id: int) -> JsonObject:
        message = channel.messages.get(message_id)
        if message is None:
            raise ValueError(f"no message {message_id} in channel {channel.id}")
        return message

    def _roles(self, guild: FakeGuild) -> list[JsonObject]:
        def role(role_id: int, name: str, permissions: int, position: int) -> JsonObject:
            return {
                "id": str(role_id),
                "name": name,
                "permissions": str(permissions),
                "position": position,
                "color": 0,
                "colors": {"primary_color": 0, "secondary_color": None, "tertiary_color": None},
                "hoist": False,
                "managed": position > 0,
                "mentionable": False,
                "flags": 0,
                "icon": None,
                "unicode_emoji": None,
                "description": None,
            }

        everyone = role(guild.id, "@everyone", _EVERYONE_PERMISSIONS, 0)
        bot_role = role(guild.bot_role_id, self.bot_username, guild.bot_permissions, 1)
        bot_role["tags"] = {"bot_id": str(self.bot_user_id)}
        return [everyone, bot_role]

    def _member(self, guild: FakeGuild, user_id: int, *, with_user: bool = True) -> JsonObject:
        member: JsonObject = {
            "roles": [str(guild.bot_role_id)] if user_id == self.bot_user_id else [],
            "nick": None,
            "avatar": None,
            "banner": None,
            "premium_since": None,
            "joined_at": guild.members.get(user_id) or _now_iso(),
            "pending": False,
            "deaf": False,
            "mute": False,
            "flags": 0,
            "communication_disabled_until": None,
        }
        if with_user:
            member["user"] = copy.deepcopy(self._user(user_id))
        return member

    def _channel_payload(self, channel: _Channel) -> JsonObject:
        last = str(next(reversed(channel.messages))) if channel.messages else None
        if channel.is_group:
            return {
                "id": str(channel.id),
                "type": _GROUP_DM,
                "name": channel.name or None,
                "icon": None,
                "owner_id": str(channel.group_ids[0]),
                "last_message_id": last,
                "flags": 0,
                "recipients": [copy.deepcopy(self._user(uid)) for uid in channel.group_ids],
            }
        if channel.guild_id is None:
            recipient = self._user(channel.recipient_id or 0)
            return {
                "id": str(channel.id),
                "type": 1,
                "last_message_id": last,
                "flags": 0,
                "recipients": [copy.deepcopy(recipient)],
            }
        return {
            "id": str(channel.id),
            "type": 0,
            "guild_id": str(channel.guild_id),
            "name": channel.name,
            "position": 0,
            "permission_overwrites": [],
            "nsfw": False,
            "parent_id": None,
            "topic": None,
            "last_message_id": last,
            "rate_limit_per_user": 0,
            "flags": 0,
        }

    def _guild_payload(self, guild: FakeGuild) -> JsonObject:
        """The guild object of GUILD_UPDATE; GUILD_CREATE adds channels and members."""
        return {
            "id": str(guild.id),
            "name": guild.name,
            "icon": None,
            "splash": None,
            "discovery_splash": None,
            "banner": None,
            "description": None,
            "owner_id": str(guild.owner_id),
            "afk_channel_id": None,
            "afk_timeout": 300,
            "verification_level": 0,
            "default_message_notifications": 0,
            "explicit_content_filter": 0,
            "mfa_level": 0,
            "nsfw_level": 0,
            "roles": self._roles(guild),
            "emojis": [],
            "stickers": [],
            "features": [],
            "application_id": None,
            "system_channel_id": str(guild.channel_id),
            "system_channel_flags": 0,
            "rules_channel_id": None,
            "public_updates_channel_id": None,
            "safety_alerts_channel_id": None,
            "max_members": 500_000,
            "max_video_channel_users": 25,
            "max_stage_video_channel_users": 50,
            "vanity_url_code": None,
            "premium_tier": guild.premium_tier,
            "premium_subscription_count": _BOOSTS_FOR_TIER[guild.premium_tier],
            "premium_progress_bar_enabled": False,
            "preferred_locale": "en-US",
            "incidents_data": None,
        }

    def _guild_create(self, guild: FakeGuild, session: _Session) -> JsonObject:
        # Without GUILD_MEMBERS Discord lists only the bot itself among the members.
        members = (
            list(guild.members) if session.intents & Intent.GUILD_MEMBERS else [self.bot_user_id]
        )
        channels = [
            self._channel_payload(channel)
            for channel in self._channels.values()
            if channel.guild_id == guild.id
        ]
        return {
            **self._guild_payload(guild),
            "joined_at": guild.members[self.bot_user_id],
            "large": False,
            "unavailable": False,
            "lazy": True,
            "member_count": len(guild.members),
            "members": [self._member(guild, user_id) for user_id in members],
            "channels": channels,
            "threads": [],
            "voice_states": [],
            "presences": [],
            "stage_instances": [],
            "guild_scheduled_events": [],
            "soundboard_sounds": [],
            "embedded_activities": [],
        }

    # Messages

    def _new_message(
        self,
        channel: _Channel,
        author: JsonObject,
        *,
        content: str = "",
        embeds: list[JsonObject] | None = None,
        message_type: int = 0,
        flags: int = 0,
    ) -> JsonObject:
        message_id = self._snowflake()
        return {
            "id": str(message_id),
            "channel_id": str(channel.id),
            "type": message_type,
            "author": copy.deepcopy(author),
            "content": content,
            "timestamp": _iso(message_id),
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "attachments": [],
            "embeds": [] if flags & _SUPPRESS_EMBEDS else list(embeds or []),
            "components": [],
            "pinned": False,
            "flags": flags,
        }

    def _mentioned_ids(self, content: str, channel: _Channel) -> list[int]:
        """Users whose ``<@id>`` is in the text and who can see the channel."""
        if channel.is_group:
            members = set(channel.group_ids)
        elif channel.guild_id is None:
            members = {self.bot_user_id, channel.recipient_id or 0}
        else:
            members = set(self._guilds[channel.guild_id].members)
        found: list[int] = []
        for match in _USER_MENTION.finditer(content):
            user_id = int(match.group(1))
            if user_id in members and user_id in self._users and user_id not in found:
                found.append(user_id)
        return found

    def _reply(
        self, message: JsonObject, channel: _Channel, target: JsonObject, *, replied_user: bool
    ) -> None:
        message["type"] = 19
        message["message_reference"] = {
            "type": 0,
            "channel_id": str(channel.id),
            "message_id": target["id"],
        }
        if channel.guild_id is not None:
            message["message_reference"]["guild_id"] = str(channel.guild_id)
        quoted = copy.deepcopy(target)
        quoted.pop("referenced_message", None)
        message["referenced_message"] = quoted
        author = target["author"]
        if replied_user and all(user["id"] != author["id"] for user in message["mentions"]):
            message["mentions"].append(copy.deepcopy(author))

    def _store(
        self, channel: _Channel, message: JsonObject, *, ephemeral_for: int | None = None
    ) -> None:
        message_id = int(message["id"])
        channel.messages[message_id] = message
        self._message_channel[message_id] = channel.id
        if ephemeral_for is not None:
            self._ephemeral_owner[message_id] = ephemeral_for
        else:
            self._dispatch_message("MESSAGE_CREATE", channel, message)

    def _bot_present(self, channel: _Channel) -> bool:
        """Whether the bot is in the channel: a member of its guild, or the other end of a DM."""
        if channel.is_group:
            return False
        return channel.guild_id is None or self._guilds[channel.guild_id].bot_member

    def _dispatch_message(self, name: str, channel: _Channel, message: JsonObject) -> None:
        if int(message["id"]) in self._ephemeral_owner or not self._bot_present(channel):
            return
        event = copy.deepcopy(message)
        if channel.guild_id is not None:
            guild = self._guilds[channel.guild_id]
            event["guild_id"] = str(guild.id)
            author_id = int(message["author"]["id"])
            if "webhook_id" not in message and author_id in guild.members:
                event["member"] = self._member(guild, author_id, with_user=False)
        intent = Intent.GUILD_MESSAGES if channel.guild_id else Intent.DIRECT_MESSAGES
        self._dispatch(name, event, guild_id=channel.guild_id, intent=intent, blank=True)

    def _sees_content(self, message: JsonObject, intents: int) -> bool:
        """Discord's exceptions to the Message Content intent: the app's own messages, DMs,
        and messages that mention it."""
        return bool(
            intents & Intent.MESSAGE_CONTENT
            or int(message["author"]["id"]) == self.bot_user_id
            or self._channels[int(message["channel_id"])].guild_id is None
            or any(int(user["id"]) == self.bot_user_id for user in message.get("mentions", []))
        )

    def _as_seen(self, message: JsonObject, intents: int) -> JsonObject:
        seen = copy.deepcopy(message) if self._sees_content(message, intents) else _blanked(message)
        referenced = seen.get("referenced_message")
        if referenced:
            seen["referenced_message"] = self._as_seen(referenced, intents)
        return seen

    def _rest_view(self, message: JsonObject) -> JsonObject:
        """REST answers follow the portal's Message Content switch, not the gateway intents."""
        return self._as_seen(message, self.privileged_intents)

    def _content_fields(
        self,
        body: JsonObject,
        files: tuple[UploadedFile, ...],
        channel: _Channel,
        keep: list[JsonObject],
        *,
        ephemeral: bool,
        v2: bool = False,
    ) -> JsonObject:
        """The message fields a create or edit body sets, checked as Discord checks them;
        ``v2``: the message already is IS_COMPONENTS_V2 (or the body makes it so)."""
        fields: JsonObject = {}
        v2 = v2 or bool(int(body.get("flags") or 0) & _IS_COMPONENTS_V2)
        if v2:
            for name in ("content", "embeds"):
                if body.get(name):
                    raise _form_error(
                        [name],
                        "MESSAGE_CANNOT_USE_LEGACY_FIELDS_WITH_COMPONENTS_V2",
                        f"The '{name}' field cannot be used when using "
                        "MessageFlags.IS_COMPONENTS_V2",
                    )
        if "content" in body:
            content = body["content"]
            if content is not None and not isinstance(content, str):
                raise _form_error(["content"], "BASE_TYPE_STRING", "Must be a string.")
            if content is not None and len(content) > _MAX_CONTENT:
                raise _form_error(
                    ["content"],
                    "BASE_TYPE_MAX_LENGTH",
                    f"Must be {_MAX_CONTENT} or fewer in length.",
                )
            fields["content"] = content or ""
        if "embeds" in body:
            embeds = body["embeds"] or []
            if not isinstance(embeds, list) or len(embeds) > 10:
                raise _form_error(
                    ["embeds"], "BASE_TYPE_MAX_LENGTH", "Must be 10 or fewer in length."
                )
            fields["embeds"] = [{"type": "rich", **embed} for embed in embeds]
        if "components" in body:
            try:
                fields["components"] = checked(body["components"] or [], v2=v2)
            except ComponentError as err:
                raise _form_error(["components", *err.where], err.code, err.message) from None
        if "poll" in body and body["poll"] is not None:
            fields["poll"] = body["poll"]
        if "attachments" in body or files:
            fields["attachments"] = self._attachments(
                channel, body.get("attachments"), files, keep, ephemeral=ephemeral
            )
        return fields

    def _attachments(
        self,
        channel: _Channel,
        spec: Any,
        files: tuple[UploadedFile, ...],
        keep: list[JsonObject],
        *,
        ephemeral: bool,
    ) -> list[JsonObject]:
        """Kept attachments (listed by id in ``attachments``, or all when it is absent) followed
        by one per uploaded file."""
        described: dict[str, JsonObject] = {}
        kept = list(keep)
        if spec is not None:
            if not isinstance(spec, list):
                raise _form_error(["attachments"], "LIST_TYPE_CONVERT", "Must be a list.")
            existing = {attachment["id"]: attachment for attachment in keep}
            kept = []
            for entry in spec:
                entry_id = str(entry.get("id")) if isinstance(entry, dict) else ""
                if entry_id in existing:
                    kept.append(existing[entry_id])
                else:
                    described[entry_id] = entry
        new: list[JsonObject] = []
        for index, upload in enumerate(files):
            number = _FILE_FIELD.fullmatch(upload.field)
            entry = described.get(number.group(1) if number else str(index), {})
            filename = str(entry.get("filename") or upload.filename)
            attachment_id = self._snowflake()
            url = f"{self.root}/attachments/{channel.id}/{attachment_id}/{filename}"
            attachment: JsonObject = {
                "id": str(attachment_id),
                "filename": filename,
                "size": len(upload.data),
                "url": url,
                "proxy_url": url,
                "content_type": mimetypes.guess_type(filename)[0] or "application/octet-stream",
            }
            if entry.get("description"):
                attachment["description"] = entry["description"]
            if ephemeral:
                attachment["ephemeral"] = True
            self._attachment_data[attachment_id] = upload.data
            new.append(attachment)
        return kept + new

    @staticmethod
    def _check_upload(files: tuple[UploadedFile, ...], limit: int) -> None:
        if sum(len(upload.data) for upload in files) > limit:
            raise _ApiError(413, 40005, "Request entity too large")

    @staticmethod
    def _check_not_empty(message: JsonObject) -> None:
        if not (
            message["content"]
            or message["embeds"]
            or message["attachments"]
            or message["components"]
            or message.get("poll")
            or message.get("sticker_items")
        ):
            raise _ApiError(400, 50006, "Cannot send an empty message")

    def _bot_mentions(
        self, content: str, channel: _Channel, allowed: Any
    ) -> tuple[list[JsonObject], bool]:
        """Users a bot message pings under its allowed_mentions, and whether it pings the
        author of the message it replies to."""
        ids = self._mentioned_ids(content, channel)
        replied_user = True
        if isinstance(allowed, dict):
            parse = allowed.get("parse") or []
            listed = {int(user_id) for user_id in allowed.get("users") or []}
            ids = [user_id for user_id in ids if "users" in parse or user_id in listed]
            replied_user = bool(allowed.get("replied_user", False))
        return [copy.deepcopy(self._users[user_id]) for user_id in ids], replied_user

    # Gateway

    async def _handle_gateway(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=16 * MIB)
        if self._stopping:
            return self._json_response(_Reply(503, {"message": "Shutting down", "code": 0}))
        if not ws.can_prepare(request).ok:
            return self._json_response(_Reply(404, {"message": "404: Not Found", "code": 0}))
        await ws.prepare(request)
        query = dict(request.query)
        self.gateway_connects.append(query)
        # zlib-stream is what discord.py asks for without zstandard installed. Anything else
        # (zstd-stream) gets plain text frames, which discord.py reads in every mode.
        deflate = zlib.compressobj() if query.get("compress") == "zlib-stream" else None
        conn = _Connection(ws=ws, deflate=deflate)
        self._connections.add(conn)
        writer = asyncio.create_task(self._write(conn))
        if query.get("v", "10") not in _API_VERSIONS:
            conn.close(4012, "Invalid API version")
        elif query.get("encoding", "json") != "json":
            conn.close(4002, "Error while decoding payload.")
        else:
            conn.send(
                {
                    "op": 10,
                    "t": None,
                    "s": None,
                    "d": {
                        "heartbeat_interval": self.heartbeat_interval_ms,
                        "_trace": ['["stand-in-gateway",{"micros":0}]'],
                    },
                }
            )
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT:
                    self._on_frame(conn, msg.data)
                elif msg.type is WSMsgType.BINARY:
                    self._on_frame(conn, msg.data.decode(errors="replace"))
        finally:
            self._connections.discard(conn)
            self._detach(conn, ws.close_code if conn.closed_with is None else conn.closed_with)
            conn.close(1000, "")
            try:
                # aiohttp cancels this handler when the peer hangs up, which cancels the writer.
                await writer
            finally:
                conn.done.set()
        return ws

    async def _write(self, conn: _Connection) -> None:
        """Send queued frames in order (zlib-stream: one shared deflate context, each frame
        ending in a sync flush)."""
        while True:
            item = await conn.outbox.get()
            if isinstance(item, _Close):
                if not conn.ws.closed:
                    conn.closed_with = item.code
                    await conn.ws.close(code=item.code, message=item.reason.encode())
                return
            if isinstance(item, _Mark):
                item.callback()
                continue
            text = json.dumps(item, separators=(",", ":"))
            try:
                if conn.deflate is None:
                    await conn.ws.send_str(text)
                else:
                    data = conn.deflate.compress(text.encode())
                    await conn.ws.send_bytes(data + conn.deflate.flush(zlib.Z_SYNC_FLUSH))
            except (ConnectionError, RuntimeError):
                return
            if item.get("t") == "INTERACTION_CREATE":
                interaction = self._interactions[int(item["d"]["id"])]
                if interaction.dispatched_at is None:
                    interaction.dispatched_at = time.monotonic()

    def _detach(self, conn: _Connection, close_code: int | None) -> None:
        session = conn.session
        if session is None or session.connection is not conn:
            return
        session.connection = None
        # Closing with 1000/1001 ends the session; any other code leaves it resumable.
        if close_code in (1000, 1001):
            self._sessions.pop(session.id, None)

    def _on_frame(self, conn: _Connection, raw: str) -> None:
        try:
            frame = json.loads(raw)
        except ValueError:
            frame = None
        if not isinstance(frame, dict):
            conn.close(4002, "Error while decoding payload.")
            return
        op, data = frame.get("op"), frame.get("d")
        if op == 1:
            conn.send({"op": 11, "t": None, "s": None, "d": None})
        elif op == 2:
            self._identify(conn, data)
        elif op == 6:
            self._resume(conn, data)
        elif conn.session is None:
            conn.close(4003, "Not authenticated.")
        elif op == 8:
            self._members_chunk(conn.session, data)
        elif op not in (3, 4):
            conn.close(4001, "Unknown opcode.")

    def _identify(self, conn: _Connection, data: Any) -> None:
        if conn.session is not None:
            conn.close(4005, "Already authenticated.")
            return
        if not isinstance(data, dict) or data.get("token") != self.token:
            conn.close(4004, "Authentication failed.")
            return
        intents = data.get("intents")
        if not isinstance(intents, int) or not 0 <= intents <= _ALL_INTENTS:
            conn.close(4013, "Invalid intent(s).")
            return
        if intents & _PRIVILEGED & ~self.privileged_intents:
            conn.close(4014, "Disallowed intent(s).")
            return
        shard = data.get("shard")
        if shard is not None and not (
            isinstance(shard, list)
            and len(shard) == 2
            and all(type(n) is int for n in shard)
            and 0 <= shard[0] < shard[1]
        ):
            conn.close(4010, "Invalid shard.")
            return
        self.identify_payloads.append(copy.deepcopy(data))
        session = _Session(
            id=secrets.token_hex(16),
            intents=intents,
            shard=(shard[0], shard[1]) if shard is not None else None,
            connection=conn,
        )
        self._sessions[session.id] = session
        conn.session = session
        ready: JsonObject = {
            "v": 10,
            "user": {
                **self._bot_user(),
                "verified": True,
                "mfa_enabled": False,
                "email": None,
                "flags": 0,
            },
            "user_settings": {},
            "guilds": [
                {"id": str(guild.id), "unavailable": True}
                for guild in self._guilds.values()
                if guild.bot_member and session.receives(guild.id)
            ],
            "session_id": session.id,
            "session_type": "normal",
            "resume_gateway_url": self.gateway_url,
            "private_channels": [],
            "relationships": [],
            "presences": [],
            "guild_join_requests": [],
            "geo_ordered_rtc_regions": ["local"],
            "auth": {},
            "application": {"id": str(self.application_id), "flags": self._application_flags()},
            "_trace": ['["stand-in-gateway",{"micros":0}]'],
        }
        if session.shard is not None:
            ready["shard"] = list(session.shard)
        self._dispatch_to(session, "READY", ready)
        if intents & Intent.GUILDS:
            for guild in self._guilds.values():
                if guild.bot_member and session.receives(guild.id):
                    self._dispatch_to(session, "GUILD_CREATE", self._guild_create(guild, session))
        conn.send(_Mark(self._session_ready))

    def _session_ready(self) -> None:
        self.ready_sessions += 1
        self.identified.set()
        self._ready_changed.set()
        self._ready_changed = asyncio.Event()

    def _resume(self, conn: _Connection, data: Any) -> None:
        if not isinstance(data, dict):
            conn.close(4002, "Error while decoding payload.")
            return
        session = self._sessions.get(str(data.get("session_id")))
        if session is None or data.get("token") != self.token:
            conn.send({"op": 9, "t": None, "s": None, "d": False})
            return
        if session.connection is not None and session.connection is not conn:
            session.connection.close(4009, "Session timed out.")
        session.connection = conn
        conn.session = session
        seen = data.get("seq") or 0
        for event in session.events:
            if event.seq > seen:
                conn.send({"op": 0, "t": event.name, "s": event.seq, "d": event.data})
        self._dispatch_to(session, "RESUMED", {"_trace": ['["stand-in-gateway"]']})

    def _members_chunk(self, session: _Session, data: Any) -> None:
        if not isinstance(data, dict) or not str(data.get("guild_id")).isdigit():
            return
        guild = self._guilds.get(int(data["guild_id"]))
        if guild is None or not guild.bot_member or not session.receives(guild.id):
            return
        query = str(data.get("query") or "").lower()
        wanted = {int(user_id) for user_id in data.get("user_ids") or []}
        members = [
            self._member(guild, user_id)
            for user_id in guild.members
            if (not wanted or user_id in wanted)
            and str(self._user(user_id)["username"]).startswith(query)
        ]
        limit = int(data.get("limit") or 0)
        chunk: JsonObject = {
            "guild_id": str(guild.id),
            "members": members[:limit] if limit else members,
            "chunk_index": 0,
            "chunk_count": 1,
        }
        if data.get("nonce"):
            chunk["nonce"] = data["nonce"]
        self._dispatch_to(session, "GUILD_MEMBERS_CHUNK", chunk)

    def _dispatch_to(self, session: _Session, name: str, data: JsonObject) -> None:
        session.seq += 1
        event = GatewayEvent(
            name=name, data=data, seq=session.seq, session_id=session.id, shard=session.shard
        )
        session.events.append(event)
        self._dispatched.append(event)
        if session.connection is not None:
            session.connection.send({"op": 0, "t": name, "s": session.seq, "d": data})

    def _dispatch(
        self,
        name: str,
        data: JsonObject,
        *,
        guild_id: int | None,
        intent: int = 0,
        blank: bool = False,
    ) -> int:
        """Send an event of a guild (None: of a DM) to every session that subscribed to it and
        holds that guild's shard; returns how many got it."""
        sent = 0
        for session in list(self._sessions.values()):
            if intent and not session.intents & intent:
                continue
            if not session.receives(guild_id):
                continue
            payload = self._as_seen(data, session.intents) if blank else copy.deepcopy(data)
            self._dispatch_to(session, name, payload)
            sent += 1
        return sent

    def _application_flags(self) -> int:
        flags = _APPLICATION_COMMAND_BADGE
        for intent, flag in _APP_FLAG_FOR_INTENT.items():
            if self.privileged_intents & intent:
                flags |= flag
        return flags

    # Interactions

    def _context(self, channel: _Channel) -> int:
        if channel.is_group:
            return CONTEXT_PRIVATE_CHANNEL
        return CONTEXT_BOT_DM if channel.guild_id is None else CONTEXT_GUILD

    def _command_for(
        self, name: str, command_type: int, channel: _Channel, *, user_install: bool
    ) -> JsonObject:
        """The synced command a user can pick here, as Discord offers only those: allowed in
        this context, and installed the way the interaction comes (to the user, or to the
        guild with the bot in it)."""
        context = self._context(channel)
        if not user_install and not self._bot_present(channel):
            raise ValueError(
                f"the bot is not in channel {channel.id}: only a user-installed command works "
                "there (user_install=True)"
            )
        candidates = list(self._commands.get(channel.guild_id, [])) if channel.guild_id else []
        candidates += self._commands.get(None, [])
        for command in candidates:
            if command["name"] != name or command["type"] != command_type:
                continue
            contexts = command.get("contexts")
            if contexts is None:
                # Without contexts: guilds, and bot DMs unless dm_permission is false.
                offered = context == CONTEXT_GUILD or (
                    context == CONTEXT_BOT_DM and command.get("dm_permission") is not False
                )
            else:
                offered = context in contexts
            if not offered or (context != CONTEXT_GUILD and command.get("guild_id")):
                where = {0: "guilds", 1: "DMs with the bot", 2: "private channels"}[context]
                raise ValueError(f"command {name!r} is not offered in {where}")
            install = USER_INSTALL if user_install else GUILD_INSTALL
            if install not in command["integration_types"]:
                kind = "user" if user_install else "guild"
                raise ValueError(f"command {name!r} is not installable to a {kind}")
            return command
        where = f"globally or to guild {channel.guild_id}" if channel.guild_id else "globally"
        raise ValueError(f"no command {name!r} of type {command_type} is synced {where}")

    def _check_offered_to(self, command: JsonObject, channel: _Channel, user_id: int) -> None:
        """Discord shows a guild member a command only when they hold all of its
        ``default_member_permissions`` ("0": administrators only); DMs ignore them."""
        required = command.get("default_member_permissions")
        if channel.guild_id is None or required is None:
            return
        held = self._guilds[channel.guild_id].permissions_of(user_id)
        needed = int(required)
        if held & _Perm.ADMINISTRATOR or (needed and held & needed == needed):
            return
        raise ValueError(
            f"command {command['name']!r} needs permissions {needed:#x}, which user {user_id} "
            "lacks: Discord does not offer it (force=True: the server overrode that)"
        )

    def _new_interaction(
        self,
        kind: int,
        command_type: int,
        data: JsonObject,
        channel: _Channel,
        user_id: int,
        attachment_size_limit: int,
        locale: str,
        *,
        message: JsonObject | None = None,
        user_install: bool = False,
    ) -> _Interaction:
        if channel.is_group and user_id not in channel.group_ids:
            raise ValueError(f"user {user_id} is not in group DM {channel.id}")
        if not any(
            session.connection is not None and session.receives(channel.guild_id)
            for session in self._sessions.values()
        ):
            raise RuntimeError(
                "no bot is connected to the gateway to receive the interaction (sessions: "
                f"{self.sessions}, guild {channel.guild_id})"
            )
        interaction_id = self._snowflake()
        token = f"aW50ZXJhY3Rpb246{interaction_id}" + secrets.token_urlsafe(48)
        user = copy.deepcopy(self._user(user_id))
        self._join(channel, user_id)
        payload: JsonObject = {
            "id": str(interaction_id),
            "application_id": str(self.application_id),
            "type": kind,
            "data": data,
            "token": token,
            "version": 1,
            "locale": locale,
            "entitlements": [],
            "entitlement_sku_ids": [],
            "attachment_size_limit": attachment_size_limit,
            "channel": self._channel_payload(channel),
            "channel_id": str(channel.id),
        }
        # Who installed the app that this interaction comes through: the guild ("0": its id,
        # "0" in the bot's DM) and/or the user ("1": their id).
        owners: dict[str, str] = {}
        if self._bot_present(channel) and not (user_install and channel.guild_id is None):
            owners[str(GUILD_INSTALL)] = str(channel.guild_id or 0)
        if user_install:
            owners[str(USER_INSTALL)] = str(user_id)
        payload["authorizing_integration_owners"] = owners
        payload["context"] = self._context(channel)
        if channel.guild_id is None:
            payload["user"] = user
            payload["app_permissions"] = str(
                _EVERYONE_PERMISSIONS if self._bot_present(channel) else _USER_INSTALL_PERMISSIONS
            )
        else:
            guild = self._guilds[channel.guild_id]
            payload["guild_id"] = str(guild.id)
            payload["guild"] = {"id": str(guild.id), "locale": "en-US", "features": []}
            payload["guild_locale"] = "en-US"
            payload["member"] = {
                **self._member(guild, user_id),
                "permissions": str(guild.permissions_of(user_id)),
            }
            payload["app_permissions"] = str(
                guild.bot_permissions if guild.bot_member else _USER_INSTALL_PERMISSIONS
            )
        if message is not None:
            payload["message"] = copy.deepcopy(message)
        interaction = _Interaction(
            id=interaction_id,
            token=token,
            kind=kind,
            command_type=command_type,
            user_id=user_id,
            channel_id=channel.id,
            guild_id=channel.guild_id,
            attachment_size_limit=attachment_size_limit,
            payload=payload,
            created_at=time.monotonic(),
        )
        self._interactions[interaction_id] = interaction
        self._by_token[token] = interaction
        self._dispatch("INTERACTION_CREATE", payload, guild_id=channel.guild_id)
        return interaction

    def _response_message(
        self, interaction: _Interaction, fields: JsonObject, *, flags: int, original: bool
    ) -> JsonObject:
        """A message the interaction's webhook posts: by the bot, marked with the interaction."""
        channel = self._channels[interaction.channel_id]
        if not original or interaction.kind == 3:
            message_type = 0
        else:
            message_type = 20 if interaction.command_type == 1 else 23
        message = self._new_message(
            channel, self._bot_user(), message_type=message_type, flags=flags
        )
        message.update(fields)
        if flags & _SUPPRESS_EMBEDS:
            message["embeds"] = []
        message["webhook_id"] = str(self.application_id)
        message["application_id"] = str(self.application_id)
        metadata: JsonObject = {
            "id": str(interaction.id),
            "type": interaction.kind,
            "user": copy.deepcopy(self._user(interaction.user_id)),
            "authorizing_integration_owners": interaction.payload["authorizing_integration_owners"],
        }
        if not original and interaction.original_id is not None:
            metadata["original_response_message_id"] = str(interaction.original_id)
        message["interaction_metadata"] = metadata
        return message

    def _post_response(self, interaction: _Interaction, message: JsonObject) -> None:
        channel = self._channels[interaction.channel_id]
        owner = interaction.user_id if message["flags"] & _EPHEMERAL else None
        self._store(channel, message, ephemeral_for=owner)

    def _fill_loading(
        self,
        interaction: _Interaction,
        message: JsonObject,
        body: JsonObject,
        files: tuple[UploadedFile, ...],
    ) -> None:
        """The deferred "thinking" message becomes the answer; its ephemerality was fixed by
        the defer."""
        channel = self._channels[interaction.channel_id]
        ephemeral = message["flags"] & _EPHEMERAL
        filled = {
            **message,
            **self._content_fields(body, files, channel, [], ephemeral=bool(ephemeral)),
        }
        filled["flags"] = ephemeral | (
            int(body.get("flags") or 0) & (_SUPPRESS_EMBEDS | _IS_COMPONENTS_V2)
        )
        if filled["flags"] & _SUPPRESS_EMBEDS:
            filled["embeds"] = []
        self._check_not_empty(filled)
        message.update(filled)
        self._dispatch_message("MESSAGE_UPDATE", channel, message)

    def _callback(self, req: _Req) -> _Reply:
        interaction = self._interactions.get(int(req.params["interaction"]))
        if interaction is None or interaction.token != req.params["token"]:
            raise _ApiError(404, 10062, "Unknown interaction")
        if interaction.response_type is not None:
            raise _ApiError(400, 40060, "Interaction has already been acknowledged.")
        sent = interaction.dispatched_at
        if sent is None or req.at - sent > self.ack_deadline:
            raise _ApiError(404, 10062, "Unknown interaction")
        body = _object(req.body)
        callback_type = body.get("type")
        if callback_type not in _CALLBACK_TYPES[interaction.kind]:
            raise _form_error(
                ["type"],
                "INTERACTION_CALLBACK_TYPE_INVALID",
                f"Value {callback_type!r} is not a valid interaction callback type here.",
            )
        data = body.get("data") or {}
        if not isinstance(data, dict):
            raise _form_error(["data"], "DICT_TYPE_CONVERT", "Only dictionaries may be used")
        channel = self._channels[interaction.channel_id]
        flags = int(data.get("flags") or 0)
        message: JsonObject | None = None
        if callback_type == 4:
            self._check_upload(req.files, interaction.attachment_size_limit)
            ephemeral = bool(flags & _EPHEMERAL)
            fields = self._content_fields(data, req.files, channel, [], ephemeral=ephemeral)
            message = self._response_message(
                interaction, fields, flags=flags & _INTERACTION_FLAGS, original=True
            )
            self._check_not_empty(message)
        elif callback_type == 5:
            loading = _LOADING | (flags & _EPHEMERAL)
            message = self._response_message(interaction, {}, flags=loading, original=True)
        elif callback_type == 7:
            self._check_upload(req.files, interaction.attachment_size_limit)
            message = self._stored(channel, interaction.target_message_id or 0)
            self._edit_fields(message, data, req.files, channel, limit=None)
            self._dispatch_message("MESSAGE_UPDATE", channel, message)
        elif callback_type == 9 and not (data.get("custom_id") and data.get("title")):
            raise _form_error(["data", "custom_id"], "BASE_TYPE_REQUIRED", "This field is required")
        interaction.response_type = callback_type
        if message is not None:
            interaction.original_id = int(message["id"])
            if callback_type in (4, 5):
                self._post_response(interaction, message)
        elif callback_type == 6:
            interaction.original_id = interaction.target_message_id
        if not _truthy(req.query, "with_response"):
            return _Reply(204)
        callback: JsonObject = {"id": str(interaction.id), "type": interaction.kind}
        resource: JsonObject = {"type": callback_type}
        if message is not None:
            callback.update(
                response_message_id=message["id"],
                response_message_loading=callback_type == 5,
                response_message_ephemeral=bool(message["flags"] & _EPHEMERAL),
            )
            resource["message"] = copy.deepcopy(message)
        return _Reply(200, {"interaction": callback, "resource": resource})

    def _webhook_interaction(self, req: _Req) -> _Interaction:
        if int(req.params["app"]) != self.application_id:
            raise _unknown("Webhook", 10015)
        interaction = self._by_token.get(req.params["token"])
        if interaction is None or req.at - interaction.created_at > self.token_lifetime:
            raise _ApiError(401, 50027, "Invalid Webhook Token")
        if interaction.response_type is None:
            raise _unknown("Webhook", 10015)
        return interaction

    def _webhook_message(self, interaction: _Interaction, req: _Req) -> tuple[_Channel, JsonObject]:
        raw = req.params["message"]
        message_id = interaction.original_id if raw == "@original" else int(raw)
        channel = self._channels[interaction.channel_id]
        known = (interaction.original_id, *interaction.followup_ids)
        message = channel.messages.get(message_id or 0)
        if message_id not in known or message is None:
            raise _unknown("Message", 10008)
        return channel, message

    def _followup(self, req: _Req) -> _Reply:
        interaction = self._webhook_interaction(req)
        body = _object(req.body)
        self._check_upload(req.files, interaction.attachment_size_limit)
        channel = self._channels[interaction.channel_id]
        original = channel.messages.get(interaction.original_id or 0)
        if original is not None and original["flags"] & _LOADING:
            self._fill_loading(interaction, original, body, req.files)
            message = original
        else:
            flags = int(body.get("flags") or 0) & _INTERACTION_FLAGS
            fields = self._content_fields(
                body, req.files, channel, [], ephemeral=bool(flags & _EPHEMERAL)
            )
            message = self._response_message(interaction, fields, flags=flags, original=False)
            self._check_not_empty(message)
            interaction.followup_ids.append(int(message["id"]))
            self._post_response(interaction, message)
        if not _truthy(req.query, "wait"):
            return _Reply(204)
        return _Reply(200, copy.deepcopy(message))

    def _get_webhook_message(self, req: _Req) -> _Reply:
        _, message = self._webhook_message(self._webhook_interaction(req), req)
        return _Reply(200, copy.deepcopy(message))

    def _edit_webhook_message(self, req: _Req) -> _Reply:
        interaction = self._webhook_interaction(req)
        channel, message = self._webhook_message(interaction, req)
        body = _object(req.body)
        self._check_upload(req.files, interaction.attachment_size_limit)
        if message["flags"] & _LOADING:
            self._fill_loading(interaction, message, body, req.files)
        else:
            self._edit_fields(message, body, req.files, channel, limit=None)
            self._dispatch_message("MESSAGE_UPDATE", channel, message)
        return _Reply(200, copy.deepcopy(message))

    def _delete_webhook_message(self, req: _Req) -> _Reply:
        interaction = self._webhook_interaction(req)
        channel, message = self._webhook_message(interaction, req)
        self._remove(channel, message)
        return _Reply(204)

    # REST: users, application, commands

    def _get_gateway(self, req: _Req) -> _Reply:
        return _Reply(200, {"url": self.gateway_url.rstrip("/")})

    def _get_gateway_bot(self, req: _Req) -> _Reply:
        limit = {"total": 1000, "remaining": 999, "reset_after": 14_400_000, "max_concurrency": 1}
        body = {
            "url": self.gateway_url.rstrip("/"),
            "shards": self.recommended_shards,
            "session_start_limit": limit,
        }
        return _Reply(200, body)

    def _get_me(self, req: _Req) -> _Reply:
        me = {
            **self._bot_user(),
            "verified": True,
            "mfa_enabled": False,
            "locale": "en-US",
            "email": None,
            "flags": 0,
            "premium_type": 0,
            "banner": None,
            "accent_color": None,
            "bio": "",
        }
        return _Reply(200, me)

    def _get_user(self, req: _Req) -> _Reply:
        user = self._users.get(int(req.params["user"]))
        if user is None:
            raise _unknown("User", 10013)
        return _Reply(200, copy.deepcopy(user))

    def _create_dm(self, req: _Req) -> _Reply:
        recipient = _int(_object(req.body).get("recipient_id"), "recipient_id")
        if recipient not in self._users or recipient == self.bot_user_id:
            raise _unknown("User", 10013)
        channel = self._channels[self.dm_channel_id(recipient)]
        return _Reply(200, self._channel_payload(channel))

    def _get_application(self, req: _Req) -> _Reply:
        owner = self._user(DEFAULT_USER_ID)
        app: JsonObject = {
            "id": str(self.application_id),
            "name": self.bot_username,
            "icon": None,
            "description": "",
            "summary": "",
            "type": None,
            "hook": True,
            "bot_public": True,
            "bot_require_code_grant": False,
            "verify_key": "0" * 64,
            "flags": self._application_flags(),
            "owner": copy.deepcopy(owner),
            "team": None,
            "bot": self._bot_user(),
            "redirect_uris": [],
            "interactions_endpoint_url": None,
            "approximate_guild_count": sum(guild.bot_member for guild in self._guilds.values()),
            # Installation in the portal: both "Guild Install" and "User Install" enabled.
            "integration_types_config": {"0": {}, "1": {}},
        }
        return _Reply(200, app)

    def _command_scope(self, req: _Req) -> int | None:
        if int(req.params["app"]) != self.application_id:
            raise _ApiError(403, 50001, "Missing Access")
        if "guild" not in req.params:
            return None
        guild_id = int(req.params["guild"])
        if guild_id not in self._guilds:
            raise _unknown("Guild", 10004)
        return guild_id

    def _get_commands(self, req: _Req) -> _Reply:
        return _Reply(200, copy.deepcopy(self._commands.get(self._command_scope(req), [])))

    def _put_commands(self, req: _Req) -> _Reply:
        """Bulk overwrite: the list replaces what was there; a name keeps its id across syncs."""
        scope = self._command_scope(req)
        if not isinstance(req.body, list):
            raise _form_error([], "LIST_TYPE_CONVERT", "Must be a list.")
        stored: list[JsonObject] = []
        seen: set[tuple[str, int]] = set()
        for index, raw in enumerate(req.body):
            command = self._checked_command(index, raw)
            key = (command["name"], command["type"])
            if key in seen:
                raise _form_error(
                    [index, "name"],
                    "APPLICATION_COMMANDS_DUPLICATE_NAME",
                    f"Application command names must be unique: {command['name']}",
                )
            seen.add(key)
            command_id = self._command_ids.setdefault((scope, *key), self._snowflake())
            command.update(
                id=str(command_id),
                application_id=str(self.application_id),
                version=str(self._snowflake()),
            )
            if scope is not None:
                command["guild_id"] = str(scope)
                command.pop("dm_permission", None)
            stored.append(command)
        for command_type, most in ((1, 100), (2, 5), (3, 5)):
            if sum(1 for _, kind in seen if kind == command_type) > most:
                raise _ApiError(
                    400, 30032, f"Maximum number of application commands reached ({most})"
                )
        self._commands[scope] = stored
        return _Reply(200, copy.deepcopy(stored))

    @staticmethod
    def _checked_command(index: int, raw: Any) -> JsonObject:
        command = dict(_object(raw))
        command_type = command.get("type") or 1
        name = command.get("name")
        if command_type not in (1, 2, 3):
            raise _form_error(
                [index, "type"], "BASE_TYPE_CHOICES", "Value must be one of {1, 2, 3}."
            )
        if not isinstance(name, str) or not 1 <= len(name) <= 32:
            raise _form_error(
                [index, "name"], "BASE_TYPE_BAD_LENGTH", "Must be between 1 and 32 in length."
            )
        description = command.get("description") or ""
        if command_type == 1:
            if not _COMMAND_NAME.fullmatch(name) or name != name.lower():
                raise _form_error(
                    [index, "name"], "APPLICATION_COMMAND_INVALID_NAME", "Command name is invalid"
                )
            if not 1 <= len(description) <= 100:
                raise _form_error(
                    [index, "description"],
                    "BASE_TYPE_BAD_LENGTH",
                    "Must be between 1 and 100 in length.",
                )
        elif description:
            raise _form_error(
                [index, "description"],
                "APPLICATION_COMMAND_CONTEXT_MENU_DESCRIPTION",
                "Context menu commands cannot have description",
            )
        options = command.get("options") or []
        optional_seen = False
        for number, option in enumerate(options):
            if not isinstance(option, dict) or not _COMMAND_NAME.fullmatch(str(option.get("name"))):
                raise _form_error(
                    [index, "options", number, "name"],
                    "APPLICATION_COMMAND_INVALID_NAME",
                    "Command name is invalid",
                )
            if option.get("required") and optional_seen:
                raise _form_error(
                    [index, "options", number, "required"],
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                )
            optional_seen = optional_seen or not option.get("required")
        for key, allowed in (("integration_types", (0, 1)), ("contexts", (0, 1, 2))):
            values = command.get(key)
            if values is not None and (
                not isinstance(values, list) or any(value not in allowed for value in values)
            ):
                raise _form_error(
                    [index, key], "BASE_TYPE_CHOICES", f"Value must be one of {set(allowed)}."
                )
        permissions = command.get("default_member_permissions")
        command.update(
            type=command_type,
            description=description,
            default_member_permissions=None if permissions is None else str(permissions),
            nsfw=bool(command.get("nsfw")),
            contexts=command.get("contexts"),
            integration_types=command.get("integration_types") or [0],
            # Kept as given, as Discord does (null when none), by locale.
            name_localizations=command.get("name_localizations") or None,
            description_localizations=command.get("description_localizations") or None,
        )
        if options:
            command["options"] = options
        else:
            command.pop("options", None)
        return command

    # REST: channels and messages

    def _channel(self, req: _Req) -> _Channel:
        """A channel the bot may reach by channel routes: one where it is."""
        channel = self._channels.get(int(req.params["channel"]))
        if channel is None:
            raise _unknown("Channel", 10003)
        if not self._bot_present(channel):
            raise _ApiError(403, 50001, "Missing Access")
        return channel

    def _channel_message(self, req: _Req) -> tuple[_Channel, JsonObject]:
        """A message the bot can reach by channel routes (ephemeral ones are not there)."""
        channel = self._channel(req)
        message_id = int(req.params["message"])
        message = channel.messages.get(message_id)
        if message is None or message_id in self._ephemeral_owner:
            raise _unknown("Message", 10008)
        return channel, message

    def _get_channel(self, req: _Req) -> _Reply:
        return _Reply(200, self._channel_payload(self._channel(req)))

    def _get_messages(self, req: _Req) -> _Reply:
        channel = self._channel(req)
        limit = min(max(int(req.query.get("limit") or 50), 1), 100)
        before = int(req.query.get("before") or 1 << 63)
        after = int(req.query.get("after") or 0)
        newest_first = [
            self._rest_view(message)
            for message_id, message in reversed(channel.messages.items())
            if after < message_id < before and message_id not in self._ephemeral_owner
        ]
        return _Reply(200, newest_first[:limit])

    def _get_message(self, req: _Req) -> _Reply:
        _, message = self._channel_message(req)
        return _Reply(200, self._rest_view(message))

    def _typing(self, req: _Req) -> _Reply:
        self._channel(req)
        return _Reply(204)

    def _create_message(self, req: _Req) -> _Reply:
        channel = self._channel(req)
        body = _object(req.body)
        limit = (
            self._guilds[channel.guild_id].filesize_limit
            if channel.guild_id is not None
            else DEFAULT_UPLOAD_LIMIT
        )
        self._check_upload(req.files, limit)
        flags = int(body.get("flags") or 0) & _CHANNEL_FLAGS
        message = self._new_message(channel, self._bot_user(), flags=flags)
        message.update(self._content_fields(body, req.files, channel, [], ephemeral=False))
        if flags & _SUPPRESS_EMBEDS:
            message["embeds"] = []
        self._check_not_empty(message)
        mentions, replied_user = self._bot_mentions(
            message["content"], channel, body.get("allowed_mentions")
        )
        message["mentions"] = mentions
        reference = body.get("message_reference")
        if isinstance(reference, dict):
            target_channel = self._channels.get(
                _int(reference.get("channel_id") or channel.id, "channel_id")
            )
            target_id = _int(reference.get("message_id"), "message_id")
            target = target_channel.messages.get(target_id) if target_channel else None
            if target is None or target_id in self._ephemeral_owner:
                if reference.get("fail_if_not_exists", True):
                    raise _form_error(
                        ["message_reference"],
                        "MESSAGE_REFERENCE_UNKNOWN_MESSAGE",
                        "Unknown message",
                    )
            else:
                self._reply(message, channel, target, replied_user=replied_user)
        self._store(channel, message)
        return _Reply(200, self._rest_view(message))

    def _edit_fields(
        self,
        message: JsonObject,
        body: JsonObject,
        files: tuple[UploadedFile, ...],
        channel: _Channel,
        *,
        limit: int | None,
    ) -> None:
        """Apply an edit by the message's author; only SUPPRESS_EMBEDS of the flags changes."""
        if limit is not None:
            self._check_upload(files, limit)
        ephemeral = bool(message["flags"] & _EPHEMERAL)
        updated = {**message}
        updated.update(
            self._content_fields(
                body,
                files,
                channel,
                message["attachments"],
                ephemeral=ephemeral,
                v2=bool(message["flags"] & _IS_COMPONENTS_V2),
            )
        )
        self._check_not_empty(updated)
        if body.get("flags") is not None:
            # IS_COMPONENTS_V2 can be set by an edit, never taken off.
            changed = int(body["flags"]) & (_SUPPRESS_EMBEDS | _IS_COMPONENTS_V2)
            updated["flags"] = (message["flags"] & ~_SUPPRESS_EMBEDS) | changed
            if changed & _IS_COMPONENTS_V2:
                updated["content"], updated["embeds"] = "", []
        if updated["flags"] & _SUPPRESS_EMBEDS:
            updated["embeds"] = []
        updated["edited_timestamp"] = _now_iso()
        message.update(updated)

    def _edit_message(self, req: _Req) -> _Reply:
        channel, message = self._channel_message(req)
        body = _object(req.body)
        if int(message["author"]["id"]) == self.bot_user_id:
            limit = (
                self._guilds[channel.guild_id].filesize_limit
                if channel.guild_id is not None
                else DEFAULT_UPLOAD_LIMIT
            )
            self._edit_fields(message, body, req.files, channel, limit=limit)
        else:
            if req.files or any(body.get(name) is not None for name in _CONTENT_FIELDS):
                raise _ApiError(403, 50005, "Cannot edit a message authored by another user")
            if body.get("flags") is not None:
                self._check_moderation(channel)
                suppress = int(body["flags"]) & _SUPPRESS_EMBEDS
                message["flags"] = (message["flags"] & ~_SUPPRESS_EMBEDS) | suppress
                if suppress:
                    message["embeds"] = []
        self._dispatch_message("MESSAGE_UPDATE", channel, message)
        return _Reply(200, self._rest_view(message))

    def _check_moderation(self, channel: _Channel) -> None:
        """Acting on someone else's message needs Manage Messages, which DMs never grant."""
        if channel.guild_id is None:
            raise _ApiError(403, 50003, "Cannot execute action on a DM channel")
        if not self._guilds[channel.guild_id].bot_can_manage_messages:
            raise _missing_permissions()

    def _delete_message(self, req: _Req) -> _Reply:
        channel, message = self._channel_message(req)
        if int(message["author"]["id"]) != self.bot_user_id:
            self._check_moderation(channel)
        self._remove(channel, message)
        return _Reply(204)

    def _remove(self, channel: _Channel, message: JsonObject) -> None:
        message_id = int(message["id"])
        ephemeral = message_id in self._ephemeral_owner
        del channel.messages[message_id]
        self._reactions.pop(message_id, None)
        if not ephemeral:
            event: JsonObject = {"id": str(message_id), "channel_id": str(channel.id)}
            if channel.guild_id is not None:
                event["guild_id"] = str(channel.guild_id)
            intent = Intent.GUILD_MESSAGES if channel.guild_id else Intent.DIRECT_MESSAGES
            self._dispatch("MESSAGE_DELETE", event, guild_id=channel.guild_id, intent=intent)

    @staticmethod
    def _emoji(req: _Req) -> str:
        emoji = req.params["emoji"]
        # Custom emoji (name:id) would need to exist; plain words are no emoji at all.
        if ":" in emoji or emoji.isascii():
            raise _ApiError(400, 10014, "Unknown Emoji")
        return emoji

    def _reaction_event(
        self, name: str, channel: _Channel, message: JsonObject, emoji: str
    ) -> None:
        event: JsonObject = {
            "user_id": str(self.bot_user_id),
            "channel_id": str(channel.id),
            "message_id": message["id"],
            "emoji": {"id": None, "name": emoji},
            "burst": False,
            "type": 0,
        }
        if name == "MESSAGE_REACTION_ADD":
            event["message_author_id"] = message["author"]["id"]
        if channel.guild_id is not None:
            event["guild_id"] = str(channel.guild_id)
            if name == "MESSAGE_REACTION_ADD":
                event["member"] = self._member(self._guilds[channel.guild_id], self.bot_user_id)
        intent = (
            Intent.GUILD_MESSAGE_REACTIONS if channel.guild_id else Intent.DIRECT_MESSAGE_REACTIONS
        )
        self._dispatch(name, event, guild_id=channel.guild_id, intent=intent)

    def _add_reaction(self, req: _Req) -> _Reply:
        channel, message = self._channel_message(req)
        emoji = self._emoji(req)
        mine = self._reactions.setdefault(int(message["id"]), [])
        if emoji not in mine:
            mine.append(emoji)
            reactions = message.setdefault("reactions", [])
            reactions.append(
                {
                    "count": 1,
                    "count_details": {"burst": 0, "normal": 1},
                    "me": True,
                    "me_burst": False,
                    "burst_colors": [],
                    "emoji": {"id": None, "name": emoji},
                }
            )
            self._reaction_event("MESSAGE_REACTION_ADD", channel, message, emoji)
        return _Reply(204)

    def _remove_reaction(self, req: _Req) -> _Reply:
        channel, message = self._channel_message(req)
        emoji = self._emoji(req)
        mine = self._reactions.get(int(message["id"]), [])
        if emoji in mine:
            mine.remove(emoji)
            message["reactions"] = [
                reaction
                for reaction in message.get("reactions", [])
                if reaction["emoji"]["name"] != emoji
            ]
            if not message["reactions"]:
                del message["reactions"]
            self._reaction_event("MESSAGE_REACTION_REMOVE", channel, message, emoji)
        return _Reply(204)

    # HTTP plumbing

    async def _handle_rest(self, request: web.Request) -> web.StreamResponse:
        at = time.monotonic()
        path = "/" + request.match_info["tail"]
        query = dict(request.query)
        body: Any = None
        files: tuple[UploadedFile, ...] = ()
        try:
            if request.match_info["version"] not in _API_VERSIONS:
                raise _ApiError(400, 50041, "Invalid API Version")
            handler, params, auth = self._route(request.method, path)
            if auth and request.headers.get(hdrs.AUTHORIZATION) != f"Bot {self.token}":
                raise _ApiError(401, 0, "401: Unauthorized")
            body, files = await self._read_body(request)
            failure = next(
                (
                    f
                    for f in self._failures
                    if f.method in ("*", request.method) and f.pattern.match(path)
                ),
                None,
            )
            if failure is not None:
                self._failures.remove(failure)
                injected: _Reply | None = failure.reply
            else:
                injected = self._random_fault(path)
            if injected is not None:
                self.faults.append((request.method, path, injected.status))
                reply = injected
            else:
                reply = handler(_Req(params, query, body, files, at))
        except _ApiError as error:
            reply = error.reply()
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            # Malformed input answers 400 as on Discord; a 500 would make discord.py retry for 25 s.
            reply = _form_error([], "STAND_IN_REJECTED", f"{type(error).__name__}: {error}").reply()
        finally:
            if not request.content.at_eof():
                await request.release()
        self._requests.append(
            RestCall(
                method=request.method,
                path=path,
                query=query,
                json=body,
                files=files,
                headers=dict(request.headers),
                at=at,
                status=reply.status,
                response=reply.body,
            )
        )
        self._requests_changed.set()
        self._requests_changed = asyncio.Event()
        return self._json_response(reply)

    def _route(self, method: str, path: str) -> tuple[_Handler, dict[str, str], bool]:
        path_known = False
        for route_method, pattern, handler, auth in self._routes:
            match = pattern.fullmatch(path)
            if match is None:
                continue
            path_known = True
            if route_method == method:
                params = {k: v for k, v in match.groupdict().items() if v is not None}
                return handler, params, auth
        if path_known:
            raise _ApiError(405, 0, "405: Method Not Allowed")
        raise _ApiError(404, 0, "404: Not Found")

    async def _read_body(self, request: web.Request) -> tuple[Any, tuple[UploadedFile, ...]]:
        if not request.body_exists:
            return None, ()
        if request.content_type == "multipart/form-data":
            return await self._read_multipart(request)
        raw = await request.read()
        if not raw:
            return None, ()
        if request.content_type != "application/json":
            raise _form_error(
                [],
                "CONTENT_TYPE_INVALID",
                "Expected \"Content-Type\" header to be one of {'application/json', "
                "'multipart/form-data'}.",
            )
        return self._parse_json(raw), ()

    @staticmethod
    def _parse_json(raw: str | bytes) -> Any:
        try:
            return json.loads(raw)
        except ValueError:
            raise _ApiError(400, 50109, "The request body contains invalid JSON.") from None

    async def _read_multipart(self, request: web.Request) -> tuple[Any, tuple[UploadedFile, ...]]:
        """``payload_json`` plus ``files[n]`` parts; other plain fields join the payload."""
        body: Any = {}
        fields: JsonObject = {}
        files: list[UploadedFile] = []
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            if part.filename is not None:
                files.append(
                    UploadedFile(
                        filename=part.filename,
                        content_type=part.headers.get(
                            hdrs.CONTENT_TYPE, "application/octet-stream"
                        ),
                        data=bytes(await part.read()),
                        field=part.name or "",
                    )
                )
            elif part.name == "payload_json":
                body = self._parse_json(await part.text())
            elif part.name:
                fields[part.name] = await part.text()
        if isinstance(body, dict):
            body = {**fields, **body}
        return body, tuple(files)

    async def _handle_attachment(self, request: web.Request) -> web.StreamResponse:
        data = self._attachment_data.get(int(request.match_info["attachment"]))
        if data is None:
            return self._json_response(_Reply(404, {"message": "404: Not Found", "code": 0}))
        content_type = mimetypes.guess_type(request.match_info["filename"])[0]
        return web.Response(body=data, content_type=content_type or "application/octet-stream")

    async def _handle_unrouted(self, request: web.Request) -> web.StreamResponse:
        return self._json_response(_Reply(404, {"message": "404: Not Found", "code": 0}))

    @staticmethod
    def _json_response(reply: _Reply) -> web.Response:
        if reply.status == 204:
            return web.Response(status=204, headers=reply.headers)
        # Built from bytes: with text= aiohttp appends "; charset=utf-8", and discord.py parses
        # a body as JSON only when the Content-Type is exactly "application/json".
        return web.Response(
            status=reply.status,
            body=json.dumps(reply.body).encode(),
            headers={**reply.headers, hdrs.CONTENT_TYPE: "application/json"},
        )

    def _describe(self, call: RestCall) -> str:
        text = f"{call.method} {call.path} -> {call.status}"
        if call.json is not None:
            shown = json.dumps(call.json)
            text += f" {shown[:117] + '...' if len(shown) > 120 else shown}"
        if call.files:
            text += f" files={[(f.filename, len(f.data)) for f in call.files]}"
        return text
