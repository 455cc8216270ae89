"""The "🎵 Sound" button and /audio: a clip's sound as an audio file, on both platforms, sent
once and then again by its file id (Telegram) or from the media store (Discord)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import av
import pytest

from tests.harness import answers_to, link, running_bot
from tests.standins.clips import Clip, make_image
from tests.standins.discord_api import FakeDiscord
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import TikTokStandIn

POST = "7301234567890123456"
PHOTO_POST = "7430000000000000077"
BUTTON = f"snd:tiktok:{POST}"
GROUP = -1001234567890
SECONDARY = 2


@pytest.fixture
async def tiktok(h264_clip: Clip, music: Path, tmp_path: Path) -> AsyncIterator[TikTokStandIn]:
    slides = tuple(
        make_image(tmp_path / f"slide{n}.jpeg", width=360, height=480, seed=n) for n in range(2)
    )
    async with TikTokStandIn() as tt:
        tt.add_video(POST, h264_clip, author="dancer", nickname="Dancer Queen", desc="a dance")
        tt.add_photo_post(PHOTO_POST, slides, music, author="painter", nickname="The Painter")
        yield tt


def sound_of(data: bytes, directory: Path, name: str) -> dict[str, Any]:
    """What a player finds in the bytes received: codecs and the title and artist tags."""
    path = directory / name
    path.write_bytes(data)
    with av.open(str(path)) as container:
        return {
            "format": container.format.name,
            "audio": [stream.codec_context.name for stream in container.streams.audio],
            "video": len(container.streams.video),
            "title": container.metadata.get("title"),
            "artist": container.metadata.get("artist"),
            "duration": (container.duration or 0) / av.time_base,
        }


def bot_message_with(api: FakeBotApi, chat_id: int, kind: str) -> dict[str, Any]:
    [message] = [m for m in api.chat_history(chat_id) if m["from"]["is_bot"] and kind in m]
    return message


async def test_telegram_sound_button_sends_the_audio_once_and_then_by_file_id(
    tiktok: TikTokStandIn, api: FakeBotApi, h264_clip: Clip, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", telegram=api):
        api.inject_message(link(POST))
        await api.wait_for_call("sendVideo")
        video = bot_message_with(api, 1001, "video")
        assert video["reply_markup"] == {
            "inline_keyboard": [[{"text": "🎵 Sound", "callback_data": BUTTON}]]
        }
        pressed = api.press_button(1001, video["message_id"], BUTTON)
        [first] = await api.wait_for_call("sendAudio", timeout=60)
        seen_by_tiktok = len(tiktok.requests)
        again = api.press_button(1001, video["message_id"], BUTTON, user_id=43)
        [_, second] = await api.wait_for_call("sendAudio", count=2)
    assert api.callback_answer(pressed).at < first.at
    api.callback_answer(again)
    assert first.params["reply_parameters"]["message_id"] == video["message_id"]
    assert first.params["title"] == "original sound - dancer"
    assert first.params["performer"] == "Dancer Queen"
    assert first.params["duration"] == round(h264_clip.duration)
    assert first.files["audio"].filename == f"{POST}.m4a"
    found = sound_of(api.file_bytes(first, "audio"), tmp_path, "received.m4a")
    assert found["audio"] == ["aac"]
    assert found["video"] == 0
    assert "mp4" in found["format"]
    assert (found["title"], found["artist"]) == ("original sound - dancer", "Dancer Queen")
    assert found["duration"] == pytest.approx(h264_clip.duration, abs=0.15)
    # The second press: no upload and no TikTok request, the first upload's file id instead.
    assert second.files == {}
    assert second.params["audio"] == first.result["audio"]["file_id"]
    assert second.params["reply_parameters"]["message_id"] == video["message_id"]
    assert second.params["title"] == "original sound - dancer"
    assert len(tiktok.requests) == seen_by_tiktok
    assert len(api.calls_to("sendVideo")) == 1


async def test_telegram_audio_command_works_in_a_group(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", telegram=api):
        command = api.inject_command(
            "audio", link(POST), mention_bot=True, chat_id=GROUP, chat_type="supergroup"
        )
        [sent] = await api.wait_for_call("sendAudio", timeout=60)
    assert sent.params["chat_id"] == GROUP
    assert sent.params["reply_parameters"]["message_id"] == command["message_id"]
    assert sent.params["performer"] == "Dancer Queen"
    assert sound_of(api.file_bytes(sent, "audio"), tmp_path, "group.m4a")["audio"] == ["aac"]
    assert api.calls_to("sendVideo") == []


async def test_a_photo_posts_sound_is_its_music(
    tiktok: TikTokStandIn, api: FakeBotApi, music: Path, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", telegram=api):
        api.inject_command("audio", f"https://www.tiktok.com/@painter/photo/{PHOTO_POST}")
        [sent] = await api.wait_for_call("sendAudio", timeout=60)
    assert api.file_bytes(sent, "audio") == music.read_bytes()
    assert sent.files["audio"].filename == f"{PHOTO_POST}.mp3"
    assert sent.params["title"] == "original sound - painter"
    assert sent.params["performer"] == "The Painter"
    assert api.calls_to("sendMediaGroup") == api.calls_to("sendPhoto") == []


def followups(discord_api: FakeDiscord, interaction: dict[str, Any]) -> str:
    return f"/webhooks/{discord_api.application_id}/{interaction['token']}"


async def test_discord_video_has_the_button_and_a_click_gets_the_audio(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        command = discord_api.inject_slash_command("download", {"url": link(POST)})
        await discord_api.wait_for_request("POST", followups(discord_api, command))
        [video] = answers_to(discord_api, command)
        [[button]] = [row["components"] for row in video["components"]]
        assert (button["type"], button["style"]) == (2, SECONDARY)
        assert (button["label"], button["custom_id"]) == ("🎵 Sound", BUTTON)
        click = discord_api.inject_button_click(BUTTON, video)
        [sound] = await discord_api.wait_for_request("POST", followups(discord_api, click))
        seen_by_tiktok = len(tiktok.requests)
        again = discord_api.inject_button_click(BUTTON, video, user_id=4242)
        [sound_again] = await discord_api.wait_for_request("POST", followups(discord_api, again))
    callback, *_ = discord_api.interaction_responses(click["id"])
    assert callback.json["type"] == 5  # deferred, "thinking…", not ephemeral
    assert not callback.json.get("data", {}).get("flags", 0) & 64
    [upload] = sound.files
    assert upload.filename == f"{POST}.m4a"
    found = sound_of(upload.data, tmp_path, "discord.m4a")
    assert (found["audio"], found["video"]) == (["aac"], 0)
    assert sound.json["content"] == "🎵 original sound - dancer — Dancer Queen"
    # Again from the media store: the same bytes, TikTok not asked.
    [upload_again] = sound_again.files
    assert (upload_again.filename, upload_again.data) == (upload.filename, upload.data)
    assert len(tiktok.requests) == seen_by_tiktok


async def test_discord_audio_command(
    tiktok: TikTokStandIn, discord_api: FakeDiscord, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", discord=discord_api):
        names = {c["name"] for c in discord_api.commands[None]}
        assert "audio" in names
        command = discord_api.inject_slash_command("audio", {"url": link(POST)}, guild_id=None)
        [sound] = await discord_api.wait_for_request("POST", followups(discord_api, command))
    [upload] = sound.files
    assert upload.filename == f"{POST}.m4a"
    assert sound_of(upload.data, tmp_path, "command.m4a")["audio"] == ["aac"]
    assert "components" not in sound.json or not sound.json["components"]
