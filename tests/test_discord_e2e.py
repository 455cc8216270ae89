"""The real bot (discord.py, yt-dlp, ffmpeg) against the TikTok and Discord stand-ins."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.discord.inbound import InteractionOrigin
from bot.model import ClipInfo, FetchError, Manner, Media, Reason
from tests.harness import assert_plays, link, running_bot
from tests.standins.clips import Clip
from tests.standins.discord_api import FakeDiscord, RestCall
from tests.standins.tiktok import TikTokStandIn

POST = "7301234567890123456"
LARGE_POST = "7301234567890123459"
PRIVATE_POST = "7301234567890000001"
EPHEMERAL = 1 << 6
SUPPRESS_EMBEDS = 1 << 2
TEN_MIB = 10 * 1024 * 1024


@pytest.fixture
async def tiktok(h264_clip: Clip, large_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        tt.add_video(POST, h264_clip, author="dancer", desc="a small dance #fyp")
        tt.add_video(LARGE_POST, large_clip, author="big", desc="too big for 10 MiB")
        tt.add_status(PRIVATE_POST, 10216)
        tt.add_short_link("ZMshort1", f"/@dancer/video/{POST}")
        yield tt


def received_mp4(discord_api: FakeDiscord, call: RestCall, directory: Path) -> Path:
    [upload] = call.files
    assert upload.filename.endswith(".mp4")
    path = directory / f"{call.at}-{upload.filename}"
    path.write_bytes(upload.data)
    return path


def webhook_path(discord_api: FakeDiscord, interaction: dict[str, object]) -> str:
    return f"/webhooks/{discord_api.application_id}/{interaction['token']}"


async def test_download_defers_at_once_then_answers_with_the_video(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, h264_clip: Clip, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        interaction = discord_api.inject_slash_command("download", {"url": link(POST)})
        await discord_api.wait_for_request("POST", webhook_path(discord_api, interaction))
    callback, followup = discord_api.interaction_responses(interaction["id"])
    assert callback.json["type"] == 5  # deferred: the user sees "thinking…"
    assert callback.status in (200, 204)
    assert followup.method == "POST"
    assert followup.status == 200
    assert followup.json["content"].startswith("@dancer: a small dance #fyp")
    assert followup.json["content"].endswith(f"https://www.tiktok.com/@dancer/video/{POST}")
    assert followup.json["flags"] & SUPPRESS_EMBEDS
    assert not followup.json["flags"] & EPHEMERAL
    assert_plays(received_mp4(discord_api, followup, tmp_path), h264_clip)


async def test_commands_are_synced_and_usable_in_a_dm(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, h264_clip: Clip, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        names = {(c["name"], c["type"]) for c in discord_api.commands[None]}
        assert names == {
            ("download", 1),
            ("Download video", 3),
            ("audio", 1),
            ("settings", 1),
            ("top", 1),
        }
        # Shown in each catalogue language by the person's locale (English elsewhere).
        by_name = {c["name"]: c for c in discord_api.commands[None]}
        download = by_name["download"]
        assert (
            download["description_localizations"]["de"]
            == "Schickt das Video hinter einem TikTok-Link"
        )
        assert download["description_localizations"]["pt-BR"].startswith("Envi")
        assert "en-US" not in download["description_localizations"]
        assert by_name["Download video"]["name_localizations"]["ru"] == "Скачать видео"
        assert by_name["download"]["name_localizations"] is None
        interaction = discord_api.inject_slash_command(
            "download", {"url": "https://vm.tiktok.com/ZMshort1/"}, guild_id=None
        )
        [followup] = await discord_api.wait_for_request(
            "POST", webhook_path(discord_api, interaction)
        )
    assert_plays(received_mp4(discord_api, followup, tmp_path), h264_clip)


async def test_download_video_on_a_message_with_a_short_link(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, h264_clip: Clip, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        message = discord_api.inject_message("lol https://vm.tiktok.com/ZMshort1/ look")
        interaction = discord_api.inject_message_command("Download video", message)
        [followup] = await discord_api.wait_for_request(
            "POST", webhook_path(discord_api, interaction)
        )
    # Without the Message Content intent the bot never reads ordinary messages.
    assert discord_api.requests_to("*", "/channels/") == []
    assert_plays(received_mp4(discord_api, followup, tmp_path), h264_clip)


async def test_a_private_post_gets_a_reason_only_the_invoker_sees(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        interaction = discord_api.inject_slash_command("download", {"url": link(PRIVATE_POST)})
        await discord_api.wait_for_request("POST", webhook_path(discord_api, interaction))
    callback, delete, followup = discord_api.interaction_responses(interaction["id"])
    assert callback.json["type"] == 5
    assert (delete.method, delete.path) == (
        "DELETE",
        webhook_path(discord_api, interaction) + "/messages/@original",
    )
    assert followup.json["content"] == "This video is private."
    assert followup.json["flags"] & EPHEMERAL
    channel = discord_api.channel_id
    assert discord_api.messages_in(channel) == []
    [seen] = discord_api.messages_in(channel, as_user=int(interaction["member"]["user"]["id"]))
    assert seen["content"] == "This video is private."


async def test_a_link_that_is_not_tiktok_is_answered_privately_at_once(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        interaction = discord_api.inject_slash_command(
            "download", {"url": "https://example.com/video/1"}
        )
        [callback] = await discord_api.wait_for_request(
            "POST", f"/interactions/{interaction['id']}/"
        )
    assert callback.json["type"] == 4
    assert callback.json["data"]["flags"] & EPHEMERAL
    assert "TikTok" in callback.json["data"]["content"]


async def test_auto_detect_replies_to_the_message_with_the_video(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, h264_clip: Clip, tmp_path: Path
) -> None:
    channel = discord_api.channel_id
    async with running_bot(
        tiktok, tmp_path / "data", discord=discord_api, discord_message_content=True
    ):
        message = discord_api.inject_message(f"haha {link(POST)}")
        [sent] = await discord_api.wait_for_request("POST", f"/channels/{channel}/messages")
    assert int(sent.json["message_reference"]["message_id"]) == int(message["id"])
    assert sent.json["flags"] & SUPPRESS_EMBEDS
    assert sent.json["content"].startswith("@dancer:")
    assert_plays(received_mp4(discord_api, sent, tmp_path), h264_clip)
    assert discord_api.reactions_on(message["id"]) == []


async def test_auto_detect_marks_a_failed_link_with_a_reaction_only(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    async with running_bot(
        tiktok, tmp_path / "data", discord=discord_api, discord_message_content=True
    ):
        message = discord_api.inject_message(f"see {link(PRIVATE_POST)}")
        await discord_api.wait_for_request("PUT", "/channels/.*/reactions/")
    assert discord_api.reactions_on(message["id"]) == ["⚠️"]
    assert discord_api.requests_to("POST", f"/channels/{discord_api.channel_id}/messages$") == []


async def test_without_the_intent_ordinary_messages_get_no_answer(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        discord_api.inject_message(f"see {link(PRIVATE_POST)}")
        discord_api.inject_message(f"and {link(POST)}")
        # A command answered proves the bot was connected and reading while those arrived.
        interaction = discord_api.inject_slash_command("download", {"url": link(PRIVATE_POST)})
        await discord_api.wait_for_request("POST", webhook_path(discord_api, interaction))
    assert discord_api.requests_to("*", "/channels/") == []
    assert tiktok.count(path_prefix=f"/@_/video/{POST}") == 0


async def test_messages_without_a_link_and_bot_messages_cause_no_call(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    async with running_bot(
        tiktok, tmp_path / "data", discord=discord_api, discord_message_content=True
    ):
        before = len(discord_api.requests)
        discord_api.inject_message("no link here, see example.com")
        discord_api.inject_message(f"bot says {link(POST)}", author_id=555, author_bot=True)
        marker = discord_api.inject_message(f"marker {link(PRIVATE_POST)}")
        await discord_api.wait_for_request("PUT", "/channels/.*/reactions/")
    calls = discord_api.requests[before:]
    # Only the marker got anything: "typing…" while it was fetched, then the reaction.
    assert [(c.method, c.path) for c in calls] == [
        ("POST", f"/channels/{discord_api.channel_id}/typing"),
        ("PUT", f"/channels/{discord_api.channel_id}/messages/{marker['id']}/reactions/⚠️/@me"),
    ]
    assert discord_api.reactions_on(marker["id"]) == ["⚠️"]
    assert tiktok.count(path_prefix=f"/@_/video/{POST}") == 0


async def test_commands_can_be_synced_to_one_guild(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    guild = discord_api.guild.id
    async with running_bot(
        tiktok, tmp_path / "data", discord=discord_api, discord_command_guild_id=guild
    ):
        pass
    assert discord_api.commands.get(None, []) == []
    assert {c["name"] for c in discord_api.commands[guild]} == {
        "download",
        "Download video",
        "audio",
        "settings",
        "top",
    }


async def test_auto_detect_budget_is_the_servers_upload_limit(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, large_clip: Clip, tmp_path: Path
) -> None:
    boosted = discord_api.add_guild(4242, premium_tier=2)
    async with running_bot(
        tiktok, tmp_path / "data", discord=discord_api, discord_message_content=True
    ):
        discord_api.inject_message(f"big {link(LARGE_POST)}")
        channel = discord_api.channel_id
        [plain] = await discord_api.wait_for_request(
            "POST", f"/channels/{channel}/messages$", timeout=120
        )
        discord_api.inject_message(f"big {link(LARGE_POST)}", guild_id=boosted.id)
        [sent] = await discord_api.wait_for_request(
            "POST", f"/channels/{boosted.channel_id}/messages$"
        )
    # 10 MiB on a plain server: re-encoded to fit; 50 MiB on a boosted one: sent as served.
    assert len(plain.files[0].data) <= TEN_MIB < large_clip.size
    assert sent.files[0].data == large_clip.path.read_bytes()


async def test_discords_413_becomes_the_size_reason(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, h264_clip: Clip, tmp_path: Path
) -> None:
    """Should Discord's limit be lower than the budget the bot was told, 40005 is no crash."""
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api) as bot:
        assert bot.discord is not None
        interaction = discord_api.inject_slash_command(
            "download", {"url": "https://example.com/"}, attachment_size_limit=1000
        )
        await discord_api.wait_for_request("POST", f"/interactions/{interaction['id']}/")
        origin = InteractionOrigin(discord_api.application_id, str(interaction["token"]))
        media = Media(
            path=h264_clip.path,
            width=h264_clip.width,
            height=h264_clip.height,
            duration=h264_clip.duration,
            size=h264_clip.size,
            thumbnail=None,
            info=ClipInfo(POST, "dancer", "Dancer", "", link(POST)),
        )
        with pytest.raises(FetchError) as caught:
            await bot.discord.replier.deliver(origin, media, Manner())
    assert caught.value.reason is Reason.TOO_LARGE
    [refused] = discord_api.requests_to("POST", webhook_path(discord_api, interaction))
    assert refused.status == 413
    assert refused.response["code"] == 40005
