"""Each chat setting changes what the next request does, end to end on Telegram (the Discord
side is in tests/test_discord_settings_e2e.py): the real bot, PTB and the stand-ins."""

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
from bot.intake import Answer
from bot.model import Reason
from tests.harness import jobs_done, link, running_bot
from tests.standins.clips import Clip, make_image
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import TikTokStandIn

POST = "7350000000000000001"
OTHER_POST = "7350000000000000002"
PRIVATE_POST = "7350000000000000003"
PHOTO_POST = "7350000000000000004"
GROUP = -700
SUPERGROUP = -1007000000001


@pytest.fixture
async def tiktok(h264_clip: Clip, music: Path, tmp_path: Path) -> AsyncIterator[TikTokStandIn]:
    slides = [make_image(tmp_path / f"s{n}.jpeg", width=720, height=960, seed=n) for n in (1, 2)]
    async with TikTokStandIn() as tt:
        tt.add_video(POST, h264_clip, author="dancer", desc="a small dance")
        tt.add_video(OTHER_POST, h264_clip, author="dancer", desc="another dance")
        tt.add_status(PRIVATE_POST, 10216)
        tt.add_photo_post(PHOTO_POST, slides, music, author="painter", desc="two slides")
        yield tt


async def choose(bot: Reshare, chat: int, settings: ChatSettings) -> None:
    store = bot.engine.chat_settings
    assert store is not None
    await store.put(f"telegram:chat:{chat}", settings)


async def test_caption_link_only_and_none(
    api: FakeBotApi, tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", telegram=api) as bot:
        await choose(bot, GROUP, ChatSettings(caption=CaptionStyle.LINK))
        api.inject_message(link(POST), chat_id=GROUP, chat_type="group")
        [first] = await api.wait_for_call("sendVideo")
        await jobs_done(bot)
        await choose(bot, GROUP, ChatSettings(caption=CaptionStyle.NONE))
        # The same clip again (by its file id), and a new one (uploaded): neither has one.
        api.inject_message(link(POST), chat_id=GROUP, chat_type="group")
        api.inject_message(link(OTHER_POST), chat_id=GROUP, chat_type="group")
        _, again, new = await api.wait_for_call("sendVideo", count=3)
        await jobs_done(bot)
    assert first.params["caption"] == f"https://www.tiktok.com/@dancer/video/{POST}"
    assert "caption" not in again.params
    assert "caption" not in new.params


async def test_the_link_message_is_deleted_when_it_held_only_the_link(
    api: FakeBotApi, tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    api.add_chat(SUPERGROUP, "supergroup", bot_status="administrator")
    async with running_bot(tiktok, tmp_path / "data", telegram=api) as bot:
        await choose(bot, SUPERGROUP, ChatSettings(original=OriginalMessage.DELETE))
        bare = api.inject_message(f"  {link(POST)} ", chat_id=SUPERGROUP, chat_type="supergroup")
        await api.wait_for_call("sendVideo")
        await jobs_done(bot)
        talk = api.inject_message(
            f"look at this {link(OTHER_POST)}", chat_id=SUPERGROUP, chat_type="supergroup"
        )
        await api.wait_for_call("sendVideo", count=2)
        await jobs_done(bot)
    assert api.deleted(SUPERGROUP, bare["message_id"])
    assert not api.deleted(SUPERGROUP, talk["message_id"])
    assert len(api.calls_to("deleteMessage")) == 1


async def test_without_the_right_to_delete_the_video_still_comes_and_settings_say_so(
    api: FakeBotApi, tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    api.add_chat(SUPERGROUP, "supergroup", bot_status="member", user_id=81)
    api.set_member(SUPERGROUP, 81, "administrator")
    async with running_bot(tiktok, tmp_path / "data", telegram=api) as bot:
        await choose(bot, SUPERGROUP, ChatSettings(original=OriginalMessage.DELETE))
        bare = api.inject_message(link(POST), chat_id=SUPERGROUP, chat_type="supergroup")
        [video] = await api.wait_for_call("sendVideo")
        await jobs_done(bot)
        api.inject_message("/settings", chat_id=SUPERGROUP, chat_type="supergroup", user_id=81)
        [shown] = await api.wait_for_call("sendMessage")
    assert video.params["reply_parameters"]["message_id"] == bare["message_id"]
    assert not api.deleted(SUPERGROUP, bare["message_id"])
    assert "can't delete messages here" in shown.params["text"]
    assert [call.params["text"] for call in api.calls_to("sendMessage")] == [shown.params["text"]]


async def test_failures_as_a_reaction_or_not_at_all(
    api: FakeBotApi, tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", telegram=api) as bot:
        await choose(bot, GROUP, ChatSettings(failures=FailureStyle.REACTION))
        reacted = api.inject_message(link(PRIVATE_POST), chat_id=GROUP, chat_type="group")
        await api.wait_for_call("setMessageReaction")
        await jobs_done(bot)
        await choose(bot, GROUP, ChatSettings(failures=FailureStyle.SILENT))
        quiet = api.inject_message(link(PRIVATE_POST), chat_id=GROUP, chat_type="group")
        await jobs_done(bot)
        # The default, for comparison: a short reply.
        said = api.inject_message(link(PRIVATE_POST), chat_id=GROUP + 1, chat_type="group")
        [reply] = await api.wait_for_call("sendMessage")
        await jobs_done(bot)
    assert api.reactions(GROUP, reacted["message_id"]) == ["🤷"]
    assert api.reactions(GROUP, quiet["message_id"]) == []
    assert reply.params["text"] == Reason.PRIVATE.message
    assert reply.params["reply_parameters"]["message_id"] == said["message_id"]
    assert len(api.calls_to("setMessageReaction")) == 1


async def test_a_photo_post_as_one_video_where_the_chat_chose_it(
    api: FakeBotApi, tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    photo = f"https://www.tiktok.com/@painter/photo/{PHOTO_POST}"
    async with running_bot(tiktok, tmp_path / "data", telegram=api) as bot:
        await choose(bot, GROUP, ChatSettings(slideshow=SlideshowMode.VIDEO))
        api.inject_message(photo, chat_id=GROUP, chat_type="group")
        [video] = await api.wait_for_call("sendVideo", timeout=60)
        await jobs_done(bot)
        # Another chat keeps the default: the photos themselves.
        api.inject_message(photo, chat_id=GROUP + 1, chat_type="group")
        await api.wait_for_call("sendAudio", timeout=60)
        await jobs_done(bot)
    assert int(video.params["chat_id"]) == GROUP
    assert len(api.calls_to("sendMediaGroup")) == 1


async def test_a_spanish_speaker_gets_spanish_and_a_chat_s_language_wins(
    api: FakeBotApi, tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", telegram=api) as bot:
        api.inject_message(link(PRIVATE_POST), chat_id=901, user_id=901, language_code="es")
        [spanish] = await api.wait_for_call("sendMessage")
        await jobs_done(bot)
        api.inject_message("hola", chat_id=901, user_id=901, language_code="es")
        [_, no_link] = await api.wait_for_call("sendMessage", count=2)
        await choose(bot, GROUP, ChatSettings(language="de"))
        api.inject_message(link(PRIVATE_POST), chat_id=GROUP, chat_type="group", user_id=902)
        [*_, german] = await api.wait_for_call("sendMessage", count=3)
        await jobs_done(bot)
    texts = bot.engine.texts
    assert spanish.params["text"] == texts.text("es", Reason.PRIVATE.message)
    assert spanish.params["text"] != Reason.PRIVATE.message
    assert no_link.params["text"] == bot.engine.intake.say(Answer.NO_LINK, "es")
    assert no_link.params["text"] != bot.engine.intake.say(Answer.NO_LINK)
    assert german.params["text"] == texts.text("de", Reason.PRIVATE.message)
    assert german.params["text"] != Reason.PRIVATE.message
