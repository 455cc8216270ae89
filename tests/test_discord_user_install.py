"""The commands installed to a user's account: used where the bot is not (another server, a
group DM), the real bot answers through the interaction alone, never by channel routes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.discord.inbound import InteractionOrigin, origin_codec
from adapters.discord.outbound import reason_text
from bot.model import Reason
from tests.harness import assert_plays, jobs_done, link, running_bot
from tests.standins.clips import Clip
from tests.standins.discord_api import (
    CONTEXT_BOT_DM,
    CONTEXT_GUILD,
    CONTEXT_PRIVATE_CHANNEL,
    DEFAULT_USER_ID,
    GUILD_INSTALL,
    USER_INSTALL,
    FakeDiscord,
    RestCall,
)
from tests.standins.tiktok import TikTokStandIn

POST = "7301234567890123456"
LARGE_POST = "7301234567890123459"
PRIVATE_POST = "7301234567890000001"
ELSEWHERE = 1_300_000_000_000_000_900
FRIEND = 1_300_000_000_000_000_201
EPHEMERAL = 1 << 6
SUPPRESS_EMBEDS = 1 << 2


@pytest.fixture
async def tiktok(h264_clip: Clip, large_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        tt.add_video(POST, h264_clip, author="dancer", desc="a small dance")
        tt.add_video(LARGE_POST, large_clip, author="big", desc="too big")
        tt.add_status(PRIVATE_POST, 10216)
        yield tt


def webhook(dc: FakeDiscord, interaction: dict[str, Any]) -> str:
    return f"/webhooks/{dc.application_id}/{interaction['token']}"


def elsewhere(dc: FakeDiscord) -> int:
    """The text channel of a server the bot was never added to."""
    return dc.add_guild(ELSEWHERE, with_bot=False, name="Friends").channel_id


def no_channel_routes(dc: FakeDiscord) -> None:
    """Where only the user installed the app, the bot reads, posts and reacts nowhere."""
    assert dc.requests_to("*", "/channels/") == []


def video_of(call: RestCall, directory: Path) -> Path:
    [upload] = call.files
    assert upload.filename.endswith(".mp4")
    path = directory / f"{call.at}-{upload.filename}"
    path.write_bytes(upload.data)
    return path


async def answered(dc: FakeDiscord, interaction: dict[str, Any]) -> list[RestCall]:
    """The interaction's callback and what followed, once its answer was posted."""
    await dc.wait_for_request("POST", webhook(dc, interaction) + "$")
    return dc.interaction_responses(interaction["id"])


async def test_both_commands_are_installable_to_servers_and_users_everywhere(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        pass
    commands = {c["name"]: c for c in discord_api.commands[None]}
    # /settings is a server's (and, in the bot's DM, the person's own): not for user installs.
    # So is /top: the server's own clips, counted where the bot is.
    for name in ("settings", "top"):
        command = commands.pop(name)
        assert command["integration_types"] == [GUILD_INSTALL]
        assert command["contexts"] == [CONTEXT_GUILD, CONTEXT_BOT_DM]
    assert set(commands) == {"download", "Download video", "audio"}
    for command in commands.values():
        assert command["integration_types"] == [GUILD_INSTALL, USER_INSTALL]
        assert command["contexts"] == [CONTEXT_GUILD, CONTEXT_BOT_DM, CONTEXT_PRIVATE_CHANNEL]
    url, private = commands["download"]["options"]
    assert (url["name"], url["required"]) == ("url", True)
    assert (private["name"], private["type"], private["description"]) == (
        "private",
        5,
        "Only you see the video",
    )
    assert not private.get("required")


async def test_in_a_server_without_the_bot_the_video_is_the_interactions_answer(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, h264_clip: Clip, tmp_path: Path
) -> None:
    channel = elsewhere(discord_api)
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        interaction = discord_api.inject_slash_command(
            "download", {"url": link(POST)}, channel_id=channel, user_install=True
        )
        callback, followup = await answered(discord_api, interaction)
    assert interaction["authorizing_integration_owners"] == {"1": str(DEFAULT_USER_ID)}
    assert interaction["context"] == CONTEXT_GUILD
    assert callback.json == {"type": 5}
    assert followup.status == 200
    assert followup.json["content"].startswith("@dancer: a small dance")
    assert followup.json["flags"] & SUPPRESS_EMBEDS
    assert not followup.json["flags"] & EPHEMERAL
    assert_plays(video_of(followup, tmp_path), h264_clip)
    # Everyone in the channel sees it, as the answer to the command.
    [seen] = discord_api.messages_in(channel)
    assert seen["interaction_metadata"]["id"] == interaction["id"]
    no_channel_routes(discord_api)


async def test_the_message_command_in_a_server_without_the_bot(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, h264_clip: Clip, tmp_path: Path
) -> None:
    channel = elsewhere(discord_api)
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        message = discord_api.inject_message(f"look {link(POST)}", channel_id=channel)
        interaction = discord_api.inject_message_command(
            "Download video", message, user_install=True
        )
        _, followup = await answered(discord_api, interaction)
    assert_plays(video_of(followup, tmp_path), h264_clip)
    assert discord_api.reactions_on(message["id"]) == []
    no_channel_routes(discord_api)


@pytest.mark.parametrize("where", ["group DM", "bot DM"])
async def test_in_a_group_dm_and_the_bots_dm(
    where: str, tiktok: TikTokStandIn, discord_api: FakeDiscord, h264_clip: Clip, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        if where == "group DM":
            group = discord_api.add_group_dm(DEFAULT_USER_ID, FRIEND, name="pals")
            interaction = discord_api.inject_slash_command(
                "download", {"url": link(POST)}, channel_id=group, user_install=True
            )
            context = CONTEXT_PRIVATE_CHANNEL
        else:
            interaction = discord_api.inject_slash_command(
                "download", {"url": link(POST)}, guild_id=None, user_install=True
            )
            context = CONTEXT_BOT_DM
        _, followup = await answered(discord_api, interaction)
    assert interaction["context"] == context
    assert "guild_id" not in interaction
    assert_plays(video_of(followup, tmp_path), h264_clip)
    no_channel_routes(discord_api)


async def test_a_clip_too_large_for_the_interactions_limit_gets_a_private_reason(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    channel = elsewhere(discord_api)
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        interaction = discord_api.inject_slash_command(
            "download",
            {"url": link(LARGE_POST)},
            channel_id=channel,
            user_install=True,
            attachment_size_limit=200_000,
        )
        _, delete, followup = await answered(discord_api, interaction)
    assert delete.method == "DELETE"
    assert followup.json["content"] == reason_text(Reason.TOO_LARGE)
    assert followup.json["flags"] & EPHEMERAL
    assert not followup.files
    assert tiktok.media_requests == 0
    assert discord_api.messages_in(channel) == []
    [seen] = discord_api.messages_in(channel, as_user=DEFAULT_USER_ID)
    assert seen["content"] == reason_text(Reason.TOO_LARGE)
    no_channel_routes(discord_api)


async def test_a_private_post_gets_a_reason_only_the_invoker_sees(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    channel = elsewhere(discord_api)
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        interaction = discord_api.inject_slash_command(
            "download", {"url": link(PRIVATE_POST)}, channel_id=channel, user_install=True
        )
        _, _, followup = await answered(discord_api, interaction)
    assert followup.json["content"] == Reason.PRIVATE.message
    assert followup.json["flags"] & EPHEMERAL
    assert discord_api.messages_in(channel) == []
    [seen] = discord_api.messages_in(channel, as_user=DEFAULT_USER_ID)
    assert seen["content"] == Reason.PRIVATE.message
    no_channel_routes(discord_api)


async def test_private_true_keeps_the_video_to_the_invoker(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, h264_clip: Clip, tmp_path: Path
) -> None:
    channel = elsewhere(discord_api)
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        interaction = discord_api.inject_slash_command(
            "download",
            {"url": link(POST), "private": True},
            channel_id=channel,
            user_install=True,
        )
        callback, followup = await answered(discord_api, interaction)
    assert callback.json == {"type": 5, "data": {"flags": EPHEMERAL}}
    assert followup.json["flags"] & EPHEMERAL
    assert_plays(video_of(followup, tmp_path), h264_clip)
    assert discord_api.messages_in(channel) == []
    assert discord_api.messages_in(channel, as_user=FRIEND) == []
    [seen] = discord_api.messages_in(channel, as_user=DEFAULT_USER_ID)
    assert seen["flags"] & EPHEMERAL
    [attachment] = seen["attachments"]
    assert attachment["ephemeral"] is True
    no_channel_routes(discord_api)


async def test_private_true_where_the_bot_is_too(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, h264_clip: Clip, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        interaction = discord_api.inject_slash_command(
            "download", {"url": link(POST), "private": True}
        )
        _, followup = await answered(discord_api, interaction)
    assert interaction["authorizing_integration_owners"] == {"0": str(discord_api.guild_id)}
    assert followup.json["flags"] & EPHEMERAL
    assert discord_api.messages_in(discord_api.channel_id) == []
    assert_plays(video_of(followup, tmp_path), h264_clip)


async def test_a_gone_token_is_not_followed_by_channel_routes(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    """Every followup answers 50027: where the bot is not, nothing else may reach the
    invoker, so nothing else is tried (a guild install would answer in the channel)."""
    async with (
        FakeDiscord(token_lifetime=0.0) as dc,
        running_bot(tiktok, tmp_path / "data", discord=dc) as bot,
    ):
        channel = elsewhere(dc)
        interaction = dc.inject_slash_command(
            "download", {"url": link(POST)}, channel_id=channel, user_install=True
        )
        await dc.wait_for_request("POST", webhook(dc, interaction) + "$")
        await jobs_done(bot)
        refused = dc.requests_to("POST", webhook(dc, interaction) + "$")
    assert {call.response["code"] for call in refused} == {50027}
    no_channel_routes(dc)


async def test_a_late_acknowledgement_drops_the_request_where_the_bot_is_not(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    """Past the 3 s the interaction is lost; with no channel to answer in, nothing is fetched."""
    async with (
        FakeDiscord(ack_deadline=0.0) as dc,
        running_bot(tiktok, tmp_path / "data", discord=dc) as bot,
    ):
        group = dc.add_group_dm(DEFAULT_USER_ID, FRIEND)
        interaction = dc.inject_slash_command(
            "download", {"url": link(POST)}, channel_id=group, user_install=True
        )
        # A later command where the bot is: answered in its channel once all before it were
        # taken up (or dropped).
        marker = dc.inject_slash_command("download", {"url": link(PRIVATE_POST)})
        await dc.wait_for_request("POST", f"/channels/{marker['channel_id']}/messages$")
        await jobs_done(bot)
        [callback] = dc.requests_to("POST", f"/interactions/{interaction['id']}/")
    assert callback.response["code"] == 10062
    assert tiktok.media_requests == 0
    assert dc.requests_to("*", "/channels/") == dc.requests_to(
        "POST", f"/channels/{marker['channel_id']}/messages$"
    )
    assert dc.requests_to("*", webhook(dc, interaction)) == []


async def test_both_installs_in_a_server_with_the_bot_may_use_its_channel(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    """The guild install key is there, so a gone token still ends in the channel."""
    async with (
        FakeDiscord(token_lifetime=0.0) as dc,
        running_bot(tiktok, tmp_path / "data", discord=dc),
    ):
        interaction = dc.inject_slash_command("download", {"url": link(POST)}, user_install=True)
        [sent] = await dc.wait_for_request("POST", f"/channels/{dc.channel_id}/messages$")
    assert interaction["authorizing_integration_owners"] == {
        "0": str(dc.guild_id),
        "1": str(DEFAULT_USER_ID),
    }
    assert sent.json["content"].startswith(f"<@{DEFAULT_USER_ID}> @dancer")


def test_journal_entries_from_before_user_installs_still_decode() -> None:
    codec = origin_codec()
    old = {
        "kind": "InteractionOrigin",
        "scope": "",
        "application_id": 1,
        "token": "tok",
        "channel_id": 2,
        "user_id": 3,
        "platform": "discord",
    }
    origin = codec.decode(json.dumps(old), age_s=1.0)
    assert origin == InteractionOrigin(1, "tok", channel_id=2, user_id=3)
    assert isinstance(origin, InteractionOrigin)
    assert (origin.in_channel, origin.ephemeral) == (True, False)
    elsewhere_only = InteractionOrigin(1, "tok", 2, 3, in_channel=False, ephemeral=True)
    assert codec.decode(codec.encode(elsewhere_only), age_s=1.0) == elsewhere_only
