"""Discord sharding and the two roles, with the real discord.py against the Discord stand-in.

A receiver holds gateway shards and takes only its shards' guilds (DESIGN.md section 13:
``shard_id = (guild_id >> 22) % shard_count``); a worker only logs in and answers over REST.
The core is reduced to a real `Intake` over a queue that keeps what it is given.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import discord
import pytest
import yarl
from pydantic import SecretStr

from adapters.discord import DiscordSettings
from adapters.discord.app import DiscordAdapter
from adapters.discord.inbound import InteractionOrigin, MessageOrigin
from bot.intake import Intake
from bot.model import ClipInfo, Manner, Media, VideoRequest
from bot.retry import Retrying, RetryPolicy
from bot.sites import SiteCatalog
from bot.stores.memory_limits import MemoryRateLimits
from tests.standins.discord_api import DEFAULT_GUILD_ID, FakeDiscord, shard_id_for

POST = "7301234567890123456"
LINK = f"https://www.tiktok.com/@dancer/video/{POST}"
# Guild ids are snowflakes: one more in the timestamp bits is the next shard.
NEXT_SHARD = 1 << 22
LOADING = 1 << 7
EPHEMERAL = 1 << 6


async def identify_at_once(shard_id: int | None, *, initial: bool = False) -> None:
    """discord.py waits 5 s before each IDENTIFY after a process's first (Discord's identify
    rate limit); the stand-in does not enforce it, so tests skip the wait."""


class KeptQueue:
    """A JobQueue that keeps what it is given, as the distributed queue would carry it."""

    def __init__(self) -> None:
        self.taken: list[VideoRequest] = []
        self._arrived: asyncio.Queue[VideoRequest] = asyncio.Queue()

    async def submit(self, request: VideoRequest) -> bool:
        self.taken.append(request)
        self._arrived.put_nowait(request)
        return True

    async def next(self) -> VideoRequest:
        return await asyncio.wait_for(self._arrived.get(), 5)


@dataclass
class Process:
    """What one `python -m bot receive` / `work` process holds of Discord."""

    adapter: DiscordAdapter
    queue: KeptQueue = field(default_factory=KeptQueue)

    @property
    def guild_ids(self) -> set[int]:
        return {guild.id for guild in self.adapter.client.guilds}


StartProcess = Callable[..., Awaitable[Process]]


def make_process(dc: FakeDiscord, **settings: Any) -> Process:
    """An adapter over a real `Intake` whose queue keeps the requests, pointed at `dc`."""
    queue = KeptQueue()
    limits = MemoryRateLimits(user_per_minute=1000, chat_per_minute=1000)
    adapter = DiscordAdapter(
        DiscordSettings(
            _env_file=None,
            discord_bot_token=SecretStr(dc.token),
            discord_api_url=dc.api_url,
            discord_gateway_url=dc.gateway_url,
            **settings,
        ),
        Intake(queue, SiteCatalog(["TikTok"]), limits),
        Retrying(RetryPolicy(deadline_s=10), random.Random(7)),
        guild_ready_timeout=0.1,
    )
    adapter.client.before_identify_hook = identify_at_once  # type: ignore[method-assign]
    return Process(adapter, queue)


@contextlib.asynccontextmanager
async def processes(dc: FakeDiscord) -> AsyncIterator[StartProcess]:
    """Start adapters as separate processes would; stop them all (before `dc` stops: a client
    that sees the stand-in go away reconnects)."""
    started: list[Process] = []

    async def start(*, receive: bool = True, **settings: Any) -> Process:
        process = make_process(dc, **settings)
        started.append(process)
        await process.adapter.start(receive=receive)
        return process

    try:
        yield start
    finally:
        for process in reversed(started):
            await process.adapter.stop()


def guild_on(dc: FakeDiscord, shard_id: int, shard_count: int) -> int:
    """A new guild whose events go to that shard."""
    guild_id = DEFAULT_GUILD_ID
    while True:
        guild_id += NEXT_SHARD
        if shard_id_for(guild_id, shard_count) == shard_id:
            with contextlib.suppress(ValueError):  # that id is taken
                return dc.add_guild(guild_id).id


async def test_each_receiver_gets_only_its_shards_guilds() -> None:
    async with FakeDiscord() as dc, processes(dc) as start:
        assert shard_id_for(dc.guild_id, 2) == 0
        other = guild_on(dc, 1, 2)
        shard0 = await start(
            discord_shard_count=2, discord_shard_ids=(0,), discord_message_content=True
        )
        shard1 = await start(
            discord_shard_count=2, discord_shard_ids=(1,), discord_message_content=True
        )

        assert [(s.shard, s.connected) for s in dc.sessions] == [((0, 2), True), ((1, 2), True)]
        assert [p["shard"] for p in dc.identify_payloads] == [[0, 2], [1, 2]]
        assert (shard0.guild_ids, shard1.guild_ids) == ({dc.guild_id}, {other})
        assert shard0.adapter.connected()
        assert shard1.adapter.connected()

        # A command in a guild of shard 1 reaches only the process holding shard 1, which
        # acknowledges it (Discord's 3 s) and queues the request.
        interaction = dc.inject_slash_command("download", {"url": LINK}, guild_id=other)
        request = await shard1.queue.next()
        assert isinstance(request.origin, InteractionOrigin)
        assert request.origin.token == interaction["token"]
        [callback] = await dc.wait_for_request("POST", f"/interactions/{interaction['id']}/")
        assert (callback.status, callback.json["type"]) == (200, 5)

        # Ordinary messages go by their guild too; a DM goes to shard 0.
        dc.inject_message(LINK, guild_id=other)
        in_other = await shard1.queue.next()
        dc.inject_message(LINK)
        in_first = await shard0.queue.next()
        dc.inject_dm(LINK)
        in_dm = await shard0.queue.next()
        dc.inject_slash_command("download", {"url": LINK}, guild_id=None)
        command_in_dm = await shard0.queue.next()
        assert isinstance(command_in_dm.origin, InteractionOrigin)
        assert isinstance(in_other.origin, MessageOrigin)
        assert isinstance(in_first.origin, MessageOrigin)
        assert isinstance(in_dm.origin, MessageOrigin)
        assert (in_other.origin.guild_id, in_first.origin.guild_id, in_dm.origin.guild_id) == (
            other,
            dc.guild_id,
            None,
        )

        await asyncio.sleep(0.1)  # nothing else arrives late
        assert len(shard0.queue.taken) == 3
        assert len(shard1.queue.taken) == 2
        routed = [
            (event.name, event.shard)
            for event in dc.dispatched
            if event.name in ("GUILD_CREATE", "INTERACTION_CREATE")
        ]
        assert routed == [
            ("GUILD_CREATE", (0, 2)),
            ("GUILD_CREATE", (1, 2)),
            ("INTERACTION_CREATE", (1, 2)),
            ("INTERACTION_CREATE", (0, 2)),
        ]
        for event in dc.dispatched:
            guild_id = event.data.get("guild_id")
            if event.name.startswith(("MESSAGE_", "INTERACTION_")):
                expected = shard_id_for(int(guild_id) if guild_id else None, 2)
                assert event.shard == (expected, 2), event

        # A guild joining later is announced to its shard only.
        joined = guild_on(dc, 0, 2)
        await asyncio.sleep(0.1)
        assert (shard0.guild_ids, shard1.guild_ids) == ({dc.guild_id, joined}, {other})


async def test_unset_shards_run_as_many_as_discord_recommends() -> None:
    async with FakeDiscord(recommended_shards=3) as dc, processes(dc) as start:
        on_shard = [guild_on(dc, n, 3) for n in range(3)]
        guilds = [dc.guild_id, *on_shard]
        process = await start()
        client = process.adapter.client

        assert len(dc.requests_to("GET", "/gateway/bot$")) == 1
        assert len(dc.gateway_connects) == 3
        assert [s.shard for s in dc.sessions] == [(0, 3), (1, 3), (2, 3)]
        assert (client.shard_count, sorted(client.shards)) == (3, [0, 1, 2])
        assert process.guild_ids == set(guilds)
        assert {guild.id: guild.shard_id for guild in client.guilds} == {
            guild_id: shard_id_for(guild_id, 3) for guild_id in guilds
        }
        assert process.adapter.connected()

        dc.inject_slash_command("download", {"url": LINK}, guild_id=on_shard[2])
        await process.queue.next()
        [event] = [e for e in dc.dispatched if e.name == "INTERACTION_CREATE"]
        assert event.shard == (2, 3)


async def test_discord_py_alone_asks_gateway_bot_for_the_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stand-in as discord.py's own path sees it: no count, so GET /gateway/bot, then one
    IDENTIFY per shard at the URL it names."""
    async with FakeDiscord(recommended_shards=2) as dc:
        other = guild_on(dc, 1, 2)
        monkeypatch.setattr(discord.http.Route, "BASE", dc.api_url)
        # Nothing listens here: the first connections must go where /gateway/bot says.
        monkeypatch.setattr(
            discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL("ws://127.0.0.1:9/")
        )
        client = discord.AutoShardedClient(
            intents=discord.Intents(guilds=True), guild_ready_timeout=0.1
        )
        client.before_identify_hook = identify_at_once  # type: ignore[method-assign]
        await client.login(dc.token)
        connection = asyncio.create_task(client.connect(reconnect=False))
        try:
            await asyncio.wait_for(client.wait_until_ready(), 10)
            assert client.shard_count == 2
            assert [s.shard for s in dc.sessions] == [(0, 2), (1, 2)]
            guild, joined = client.get_guild(dc.guild_id), client.get_guild(other)
            assert guild is not None
            assert joined is not None
            assert (guild.shard_id, joined.shard_id) == (0, 1)
        finally:
            await client.close()
            await asyncio.wait_for(connection, 5)
        assert not dc.connected


async def test_a_worker_answers_over_rest_without_the_gateway(tmp_path: Path) -> None:
    async with FakeDiscord() as dc, processes(dc) as start:
        worker = await start(receive=False)
        assert dc.gateway_connects == []
        assert [(c.method, c.path) for c in dc.requests] == [
            ("GET", "/users/@me"),
            ("GET", "/oauth2/applications/@me"),
        ]  # no command sync, no /gateway/bot
        assert worker.adapter.connected()

        receiver = await start(discord_message_content=True)
        assert len(dc.gateway_connects) == 1
        interaction = dc.inject_slash_command("download", {"url": LINK})
        from_command = await receiver.queue.next()
        posted = dc.inject_message(f"look {LINK}")
        from_message = await receiver.queue.next()

        video = tmp_path / "clip.mp4"
        video.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(2048))
        info = ClipInfo(POST, "dancer", "Dancer", "a small dance", LINK)
        media = Media(video, 360, 640, 2.0, video.stat().st_size, None, info)
        await worker.adapter.replier.deliver(from_command.origin, media, Manner())
        await worker.adapter.replier.deliver(from_message.origin, media, Manner())

        assert len(dc.gateway_connects) == 1  # the receiver's only
        followup = dc.interaction_responses(interaction["id"])[-1]
        assert (followup.method, followup.status) == ("POST", 200)
        assert [f.filename for f in followup.files] == [f"{POST}.mp4"]
        [reply] = [
            call
            for call in dc.requests_to("POST", f"/channels/{dc.channel_id}/messages$")
            if call.status == 200
        ]
        assert str(reply.json["message_reference"]["message_id"]) == posted["id"]
        assert [f.filename for f in reply.files] == [f"{POST}.mp4"]
        answers = [
            m for m in dc.messages_in(dc.channel_id) if int(m["author"]["id"]) == dc.bot_user_id
        ]
        assert [len(m["attachments"]) for m in answers] == [1, 1]
        assert not any(m["flags"] & (LOADING | EPHEMERAL) for m in answers)

        await worker.adapter.stop()
        assert not worker.adapter.connected()
        assert receiver.adapter.connected()
        # The receiver's REST still goes to the stand-in after the worker let go of it.
        assert dc.api_url == discord.http.Route.BASE


async def test_health_follows_the_lifecycle() -> None:
    library_urls = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    async with FakeDiscord() as dc:
        process = make_process(dc, discord_shard_count=2)
        never_started = make_process(dc)
        assert not process.adapter.connected()
        try:
            await process.adapter.start()
            assert process.adapter.connected()
            assert [s.shard for s in dc.sessions] == [(0, 2), (1, 2)]

            # One shard dropped: the others stay, and it resumes its session.
            await dc.disconnect(4000, shard=1)
            async with asyncio.timeout(10):
                while not all(s.connected for s in dc.sessions):  # noqa: ASYNC110 - polled view
                    await asyncio.sleep(0.02)
            assert process.adapter.connected()
            resumed = [e.shard for e in dc.dispatched if e.name == "RESUMED"]
            assert resumed == [(1, 2)]
        finally:
            await process.adapter.stop()
        await never_started.adapter.stop()

        assert not process.adapter.connected()
        assert not never_started.adapter.connected()
        assert not dc.connected
    now = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)
    assert now == library_urls


async def test_an_invalid_shard_is_refused() -> None:
    async with (
        FakeDiscord() as dc,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{dc.gateway_url}?v=10&encoding=json") as ws,
    ):
        hello = await ws.receive_json()
        assert hello["op"] == 10
        identify = {"token": dc.token, "intents": 1, "properties": {}, "shard": [2, 2]}
        await ws.send_json({"op": 2, "d": identify})
        closing = await ws.receive()
        assert (closing.type, closing.data) == (aiohttp.WSMsgType.CLOSE, 4010)
    assert dc.sessions == []
