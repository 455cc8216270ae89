"""A Discord server's settings change what the next request does, and /top lists the server's
most reshared clips with buttons that send them again (real bot, discord.py, stand-ins)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from adapters.runtime import Reshare
from bot.chat_settings import (
    CaptionStyle,
    ChatSettings,
    FailureStyle,
    OriginalMessage,
    SlideshowMode,
)
from bot.model import Reason
from bot.trending import TOP_OFF_TEXT
from tests.harness import jobs_done, link, running_bot
from tests.standins.clips import Clip, make_image
from tests.standins.discord_api import DEFAULT_GUILD_ID, FakeDiscord
from tests.standins.tiktok import TikTokStandIn
from tests.test_discord_settings_e2e import open_settings, press

POST = "7370000000000000001"
OTHER = "7370000000000000002"
PRIVATE_POST = "7370000000000000003"
PHOTO_POST = "7370000000000000004"


@pytest.fixture
async def tiktok(h264_clip: Clip, music: Path, tmp_path: Path) -> AsyncIterator[TikTokStandIn]:
    slides = [make_image(tmp_path / f"s{n}.jpeg", width=720, height=960, seed=n) for n in (1, 2)]
    async with TikTokStandIn() as tt:
        tt.add_photo_post(PHOTO_POST, slides, music, author="painter", desc="two slides")
        tt.add_video(POST, h264_clip, author="dancer")
        tt.add_video(OTHER, h264_clip, author="singer")
        tt.add_status(PRIVATE_POST, 10216)
        tt.add_short_link("ZMdtop01", f"/@dancer/video/{POST}")
        yield tt


async def choose(bot: Reshare, settings: ChatSettings) -> None:
    store = bot.engine.chat_settings
    assert store is not None
    await store.put(f"discord:server:{DEFAULT_GUILD_ID}", settings)


async def test_caption_failures_and_the_link_message_as_the_server_chose(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    channel = discord_api.channel_id
    posted = f"/channels/{channel}/messages$"
    discord_api.guild.bot_can_manage_messages = True
    async with running_bot(
        tiktok, tmp_path / "data", discord=discord_api, discord_message_content=True
    ) as bot:
        await choose(
            bot,
            ChatSettings(
                caption=CaptionStyle.LINK,
                failures=FailureStyle.REPLY,
                original=OriginalMessage.DELETE,
            ),
        )
        bare = discord_api.inject_message(link(POST))
        failed = discord_api.inject_message(f"look {link(PRIVATE_POST)}")
        await discord_api.wait_for_request("POST", posted, count=2)
        await jobs_done(bot)
        await choose(bot, ChatSettings(failures=FailureStyle.SILENT, original=OriginalMessage.KEEP))
        quiet = discord_api.inject_message(f"and {link(PRIVATE_POST)}")
        kept = discord_api.inject_message(link(OTHER))
        await discord_api.wait_for_request("POST", posted, count=3)
        await jobs_done(bot)
    answers = {
        str(call.json["message_reference"]["message_id"]): call
        for call in discord_api.requests_to("POST", posted)
    }
    video, reason, other = answers[bare["id"]], answers[failed["id"]], answers[kept["id"]]
    assert video.json["content"] == f"https://www.tiktok.com/@dancer/video/{POST}"
    assert reason.json["content"] == Reason.PRIVATE.message
    assert int(reason.json["message_reference"]["message_id"]) == int(failed["id"])
    deleted = discord_api.requests_to("DELETE", f"/channels/{channel}/messages/")
    assert [call.path.rsplit("/", 1)[1] for call in deleted] == [bare["id"]]
    assert discord_api.reactions_on(failed["id"]) == []
    assert discord_api.reactions_on(quiet["id"]) == []
    assert other.json["content"].startswith("@singer")
    # Kept as it is: its preview was not hidden either.
    edits = discord_api.requests_to("PATCH", f"/channels/{channel}/messages/{kept['id']}")
    assert edits == []


async def test_a_spanish_locale_gets_spanish_and_a_server_s_language_wins(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api) as bot:
        spanish = discord_api.inject_slash_command(
            "download", {"url": link(PRIVATE_POST)}, locale="es-ES"
        )
        await discord_api.wait_for_request("POST", f"/webhooks/.*/{spanish['token']}$")
        await jobs_done(bot)
        await choose(bot, ChatSettings(language="pt"))
        portuguese = discord_api.inject_slash_command(
            "download", {"url": link(PRIVATE_POST)}, locale="es-ES", user_id=5
        )
        await discord_api.wait_for_request("POST", f"/webhooks/.*/{portuguese['token']}$")
        await jobs_done(bot)
    texts = bot.engine.texts
    *_, said = discord_api.interaction_responses(spanish["id"])
    assert said.json["content"] == texts.text("es", Reason.PRIVATE.message)
    assert said.json["content"] != Reason.PRIVATE.message
    *_, said = discord_api.interaction_responses(portuguese["id"])
    assert said.json["content"] == texts.text("pt", Reason.PRIVATE.message)


async def test_top_lists_the_server_s_clips_and_its_button_sends_one_again(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api) as bot:
        for n, url in enumerate([link(POST), "https://vm.tiktok.com/ZMdtop01/", link(OTHER)]):
            asked = discord_api.inject_slash_command("download", {"url": url}, user_id=10 + n)
            await discord_api.wait_for_request("POST", f"/webhooks/.*/{asked['token']}$")
            await jobs_done(bot)
        top = discord_api.inject_slash_command("top")
        [answer] = await discord_api.wait_for_request(
            "POST", f"/interactions/{top['id']}/.*/callback"
        )
        listed = discord_api.message(answer_message_id(discord_api, top))
        fetched = tiktok.media_requests
        click = discord_api.inject_button_click(f"again:tiktok:{POST}", listed, user_id=20)
        await discord_api.wait_for_request("POST", f"/webhooks/.*/{click['token']}$")
        await jobs_done(bot)
        # The server turns /top off in /settings: its counts are forgotten.
        settings = await open_settings(discord_api)
        await press(discord_api, settings, "set:trending", "off")
        off = discord_api.inject_slash_command("top")
        [said_off] = await discord_api.wait_for_request(
            "POST", f"/interactions/{off['id']}/.*/callback"
        )
        trending = bot.engine.trending
        assert trending is not None
        kept = await trending.top(f"discord:server:{DEFAULT_GUILD_ID}", 0, 10)
    lines = answer.json["data"]["content"].splitlines()
    assert lines[1] == f"1. https://www.tiktok.com/@dancer/video/{POST} — 🔁 2 · 👤 2"
    assert lines[2].startswith(f"2. https://www.tiktok.com/@singer/video/{OTHER}")
    custom_ids = [
        button["custom_id"] for row in listed["components"] for button in row["components"]
    ]
    assert custom_ids == [f"again:tiktok:{POST}", f"again:tiktok:{OTHER}"]
    # From the media store: TikTok was not asked again.
    assert tiktok.media_requests == fetched
    *_, video = discord_api.interaction_responses(click["id"])
    assert video.files
    assert said_off.json["data"]["content"] == TOP_OFF_TEXT
    assert kept == []


def answer_message_id(discord_api: FakeDiscord, interaction: dict[str, object]) -> str:
    [message] = [
        m
        for m in discord_api.messages_in(discord_api.channel_id)
        if (m.get("interaction_metadata") or {}).get("id") == interaction["id"]
    ]
    return str(message["id"])


async def test_a_photo_post_as_one_video_where_the_server_chose_it(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    photo = f"https://www.tiktok.com/@painter/photo/{PHOTO_POST}"
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api) as bot:
        as_photos = discord_api.inject_slash_command("download", {"url": photo})
        await discord_api.wait_for_request("POST", f"/webhooks/.*/{as_photos['token']}$", count=2)
        await jobs_done(bot)
        await choose(bot, ChatSettings(slideshow=SlideshowMode.VIDEO))
        as_video = discord_api.inject_slash_command("download", {"url": photo}, user_id=6)
        await discord_api.wait_for_request("POST", f"/webhooks/.*/{as_video['token']}$", timeout=60)
        await jobs_done(bot)
    photos = [call for call in discord_api.interaction_responses(as_photos["id"]) if call.files]
    [video] = [call for call in discord_api.interaction_responses(as_video["id"]) if call.files]
    assert [file.filename.rsplit(".", 1)[1] for file in photos[0].files] == ["jpg", "jpg"]
    assert [file.filename.rsplit(".", 1)[1] for file in video.files] == ["mp4"]
