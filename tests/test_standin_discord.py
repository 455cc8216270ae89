"""The Discord stand-in, driven by the real discord.py client over local sockets."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import discord
import pytest
import yarl
from discord import app_commands

from tests.standins.discord_api import (
    DEFAULT_CHANNEL_ID,
    DEFAULT_GUILD_ID,
    DEFAULT_USER_ID,
    MIB,
    FakeDiscord,
)

T = TypeVar("T")
READY_TIMEOUT = 0.05
TIKTOK = "https://vm.tiktok.com/ZMabc123/"


@dataclass
class Bot:
    """A real discord.py client connected to the stand-in, and what it received."""

    client: discord.Client
    tree: app_commands.CommandTree[discord.Client]
    connection: asyncio.Task[None] | None = None
    messages: asyncio.Queue[discord.Message] = field(default_factory=asyncio.Queue)

    async def next_message(self) -> discord.Message:
        return await asyncio.wait_for(self.messages.get(), 5)


StartBot = Callable[..., Awaitable[Bot]]


@pytest.fixture
async def dc() -> AsyncIterator[FakeDiscord]:
    async with FakeDiscord() as fake:
        yield fake


@pytest.fixture
def make_bot(dc: FakeDiscord, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Bot]:
    """Clients pointed at the stand-in; class attributes, so restored after the test."""
    monkeypatch.setattr(discord.http.Route, "BASE", dc.api_url)
    monkeypatch.setattr(
        discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(dc.gateway_url)
    )

    def make(intents: discord.Intents | None = None) -> Bot:
        client = discord.Client(
            intents=intents or discord.Intents.default(), guild_ready_timeout=READY_TIMEOUT
        )
        bot = Bot(client=client, tree=app_commands.CommandTree(client))

        @client.event
        async def on_message(message: discord.Message) -> None:
            bot.messages.put_nowait(message)

        return bot

    return make


@pytest.fixture
async def start_bot(dc: FakeDiscord, make_bot: Callable[..., Bot]) -> AsyncIterator[StartBot]:
    """Log in, connect, wait for on_ready; close every started client afterwards."""
    started: list[Bot] = []

    async def start(**kwargs: Any) -> Bot:
        bot = make_bot(**kwargs)
        started.append(bot)
        await bot.client.login(dc.token)
        bot.connection = asyncio.create_task(bot.client.connect(reconnect=False))
        await asyncio.wait_for(bot.client.wait_until_ready(), 5)
        return bot

    yield start
    for bot in started:
        await bot.client.close()
        if bot.connection is not None:
            await asyncio.wait_for(bot.connection, 5)


def _file(size: int, name: str = "clip.mp4") -> tuple[bytes, discord.File]:
    data = bytes(range(256)) * (size // 256) + b"\x00" * (size % 256)
    return data, discord.File(io.BytesIO(data), filename=name)


# Gateway: connecting, READY, guilds


async def test_login_identify_and_ready(dc: FakeDiscord, start_bot: StartBot) -> None:
    intents = discord.Intents.none()
    intents.guilds = True
    bot = await start_bot(intents=intents)
    client = bot.client

    await dc.wait_ready()
    assert client.user is not None
    assert (client.user.id, client.user.bot) == (dc.bot_user_id, True)
    assert client.application_id == dc.application_id
    assert dc.identified.is_set()
    assert dc.identified_intents == intents.value
    assert dc.identify_payloads[0]["token"] == dc.token
    # discord.py asks for zlib-stream transport compression; the frames are deflated to match.
    assert dc.gateway_connects[0] == {"v": "10", "encoding": "json", "compress": "zlib-stream"}
    guild = client.get_guild(DEFAULT_GUILD_ID)
    assert guild is not None
    assert not guild.unavailable
    assert guild.me is not None
    assert guild.filesize_limit == 10 * MIB
    channel = guild.get_channel(DEFAULT_CHANNEL_ID)
    assert isinstance(channel, discord.TextChannel)
    assert [call.path for call in dc.requests] == ["/users/@me", "/oauth2/applications/@me"]
    assert not dc.requests_to("GET", "/gateway")


@pytest.mark.parametrize(
    ("tier", "limit"), [(0, 10 * MIB), (1, 10 * MIB), (2, 50 * MIB), (3, 100 * MIB)]
)
async def test_filesize_limit_follows_the_boost_tier(
    dc: FakeDiscord, start_bot: StartBot, tier: int, limit: int
) -> None:
    dc.add_guild(7001, premium_tier=tier)

    bot = await start_bot()

    guild = bot.client.get_guild(7001)
    assert guild is not None
    assert (guild.premium_tier, guild.filesize_limit) == (tier, limit)


async def test_guild_changes_reach_a_connected_bot(dc: FakeDiscord, start_bot: StartBot) -> None:
    bot = await start_bot()
    joined: asyncio.Future[discord.Guild] = asyncio.get_running_loop().create_future()

    @bot.client.event
    async def on_guild_join(guild: discord.Guild) -> None:
        joined.set_result(guild)

    dc.guild.premium_tier = 3
    dc.guild.bot_can_manage_messages = True
    dc.update_guild(dc.guild)
    dc.add_guild(7002, premium_tier=2)

    assert (await asyncio.wait_for(joined, 5)).filesize_limit == 50 * MIB
    guild = bot.client.get_guild(DEFAULT_GUILD_ID)
    assert guild is not None
    assert guild.filesize_limit == 100 * MIB
    assert guild.me.guild_permissions.manage_messages


async def test_wrong_token_fails_login(dc: FakeDiscord, make_bot: Callable[..., Bot]) -> None:
    bot = make_bot()

    with pytest.raises(discord.LoginFailure):
        await bot.client.login("not-the-token")
    await bot.client.close()

    [call] = dc.requests
    assert (call.status, call.response) == (401, {"message": "401: Unauthorized", "code": 0})


async def test_privileged_intent_not_enabled_closes_with_4014(
    make_bot: Callable[..., Bot], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FakeDiscord(privileged_intents=0) as strict:
        monkeypatch.setattr(discord.http.Route, "BASE", strict.api_url)
        monkeypatch.setattr(
            discord.gateway.DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(strict.gateway_url)
        )
        bot = make_bot(intents=discord.Intents.all())
        await bot.client.login(strict.token)

        # Only the reconnecting loop turns close code 4014 into PrivilegedIntentsRequired;
        # with reconnect=False discord.py raises the bare ConnectionClosed.
        with pytest.raises(discord.PrivilegedIntentsRequired):
            await asyncio.wait_for(bot.client.connect(reconnect=True), 5)
        await bot.client.close()


async def test_resume_after_a_dropped_connection_replays_missed_events(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot(intents=discord.Intents.default() | discord.Intents(message_content=True))

    await dc.disconnect(4000)
    dc.inject_message("sent while the bot was away")

    message = await bot.next_message()
    assert message.content == "sent while the bot was away"
    assert len(dc.gateway_connects) == 2
    assert [e.name for e in dc.dispatched][-2:] == ["MESSAGE_CREATE", "RESUMED"]


# Application commands


async def test_tree_sync_lands_in_commands_globally_and_per_guild(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()
    guild = discord.Object(id=DEFAULT_GUILD_ID)

    @bot.tree.command(name="download", description="Send the video behind a link")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    async def download(interaction: discord.Interaction, url: str) -> None:
        """Never invoked here."""

    @bot.tree.context_menu(name="Download video", guild=guild)
    async def download_video(interaction: discord.Interaction, message: discord.Message) -> None:
        """Never invoked here."""

    synced = await bot.tree.sync()
    synced_to_guild = await bot.tree.sync(guild=guild)
    again = await bot.tree.sync()

    assert set(dc.commands) == {None, DEFAULT_GUILD_ID}
    [slash] = dc.commands[None]
    assert (slash["name"], slash["type"], slash["contexts"]) == ("download", 1, [0, 1, 2])
    assert slash["options"] == [{"type": 3, "name": "url", "description": "…", "required": True}]
    [menu] = dc.commands[DEFAULT_GUILD_ID]
    assert (menu["name"], menu["type"], menu["guild_id"]) == (
        "Download video",
        3,
        str(DEFAULT_GUILD_ID),
    )
    assert [c.id for c in synced] == [int(slash["id"])] == [c.id for c in again]
    assert [(c.name, c.guild_id) for c in synced_to_guild] == [("Download video", DEFAULT_GUILD_ID)]
    fetched = await bot.tree.fetch_commands(guild=guild)
    assert [c.id for c in fetched] == [int(menu["id"])]


async def test_an_invalid_command_is_refused_as_invalid_form_body(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()
    bad = [{"name": "Download", "description": "capitals are not allowed", "type": 1}]

    with pytest.raises(discord.HTTPException) as refused:
        await bot.client.http.bulk_upsert_global_commands(dc.application_id, payload=bad)

    assert (refused.value.status, refused.value.code) == (400, 50035)
    # discord.py flattens the nested "errors" into its message.
    assert "In 0.name: Command name is invalid" in refused.value.text
    assert dc.commands == {}


async def test_unsynced_commands_cannot_be_injected(dc: FakeDiscord) -> None:
    with pytest.raises(ValueError, match="no command 'download'"):
        dc.inject_slash_command("download", {"url": TIKTOK})


# Interactions


async def _settle(future: asyncio.Future[T], work: Awaitable[T]) -> None:
    """Hand a handler's outcome (or its exception) to the test: the tree only logs errors."""
    try:
        future.set_result(await work)
    except (Exception, pytest.fail.Exception) as error:
        future.set_exception(error)


def _download_command(
    bot: Bot, answer: Callable[[discord.Interaction, str], Awaitable[Any]]
) -> asyncio.Future[Any]:
    """Register /download url:str whose handler runs ``answer``; the future gets its outcome."""
    outcome: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    @bot.tree.command(name="download", description="Send the video behind a link")
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    async def download(interaction: discord.Interaction, url: str) -> None:
        await _settle(outcome, answer(interaction, url))

    return outcome


async def test_slash_command_deferred_then_answered_with_a_file(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()
    data, upload = _file(300_000)

    async def answer(interaction: discord.Interaction, url: str) -> discord.Interaction:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(f"from {url}", file=upload)
        return interaction

    outcome = _download_command(bot, answer)
    await bot.tree.sync()

    sent = dc.inject_slash_command("download", {"url": TIKTOK}, attachment_size_limit=25 * MIB)
    await dc.wait_for_request("POST", f"/webhooks/{dc.application_id}/{sent['token']}$")
    interaction = await asyncio.wait_for(outcome, 5)

    assert (interaction.id, interaction.filesize_limit) == (int(sent["id"]), 25 * MIB)
    assert interaction.guild is not None
    assert interaction.guild.id == DEFAULT_GUILD_ID
    callback, followup = dc.interaction_responses(sent["id"])
    assert (callback.json, callback.query, callback.status) == (
        {"type": 5},
        {"with_response": "1"},
        200,
    )
    assert callback.response["interaction"]["response_message_loading"] is True
    assert (followup.method, followup.query["wait"], followup.status) == ("POST", "1", 200)
    [file_part] = followup.files
    assert (file_part.field, file_part.filename, file_part.data) == ("files[0]", "clip.mp4", data)
    # The first followup after a defer replaces the "thinking…" message.
    [message] = dc.messages_in(dc.channel_id)
    assert message["id"] == callback.response["interaction"]["response_message_id"]
    assert (message["type"], message["flags"], message["content"]) == (20, 0, f"from {TIKTOK}")
    [attachment] = message["attachments"]
    assert (attachment["filename"], attachment["content_type"]) == ("clip.mp4", "video/mp4")
    assert dc.attachment_bytes(attachment) == data


async def test_acknowledging_after_three_seconds_is_unknown_interaction(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()

    async def answer(interaction: discord.Interaction, url: str) -> None:
        await asyncio.sleep(dc.ack_deadline + 0.1)
        await interaction.response.defer(thinking=True)

    outcome = _download_command(bot, answer)
    await bot.tree.sync()

    dc.inject_slash_command("download", {"url": TIKTOK})

    with pytest.raises(discord.NotFound) as late:
        await asyncio.wait_for(outcome, 10)
    assert (late.value.status, late.value.code) == (404, 10062)
    assert late.value.text == "Unknown interaction"


async def test_a_second_acknowledgement_is_refused(dc: FakeDiscord, start_bot: StartBot) -> None:
    bot = await start_bot()

    async def answer(interaction: discord.Interaction, url: str) -> None:
        await interaction.response.defer(thinking=True)
        await interaction.response.defer(thinking=True)

    outcome = _download_command(bot, answer)
    await bot.tree.sync()

    sent = dc.inject_slash_command("download", {"url": TIKTOK})

    # discord.py refuses a second response itself, before any request...
    with pytest.raises(discord.InteractionResponded):
        await asyncio.wait_for(outcome, 5)
    assert len(dc.requests_to("POST", "/interactions/")) == 1
    # ...and Discord refuses it too.
    url = f"{dc.api_url}/interactions/{sent['id']}/{sent['token']}/callback"
    async with aiohttp.ClientSession() as http, http.post(url, json={"type": 5}) as again:
        assert (again.status, again.headers["Content-Type"]) == (400, "application/json")
        assert await again.json() == {
            "message": "Interaction has already been acknowledged.",
            "code": 40060,
        }


async def test_without_with_response_or_wait_the_answers_are_empty(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()

    async def answer(interaction: discord.Interaction, url: str) -> None:
        """Leaves the interaction to the raw requests below."""

    outcome = _download_command(bot, answer)
    await bot.tree.sync()
    sent = dc.inject_slash_command("download", {"url": TIKTOK})
    await asyncio.wait_for(outcome, 5)

    callback = f"{dc.api_url}/interactions/{sent['id']}/{sent['token']}/callback"
    webhook = f"{dc.api_url}/webhooks/{dc.application_id}/{sent['token']}"
    async with aiohttp.ClientSession() as http:
        async with http.post(callback, json={"type": 5, "data": {"flags": 64}}) as acked:
            assert (acked.status, await acked.read()) == (204, b"")
        async with http.post(webhook, json={"content": "first"}) as first:
            assert (first.status, await first.read()) == (204, b"")
        async with http.post(webhook, params={"wait": "true"}, json={"content": "next"}) as nxt:
            assert (nxt.status, (await nxt.json())["content"]) == (200, "next")
    # The first followup filled the ephemeral "thinking…" message: only its user sees it.
    assert [m["content"] for m in dc.messages_in(dc.channel_id)] == ["next"]
    mine = dc.messages_in(dc.channel_id, as_user=DEFAULT_USER_ID)
    assert [(m["content"], m["flags"]) for m in mine] == [("first", 64), ("next", 0)]


async def test_a_followup_past_the_interactions_limit_is_too_large(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()

    async def answer(interaction: discord.Interaction, url: str) -> discord.WebhookMessage:
        await interaction.response.defer(thinking=True)
        with pytest.raises(discord.HTTPException) as too_large:
            await interaction.followup.send(file=_file(interaction.filesize_limit + 1)[1])
        assert (too_large.value.status, too_large.value.code) == (413, 40005)
        return await interaction.followup.send(file=_file(interaction.filesize_limit)[1], wait=True)

    outcome = _download_command(bot, answer)
    await bot.tree.sync()

    dc.inject_slash_command("download", {"url": TIKTOK}, attachment_size_limit=4096)

    sent = await asyncio.wait_for(outcome, 5)
    assert sent.attachments[0].size == 4096
    assert [call.status for call in dc.requests_to("POST", "/webhooks/")] == [413, 200]


async def test_the_webhook_exists_from_the_ack_for_fifteen_minutes(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()
    acknowledge = asyncio.Event()

    async def answer(interaction: discord.Interaction, url: str) -> None:
        await acknowledge.wait()
        await interaction.response.defer(thinking=True)
        dc.token_lifetime = 0  # as if 15 minutes had passed
        await interaction.followup.send("too late")

    outcome = _download_command(bot, answer)
    await bot.tree.sync()
    sent = dc.inject_slash_command("download", {"url": TIKTOK})

    webhook = f"{dc.api_url}/webhooks/{dc.application_id}/{sent['token']}"
    async with aiohttp.ClientSession() as http, http.post(webhook, json={"content": "x"}) as early:
        assert (early.status, await early.json()) == (
            404,
            {"message": "Unknown Webhook", "code": 10015},
        )
    acknowledge.set()
    with pytest.raises(discord.HTTPException) as expired:
        await asyncio.wait_for(outcome, 5)
    assert (expired.value.status, expired.value.code) == (401, 50027)


async def test_ephemeral_answers_are_seen_by_their_user_only(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()

    async def answer(interaction: discord.Interaction, url: str) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        await interaction.followup.send("only for you")
        await interaction.followup.send("for everyone")

    outcome = _download_command(bot, answer)
    await bot.tree.sync()

    dc.inject_slash_command("download", {"url": TIKTOK}, user_id=DEFAULT_USER_ID)
    await asyncio.wait_for(outcome, 5)

    assert [m["content"] for m in dc.messages_in(dc.channel_id)] == ["for everyone"]
    mine = dc.messages_in(dc.channel_id, as_user=DEFAULT_USER_ID)
    assert [(m["content"], m["flags"]) for m in mine] == [("only for you", 64), ("for everyone", 0)]


async def test_original_response_can_be_read_edited_and_deleted(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()

    async def answer(interaction: discord.Interaction, url: str) -> str:
        await interaction.response.send_message("working on it", suppress_embeds=True)
        original = await interaction.original_response()
        edited = await interaction.edit_original_response(content=f"done: {url}")
        await interaction.delete_original_response()
        # discord.py caches the original response, so ask for a change to see it is gone.
        with pytest.raises(discord.NotFound):
            await interaction.edit_original_response(content="too late")
        return f"{original.content} -> {edited.content}"

    outcome = _download_command(bot, answer)
    await bot.tree.sync()

    sent = dc.inject_slash_command("download", {"url": TIKTOK})

    assert await asyncio.wait_for(outcome, 5) == f"working on it -> done: {TIKTOK}"
    assert [(c.method, c.status) for c in dc.interaction_responses(sent["id"])] == [
        ("POST", 200),
        ("GET", 200),
        ("PATCH", 200),
        ("DELETE", 204),
        ("PATCH", 404),
    ]
    assert dc.messages_in(dc.channel_id) == []


async def test_slash_command_in_a_dm(dc: FakeDiscord, start_bot: StartBot) -> None:
    bot = await start_bot()

    async def answer(interaction: discord.Interaction, url: str) -> bool:
        await interaction.response.send_message(url)
        return isinstance(interaction.channel, discord.DMChannel)

    outcome = _download_command(bot, answer)
    await bot.tree.sync()

    dc.inject_slash_command("download", {"url": TIKTOK}, guild_id=None)

    assert await asyncio.wait_for(outcome, 5) is True
    [answered] = dc.messages_in(dc.dm_channel_id(DEFAULT_USER_ID))
    assert answered["content"] == TIKTOK


async def test_a_message_command_gets_the_full_target_message(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()  # no Message Content intent
    picked: asyncio.Future[discord.Message] = asyncio.get_running_loop().create_future()

    @bot.tree.context_menu(name="Download video")
    async def download_video(interaction: discord.Interaction, message: discord.Message) -> None:
        await interaction.response.defer(thinking=True)
        picked.set_result(message)

    await bot.tree.sync()
    target = dc.inject_message(f"look {TIKTOK}")
    assert (await bot.next_message()).content == ""

    dc.inject_message_command("Download video", target)

    message = await asyncio.wait_for(picked, 5)
    assert (message.id, message.content) == (int(target["id"]), f"look {TIKTOK}")
    assert message.author.id == DEFAULT_USER_ID


async def test_a_button_click_updates_the_message(dc: FakeDiscord, start_bot: StartBot) -> None:
    bot = await start_bot()
    clicked: asyncio.Future[object] = asyncio.get_running_loop().create_future()

    class Again(discord.ui.View):
        @discord.ui.button(label="Again", custom_id="again")
        async def again(
            self, interaction: discord.Interaction, button: discord.ui.Button[Again]
        ) -> None:
            await _settle(clicked, interaction.response.edit_message(content="clicked"))

    channel = bot.client.get_channel(dc.channel_id)
    assert isinstance(channel, discord.TextChannel)
    sent = await channel.send("pick", view=Again())

    dc.inject_button_click("again", dc.message(sent.id))

    await asyncio.wait_for(clicked, 5)
    assert dc.message(sent.id)["content"] == "clicked"
    [callback] = dc.requests_to("POST", "/interactions/")
    assert callback.json["type"] == 7


# Components: kept on messages, checked as Discord checks them, used by people

OTHER_USER = 1_300_000_000_000_000_202
EPHEMERAL = 1 << 6
COMPONENTS_V2 = 1 << 15


def _picker(chosen: str) -> discord.ui.LayoutView:
    """A components-v2 message: a line of text, a select menu showing ``chosen``, a button. Stopped:
    presses are read from on_interaction, as a bot with stateless custom ids does."""
    view = discord.ui.LayoutView(timeout=None)
    view.add_item(discord.ui.TextDisplay(f"chosen: {chosen}"))
    options = [discord.SelectOption(label=v, value=v, default=v == chosen) for v in "abc"]
    view.add_item(discord.ui.ActionRow(discord.ui.Select(custom_id="pick", options=options)))
    view.add_item(discord.ui.ActionRow(discord.ui.Button(label="Reset", custom_id="reset")))
    view.stop()
    return view


def _shown(message: dict[str, Any]) -> tuple[str, list[str]]:
    text, row, _ = message["components"]
    [select] = row["components"]
    return text["content"], [o["value"] for o in select["options"] if o.get("default")]


async def test_components_are_kept_on_ephemeral_answers_and_their_edits(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()
    pressed: asyncio.Queue[discord.Interaction] = asyncio.Queue()

    @bot.tree.command(name="pick", description="Pick a letter")
    async def pick(interaction: discord.Interaction) -> None:
        await interaction.response.send_message(view=_picker("a"), ephemeral=True)

    async def on_interaction(interaction: discord.Interaction) -> None:
        if interaction.type is discord.InteractionType.component:
            data: dict[str, Any] = dict(interaction.data or {})
            if data.get("custom_id") == "pick":
                [value] = data["values"]
                await interaction.response.edit_message(view=_picker(str(value)))
            else:
                await interaction.response.defer()
                await interaction.edit_original_response(view=_picker("a"))
            pressed.put_nowait(interaction)

    bot.client.event(on_interaction)
    await bot.tree.sync()
    dc.inject_slash_command("pick")
    [message] = await _until_seen(dc, DEFAULT_USER_ID)
    assert message["flags"] == EPHEMERAL | COMPONENTS_V2
    assert _shown(message) == ("chosen: a", ["a"])
    # Discord numbers the components it keeps.
    assert [c["id"] for c in message["components"]] == [1, 2, 4]

    with pytest.raises(ValueError, match="cannot see"):
        dc.inject_select("pick", message, ["b"], user_id=OTHER_USER)
    with pytest.raises(ValueError, match="offers no"):
        dc.inject_select("pick", message, ["z"])
    with pytest.raises(ValueError, match=r"takes 1\.\.1 values"):
        dc.inject_select("pick", message, ["a", "b"])
    with pytest.raises(ValueError, match="no select menu"):
        dc.inject_select("reset", message, ["a"])
    picked = dc.inject_select("pick", message, ["b"])
    await asyncio.wait_for(pressed.get(), 5)
    assert picked["data"] == {"custom_id": "pick", "component_type": 3, "values": ["b"]}
    assert _shown(dc.message(message["id"])) == ("chosen: b", ["b"])
    dc.inject_button_click("reset", dc.message(message["id"]))
    await asyncio.wait_for(pressed.get(), 5)
    assert _shown(dc.message(message["id"])) == ("chosen: a", ["a"])
    answers = [(c.method, c.json.get("type")) for c in dc.requests if "/callback" in c.path]
    assert answers == [("POST", 4), ("POST", 7), ("POST", 6)]
    [edit] = dc.requests_to("PATCH", "/webhooks/.*/messages/@original")
    assert edit.status == 200
    assert dc.messages_in(dc.channel_id) == []


async def _until_seen(dc: FakeDiscord, user_id: int) -> list[dict[str, Any]]:
    async with asyncio.timeout(5):
        while not (seen := dc.messages_in(dc.channel_id, as_user=user_id)):  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    return seen


def _button(custom_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": 2, "style": 1, "label": "Go", "custom_id": custom_id, **fields}


def _select(custom_id: str, count: int = 2, **fields: Any) -> dict[str, Any]:
    options = [{"label": f"option {n}", "value": str(n)} for n in range(count)]
    return {"type": 3, "custom_id": custom_id, "options": options, **fields}


def _row(*items: dict[str, Any]) -> dict[str, Any]:
    return {"type": 1, "components": list(items)}


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        (
            {"components": [_row(_button(f"b{n}")) for n in range(6)]},
            "components",
            "Must be 5 or fewer in length.",
        ),
        (
            {"components": [_row(*(_button(f"b{n}") for n in range(6)))]},
            "components.0.components",
            "Must be between 1 and 5 in length.",
        ),
        (
            {"components": [_row(_button("b"), _select("s"))]},
            "components.0.components.1",
            "The specified component exceeds the maximum width",
        ),
        (
            {"components": [_row(_button("same")), _row(_select("same"))]},
            "components.1.components.0.custom_id",
            "Component custom id cannot be duplicated",
        ),
        (
            {"components": [_row(_button("x" * 101))]},
            "components.0.components.0.custom_id",
            "Must be between 1 and 100 in length.",
        ),
        (
            {"components": [_row(_select("s", 0))]},
            "components.0.components.0.options",
            "Must be between 1 and 25 in length.",
        ),
        (
            {"components": [_row(_select("s", 26))]},
            "components.0.components.0.options",
            "Must be between 1 and 25 in length.",
        ),
        (
            {"components": [_row(_select("s", options=[{"label": "l" * 101, "value": "v"}]))]},
            "components.0.components.0.options.0.label",
            "Must be between 1 and 100 in length.",
        ),
        (
            {"components": [_row(_select("s", 2, max_values=3))]},
            "components.0.components.0.max_values",
            "Must be less than or equal to 2.",
        ),
        (
            {"components": [_row(_button("b", style=7))]},
            "components.0.components.0.style",
            "Value must be one of",
        ),
        (
            {"components": [_row(_button("b", style=5, url="https://example.com/"))]},
            "components.0.components.0.custom_id",
            "A link button cannot have a custom id",
        ),
        (
            {"components": [_row({"type": 2, "style": 5, "label": "Site"})]},
            "components.0.components.0.url",
            "This field is required",
        ),
        (
            {"components": [_row({"type": 2, "style": 1, "label": "Go"})]},
            "components.0.components.0.custom_id",
            "This field is required",
        ),
        (
            {"components": [{"type": 10, "content": "text"}]},
            "components.0.type",
            'Value of field "type" must be one of (1).',
        ),
        (
            {"content": "hi", "flags": COMPONENTS_V2, "components": [_row(_button("b"))]},
            "content",
            "cannot be used when using MessageFlags.IS_COMPONENTS_V2",
        ),
    ],
)
async def test_invalid_components_are_refused_as_invalid_form_body(
    dc: FakeDiscord, start_bot: StartBot, body: dict[str, Any], where: str, says: str
) -> None:
    bot = await start_bot()
    route = discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=dc.channel_id)

    with pytest.raises(discord.HTTPException) as refused:
        await bot.client.http.request(route, json=body)

    assert (refused.value.status, refused.value.code) == (400, 50035)
    assert f"In {where}: " in refused.value.text
    assert says in refused.value.text
    assert dc.messages_in(dc.channel_id) == []


async def test_a_link_button_and_a_full_message_are_accepted(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()
    link = {"type": 2, "style": 5, "label": "Site", "url": "https://example.com/"}
    rows = [_row(_select(f"s{n}", 25, min_values=0, max_values=25)) for n in range(4)]
    rows.append(_row(link, *(_button(f"b{n}") for n in range(4))))
    route = discord.http.Route("POST", "/channels/{channel_id}/messages", channel_id=dc.channel_id)

    sent = await bot.client.http.request(route, json={"components": rows})

    assert [len(row["components"]) for row in dc.message(sent["id"])["components"]] == [
        1,
        1,
        1,
        1,
        5,
    ]


# Permissions: members', the app's, and commands' defaults


async def test_commands_default_permissions_decide_who_is_offered_them(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    dc.guild.bot_can_manage_messages = True
    bot = await start_bot()
    seen: asyncio.Queue[discord.Interaction] = asyncio.Queue()

    @bot.tree.command(name="settings", description="Change settings")
    @app_commands.default_permissions(manage_guild=True)
    async def settings(interaction: discord.Interaction) -> None:
        await interaction.response.send_message("ok", ephemeral=True)
        seen.put_nowait(interaction)

    await bot.tree.sync()
    [command] = dc.commands[None]
    assert command["default_member_permissions"] == str(
        discord.Permissions(manage_guild=True).value
    )

    with pytest.raises(ValueError, match="lacks"):
        dc.inject_slash_command("settings", user_id=OTHER_USER)
    dc.inject_slash_command("settings", user_id=OTHER_USER, force=True)
    member = await asyncio.wait_for(seen.get(), 5)
    assert not member.permissions.manage_guild
    assert member.permissions.send_messages
    assert member.app_permissions.manage_messages
    # The owner has every permission; a member given Manage Server is offered the command.
    dc.inject_slash_command("settings")
    owner = await asyncio.wait_for(seen.get(), 5)
    assert owner.permissions.administrator
    assert owner.permissions.manage_guild
    dc.set_member_permissions(
        DEFAULT_GUILD_ID, OTHER_USER, discord.Permissions(manage_guild=True).value
    )
    dc.inject_slash_command("settings", user_id=OTHER_USER)
    manager = await asyncio.wait_for(seen.get(), 5)
    assert manager.permissions.manage_guild
    assert not manager.permissions.administrator
    # DMs ignore a command's default permissions.
    dc.inject_slash_command("settings", user_id=OTHER_USER, guild_id=None)
    in_dm = await asyncio.wait_for(seen.get(), 5)
    assert in_dm.guild_id is None


# User installs: commands where the bot is not


ELSEWHERE = 1_300_000_000_000_000_900
FRIEND = 1_300_000_000_000_000_201


def _installable_download(
    bot: Bot, answer: Callable[[discord.Interaction, str], Awaitable[Any]]
) -> asyncio.Future[Any]:
    """/download installable to servers and users, usable in every context."""
    outcome: asyncio.Future[Any] = asyncio.get_running_loop().create_future()

    @bot.tree.command(name="download", description="Send the video behind a link")
    @app_commands.allowed_installs(guilds=True, users=True)
    @app_commands.allowed_contexts(guilds=True, dms=True, private_channels=True)
    async def download(interaction: discord.Interaction, url: str) -> None:
        await _settle(outcome, answer(interaction, url))

    return outcome


async def test_sync_records_install_types_and_contexts(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()
    _installable_download(bot, lambda interaction, url: asyncio.sleep(0))
    await bot.tree.sync()

    [command] = dc.commands[None]
    assert (command["integration_types"], command["contexts"]) == ([0, 1], [0, 1, 2])
    bad = [{"name": "download", "description": "x", "type": 1, "integration_types": [0, 2]}]
    with pytest.raises(discord.HTTPException) as refused:
        await bot.client.http.bulk_upsert_global_commands(dc.application_id, payload=bad)
    assert (refused.value.status, refused.value.code) == (400, 50035)


async def test_a_user_installed_command_in_a_guild_without_the_bot(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()
    guild = dc.add_guild(ELSEWHERE, with_bot=False)
    data, upload = _file(4096)

    async def answer(interaction: discord.Interaction, url: str) -> discord.Interaction:
        await interaction.response.defer(thinking=True)
        await interaction.followup.send(url, file=upload)
        return interaction

    outcome = _installable_download(bot, answer)
    await bot.tree.sync()

    with pytest.raises(ValueError, match="user_install=True"):
        dc.inject_slash_command("download", {"url": TIKTOK}, guild_id=ELSEWHERE)
    sent = dc.inject_slash_command(
        "download", {"url": TIKTOK}, guild_id=ELSEWHERE, user_install=True
    )
    interaction = await asyncio.wait_for(outcome, 5)

    assert bot.client.get_guild(ELSEWHERE) is None  # never in READY nor a GUILD_CREATE
    assert (sent["context"], sent["authorizing_integration_owners"]) == (
        0,
        {"1": str(DEFAULT_USER_ID)},
    )
    assert interaction.is_user_integration()
    assert not interaction.is_guild_integration()
    assert interaction.guild_id == ELSEWHERE
    [answered] = dc.messages_in(guild.channel_id)
    assert dc.attachment_bytes(answered["attachments"][0]) == data
    # Channel routes are closed to a bot that is not in the guild, reactions too.
    channel = bot.client.get_partial_messageable(guild.channel_id, guild_id=ELSEWHERE)
    with pytest.raises(discord.Forbidden) as refused:
        await channel.send("hello")
    assert (refused.value.status, refused.value.code) == (403, 50001)
    with pytest.raises(discord.Forbidden):
        await channel.get_partial_message(int(answered["id"])).add_reaction("⚠️")
    with pytest.raises(discord.Forbidden):
        await channel.typing()


async def test_a_user_installed_command_in_a_group_dm(dc: FakeDiscord, start_bot: StartBot) -> None:
    bot = await start_bot()

    async def answer(interaction: discord.Interaction, url: str) -> discord.Interaction:
        await interaction.response.send_message(url, ephemeral=True)
        return interaction

    outcome = _installable_download(bot, answer)
    await bot.tree.sync()
    group = dc.add_group_dm(DEFAULT_USER_ID, FRIEND, name="pals")

    sent = dc.inject_slash_command("download", {"url": TIKTOK}, channel_id=group, user_install=True)
    interaction = await asyncio.wait_for(outcome, 5)

    assert sent["context"] == 2
    assert "guild_id" not in sent
    assert isinstance(interaction.channel, discord.GroupChannel)
    assert interaction.context.private_channel
    assert dc.messages_in(group) == []
    [seen] = dc.messages_in(group, as_user=DEFAULT_USER_ID)
    assert seen["content"] == TIKTOK
    with pytest.raises(ValueError, match="not in group DM"):
        dc.inject_slash_command(
            "download", {"url": TIKTOK}, channel_id=group, user_id=7, user_install=True
        )


async def test_a_guild_only_install_is_not_offered_to_users(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()
    _download_command(bot, lambda interaction, url: asyncio.sleep(0))
    await bot.tree.sync()  # integration_types unset: guild installs only

    with pytest.raises(ValueError, match="not installable to a user"):
        dc.inject_slash_command("download", {"url": TIKTOK}, user_install=True)


async def test_interactions_need_a_connected_bot(dc: FakeDiscord, start_bot: StartBot) -> None:
    bot = await start_bot()

    async def answer(interaction: discord.Interaction, url: str) -> None:
        """Never invoked: nobody receives the interaction."""

    _download_command(bot, answer)
    await bot.tree.sync()
    await bot.client.close()

    with pytest.raises(RuntimeError, match="no bot is connected"):
        dc.inject_slash_command("download", {"url": TIKTOK})


# Messages


@pytest.mark.parametrize("message_content", [False, True])
async def test_message_content_needs_the_intent_unless_dm_or_mention(
    dc: FakeDiscord, start_bot: StartBot, message_content: bool
) -> None:
    intents = discord.Intents.default()
    intents.message_content = message_content
    bot = await start_bot(intents=intents)

    dc.inject_message(TIKTOK)
    in_guild = await bot.next_message()
    dc.inject_message(TIKTOK, mentions_bot=True)
    mentioning = await bot.next_message()
    dc.inject_dm(TIKTOK)
    in_dm = await bot.next_message()

    assert in_guild.content == (TIKTOK if message_content else "")
    assert in_guild.guild is not None
    assert mentioning.content == f"<@{dc.bot_user_id}> {TIKTOK}"
    assert (in_dm.content, in_dm.guild) == (TIKTOK, None)
    assert isinstance(in_dm.channel, discord.DMChannel)


async def test_no_guild_messages_intent_no_message_events(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    intents = discord.Intents.none()
    intents.guilds = True
    await start_bot(intents=intents)

    dc.inject_message(TIKTOK)

    assert [event.name for event in dc.dispatched] == ["READY", "GUILD_CREATE"]
    assert [m["content"] for m in dc.messages_in(dc.channel_id)] == [TIKTOK]


async def test_reactions_and_suppressing_someone_elses_embeds(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot(intents=discord.Intents.default() | discord.Intents(message_content=True))
    posted = dc.inject_message(TIKTOK, embeds=[{"type": "video", "url": TIKTOK}])
    received = await bot.next_message()
    assert [embed.url for embed in received.embeds] == [TIKTOK]

    await received.add_reaction("⚠️")
    with pytest.raises(discord.Forbidden) as denied:
        await received.edit(suppress=True)
    with pytest.raises(discord.Forbidden) as not_theirs:
        await received.edit(content="mine now")
    dc.guild.bot_can_manage_messages = True
    edited = await received.edit(suppress=True)

    assert dc.reactions_on(posted["id"]) == ["⚠️"]
    assert (denied.value.code, not_theirs.value.code) == (50013, 50005)
    assert edited.flags.suppress_embeds
    assert (edited.content, edited.embeds) == (TIKTOK, [])
    stored = dc.message(posted["id"])
    assert (stored["flags"], stored["embeds"], stored["reactions"][0]["emoji"]["name"]) == (
        4,
        [],
        "⚠️",
    )
    path = f"/channels/{dc.channel_id}/messages/{posted['id']}"
    assert [c.json["flags"] for c in dc.requests_to("PATCH", path + "$") if c.status == 200] == [4]
    assert dc.requests_to("PUT", path + "/reactions/⚠️/@me")[0].status == 204

    await received.delete()  # Manage Messages allows this too
    assert dc.messages_in(dc.channel_id) == []


async def test_bot_replies_with_a_file_within_the_guild_limit(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot(intents=discord.Intents.default() | discord.Intents(message_content=True))
    dc.inject_message(TIKTOK)
    received = await bot.next_message()
    data, upload = _file(2048)

    async with received.channel.typing():
        reply = await received.reply(
            "here", file=upload, mention_author=False, suppress_embeds=True
        )
    with pytest.raises(discord.HTTPException) as too_large:
        await received.channel.send(file=_file(dc.guild.filesize_limit + 1)[1])

    assert reply.reference is not None
    assert reply.reference.message_id == received.id
    assert (reply.attachments[0].size, reply.flags.suppress_embeds) == (2048, True)
    assert await reply.attachments[0].read() == data
    assert (too_large.value.status, too_large.value.code) == (413, 40005)
    own = await bot.next_message()  # the bot sees its own message, as on Discord
    assert (own.id, own.author.id, own.mentions) == (reply.id, dc.bot_user_id, [])
    assert dc.requests_to("POST", f"/channels/{dc.channel_id}/typing")[0].status == 204


async def test_client_closes_cleanly(dc: FakeDiscord, start_bot: StartBot) -> None:
    bot = await start_bot()

    await bot.client.close()

    assert bot.connection is not None
    await asyncio.wait_for(bot.connection, 5)  # returns, no ConnectionClosed: a clean 1000
    assert not dc.connected
    assert bot.client.is_closed()


# REST details discord.py depends on


async def test_rest_answers_exactly_application_json(dc: FakeDiscord) -> None:
    auth = {"Authorization": f"Bot {dc.token}"}
    async with aiohttp.ClientSession(headers=auth) as http:
        async with http.get(f"{dc.api_url}/users/@me") as me:
            assert (me.status, me.headers["Content-Type"]) == (200, "application/json")
        async with http.get(f"{dc.api_url}/nothing/here") as missing:
            assert (missing.status, await missing.json()) == (
                404,
                {"message": "404: Not Found", "code": 0},
            )
        messages = f"{dc.api_url}/channels/{dc.channel_id}/messages"
        async with http.post(messages, data="hi", headers={"Content-Type": "text/plain"}) as plain:
            assert (plain.status, (await plain.json())["code"]) == (400, 50035)
        bad_json = {"Content-Type": "application/json"}
        async with http.post(messages, data="{", headers=bad_json) as broken:
            assert (broken.status, (await broken.json())["code"]) == (400, 50109)
        async with http.post(messages, json={"content": ""}) as empty:
            assert (empty.status, (await empty.json())["code"]) == (400, 50006)
    with pytest.raises(AssertionError, match=r"requests seen:\n  GET /users/@me -> 200"):
        await dc.wait_for_request("DELETE", "/channels/", timeout=0.05)
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.get(f"{dc.api_url}/users/@me") as unauthorized,
    ):
        assert (unauthorized.status, await unauthorized.json()) == (
            401,
            {"message": "401: Unauthorized", "code": 0},
        )


async def test_rate_limits_are_waited_out_by_discord_py(
    dc: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()
    channel = bot.client.get_channel(dc.channel_id)
    assert isinstance(channel, discord.TextChannel)
    dc.fail_next("POST", "/channels/", retry_after=0.05)

    await channel.send("after the wait")

    assert [c.status for c in dc.requests_to("POST", "/channels/")] == [429, 200]
