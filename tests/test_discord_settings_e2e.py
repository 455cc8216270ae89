"""Discord /settings end to end: the real bot against the Discord and TikTok stand-ins."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import discord
import pytest

from adapters.discord.settings_ui import (
    CANNOT_DELETE_TEXT,
    MANAGERS_ONLY_TEXT,
    OWN_SETTINGS_TEXT,
    SERVER_SETTINGS_TEXT,
)
from adapters.runtime import Reshare
from bot.chat_settings import (
    AutoDetect,
    CaptionStyle,
    ChatSettings,
    OriginalMessage,
    SlideshowMode,
    chat_key,
    server_key,
)
from tests.harness import jobs_done, link, running_bot, tiktok_serving
from tests.standins.clips import Clip
from tests.standins.discord_api import DEFAULT_USER_ID, FakeDiscord
from tests.standins.discord_components import find_component

POST = "7340000000000000101"
MEMBER = 1_300_000_000_000_000_301
MANAGER = 1_300_000_000_000_000_302
EPHEMERAL = 1 << 6
MANAGE_GUILD = discord.Permissions(manage_guild=True).value


async def open_settings(dc: FakeDiscord, **where: Any) -> dict[str, Any]:
    """/settings as the user in `where` runs it; returns the message only they see."""
    asked = dc.inject_slash_command("settings", **where)
    [callback] = await dc.wait_for_request("POST", f"/interactions/{asked['id']}/")
    assert callback.status == 200, callback.response
    message: dict[str, Any] = callback.response["resource"]["message"]
    return dc.message(message["id"])


async def press(
    dc: FakeDiscord, message: dict[str, Any], custom_id: str, *values: str, **who: Any
) -> dict[str, Any]:
    """A select pick (with `values`) or a button press; returns the interaction's answer."""
    if values:
        pressed = dc.inject_select(custom_id, message, list(values), **who)
    else:
        pressed = dc.inject_button_click(custom_id, message, **who)
    [callback] = await dc.wait_for_request("POST", f"/interactions/{pressed['id']}/")
    assert callback.status == 200, callback.response
    answer: dict[str, Any] = callback.json
    return answer


def picked(message: dict[str, Any], custom_id: str) -> list[str]:
    select = find_component(message["components"], custom_id)
    assert select is not None, custom_id
    return [option["value"] for option in select["options"] if option.get("default")]


def highlighted(message: dict[str, Any], prefix: str) -> list[str]:
    """The custom ids of the buttons shown as the current choice."""
    return [
        button["custom_id"]
        for row in message["components"]
        if row["type"] == 1
        for button in row["components"]
        if button["type"] == 2 and button["custom_id"].startswith(prefix) and button["style"] == 1
    ]


def heading(message: dict[str, Any]) -> str:
    text: str = message["components"][0]["content"]
    return text


async def stored(bot: Reshare, key: str) -> ChatSettings:
    store = bot.engine.chat_settings
    assert store is not None
    return await store.get(key)


async def test_a_member_without_manage_server_can_neither_open_nor_change_settings(
    discord_api: FakeDiscord, h264_clip: Clip, tmp_path: Path
) -> None:
    dc = discord_api
    guild = dc.guild_id
    async with (
        tiktok_serving(h264_clip, POST) as tiktok,
        running_bot(tiktok, tmp_path / "data", discord=dc) as bot,
    ):
        [command] = [c for c in dc.commands[None] if c["name"] == "settings"]
        assert command["default_member_permissions"] == str(MANAGE_GUILD)
        with pytest.raises(ValueError, match="lacks"):
            dc.inject_slash_command("settings", user_id=MEMBER)
        # A server may let everyone run it: the bot still refuses.
        forced = dc.inject_slash_command("settings", user_id=MEMBER, force=True)
        [refusal] = await dc.wait_for_request("POST", f"/interactions/{forced['id']}/")
        assert refusal.json["type"] == 4
        assert refusal.json["data"]["content"] == MANAGERS_ONLY_TEXT
        assert refusal.json["data"]["flags"] & EPHEMERAL
        # Manage Server taken away after opening: a press changes nothing.
        dc.set_member_permissions(guild, MANAGER, MANAGE_GUILD)
        shown = await open_settings(dc, user_id=MANAGER)
        dc.set_member_permissions(guild, MANAGER, 0)
        answer = await press(dc, shown, "set:caption", "none", user_id=MANAGER)
        assert answer["type"] == 4
        assert answer["data"]["content"] == MANAGERS_ONLY_TEXT
        assert answer["data"]["flags"] & EPHEMERAL
        answer = await press(dc, shown, "set:auto:channel:on_request", user_id=MANAGER)
        assert answer["data"]["content"] == MANAGERS_ONLY_TEXT
        assert await stored(bot, server_key("discord", guild)) == ChatSettings()
        assert await stored(bot, chat_key("discord", dc.channel_id)) == ChatSettings()
        assert picked(dc.message(shown["id"]), "set:caption") == ["default"]


async def test_a_managers_choices_are_saved_and_shown_in_the_same_message(
    discord_api: FakeDiscord, h264_clip: Clip, tmp_path: Path
) -> None:
    dc = discord_api
    guild, channel = dc.guild_id, dc.channel_id
    dc.set_member_permissions(guild, MANAGER, MANAGE_GUILD)
    async with (
        tiktok_serving(h264_clip, POST) as tiktok,
        running_bot(tiktok, tmp_path / "data", discord=dc) as bot,
    ):
        shown = await open_settings(dc, user_id=MANAGER)
        assert shown["flags"] & EPHEMERAL
        assert heading(shown) == SERVER_SETTINGS_TEXT
        assert picked(shown, "set:caption") == ["default"]
        assert highlighted(shown, "set:auto:server:") == ["set:auto:server:default"]
        assert highlighted(shown, "set:auto:channel:") == ["set:auto:channel:default"]

        answer = await press(dc, shown, "set:caption", "link", user_id=MANAGER)
        assert answer["type"] == 7
        assert (await stored(bot, server_key("discord", guild))).caption is CaptionStyle.LINK
        assert picked(dc.message(shown["id"]), "set:caption") == ["link"]

        # Deleting the link's message needs Manage Messages, which the bot lacks here.
        await press(dc, shown, "set:original", "delete", user_id=MANAGER)
        now = dc.message(shown["id"])
        assert (await stored(bot, server_key("discord", guild))).original is OriginalMessage.DELETE
        assert picked(now, "set:original") == ["delete"]
        assert heading(now) == f"{SERVER_SETTINGS_TEXT}\n{CANNOT_DELETE_TEXT}"

        await press(dc, shown, "set:auto:channel:on_request", user_id=MANAGER)
        now = dc.message(shown["id"])
        assert (
            await stored(bot, chat_key("discord", channel))
        ).auto_detect is AutoDetect.ON_REQUEST
        assert (await stored(bot, server_key("discord", guild))).auto_detect is None
        assert highlighted(now, "set:auto:channel:") == ["set:auto:channel:on_request"]
        assert picked(now, "set:caption") == ["link"]
        # Only the manager ever saw it.
        assert dc.messages_in(channel) == []


async def test_in_a_dm_anyone_changes_their_own_settings(
    discord_api: FakeDiscord, h264_clip: Clip, tmp_path: Path
) -> None:
    dc = discord_api
    async with (
        tiktok_serving(h264_clip, POST) as tiktok,
        running_bot(tiktok, tmp_path / "data", discord=dc) as bot,
    ):
        shown = await open_settings(dc, user_id=MEMBER, guild_id=None)
        assert heading(shown) == OWN_SETTINGS_TEXT
        assert find_component(shown["components"], "set:original") is None
        assert find_component(shown["components"], "set:auto:server:default") is None
        await press(dc, shown, "set:slideshow", "video", user_id=MEMBER)
        dm = chat_key("discord", dc.dm_channel_id(MEMBER))
        assert (await stored(bot, dm)).slideshow is SlideshowMode.VIDEO
        assert picked(dc.message(shown["id"]), "set:slideshow") == ["video"]


async def test_a_channel_set_to_only_download_ignores_pasted_links_there_only(
    discord_api: FakeDiscord, h264_clip: Clip, tmp_path: Path
) -> None:
    """Needs the intake to merge a channel's override into its server's settings."""
    dc = discord_api
    quiet, other = dc.channel_id, dc.add_channel(dc.guild_id)
    async with (
        tiktok_serving(h264_clip, POST) as tiktok,
        running_bot(tiktok, tmp_path / "data", discord=dc, discord_message_content=True) as bot,
    ):
        shown = await open_settings(dc, user_id=DEFAULT_USER_ID)
        await press(dc, shown, "set:auto:channel:on_request", user_id=DEFAULT_USER_ID)
        pasted = dc.inject_message(link(POST), channel_id=quiet, author_id=MEMBER)
        answered = dc.inject_message(link(POST), channel_id=other, author_id=MEMBER)
        [reply] = await dc.wait_for_request("POST", f"/channels/{other}/messages$")
        asked = dc.inject_slash_command("download", {"url": link(POST)}, user_id=MEMBER)
        webhook = f"/webhooks/{dc.application_id}/{asked['token']}"
        [followup] = await dc.wait_for_request("POST", webhook)
        await jobs_done(bot)
    assert int(reply.json["message_reference"]["message_id"]) == int(answered["id"])
    assert followup.files
    assert dc.requests_to("*", f"/channels/{quiet}/") == []
    assert dc.reactions_on(pasted["id"]) == []
