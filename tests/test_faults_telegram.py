"""The real bot against a Bot API stand-in that misbehaves on the test's command: every request
gets one answer (the video, or one reason), never two, and the bot goes on working after."""

from __future__ import annotations

import logging
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.runtime import Reshare
from adapters.telegram import TelegramSettings
from adapters.telegram.outbound import UPLOAD_TIMEOUT_S
from bot.model import Reason
from tests.harness import (
    assert_plays,
    jobs_done,
    link,
    replies_to,
    running_bot,
    until,
    uploaded_video,
)
from tests.standins.clips import Clip, make_image, make_music
from tests.standins.telegram_api import TRANSIENT_FAULTS, FakeBotApi
from tests.standins.tiktok import TikTokStandIn

TOKEN = "123456:TEST-faults-token"
POST = "7301234567890123456"
SECOND_POST = "7301234567890123458"
PRIVATE_POST = "7301234567890000001"
PHOTO_POST = "7430000000000000043"
SLOW_ANSWER_S = 30.0


@pytest.fixture
async def tiktok(h264_clip: Clip, tall_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with TikTokStandIn() as tt:
        tt.add_video(POST, h264_clip, author="dancer", desc="a small dance")
        tt.add_video(SECOND_POST, tall_clip, author="second", desc="the second clip")
        tt.add_status(PRIVATE_POST, 10216)
        yield tt


@pytest.fixture
async def api() -> AsyncIterator[FakeBotApi]:
    async with FakeBotApi(token=TOKEN) as server:
        yield server


async def ask(reshare: Reshare, api: FakeBotApi, post: str, chat_id: int) -> dict[str, Any]:
    """Send a link (not fetched before) and wait until its request has been handled to the end,
    retries included."""
    message = api.inject_message(link(post), chat_id=chat_id)
    # The chat action shows the job was taken; the queue then drains once it is answered.
    await until(lambda: any(c.params["chat_id"] == chat_id for c in api.calls_to("sendChatAction")))
    await jobs_done(reshare)
    return message


async def assert_still_works(reshare: Reshare, api: FakeBotApi, tall_clip: Clip, tmp: Path) -> None:
    message = await ask(reshare, api, SECOND_POST, chat_id=9_999)
    [video] = replies_to(api, message)
    call = next(c for c in api.calls_to("sendVideo") if c.params["chat_id"] == 9_999)
    assert video["video"]["width"] == tall_clip.width
    assert_plays(uploaded_video(api, call, tmp), tall_clip)


def unconfirmed_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING and "unconfirmed" in r.getMessage()
    ]


@pytest.mark.parametrize(
    ("code", "retry_after"), [(429, 1), (500, None), (502, None)], ids=["429", "500", "502"]
)
async def test_a_refused_upload_is_sent_again_and_arrives_once(
    bot: Reshare,
    api: FakeBotApi,
    h264_clip: Clip,
    tall_clip: Clip,
    tmp_path: Path,
    code: int,
    retry_after: int | None,
) -> None:
    api.fail_next("sendVideo", code, retry_after=retry_after)
    message = await ask(bot, api, POST, chat_id=501)
    first, second = api.calls_to("sendVideo")
    assert api.faults[0][1].startswith(str(code))
    if retry_after is not None:
        assert second.at - first.at >= retry_after
    [video] = replies_to(api, message)
    assert video["video"]["width"] == h264_clip.width
    assert_plays(uploaded_video(api, second, tmp_path), h264_clip)
    await assert_still_works(bot, api, tall_clip, tmp_path)


async def test_a_refused_reason_is_sent_again_and_arrives_once(
    bot: Reshare, api: FakeBotApi, tall_clip: Clip, tmp_path: Path
) -> None:
    api.fail_next("sendMessage", 502, times=2)
    message = await ask(bot, api, PRIVATE_POST, chat_id=502)
    assert len(api.calls_to("sendMessage")) == 3
    [reason] = replies_to(api, message)
    assert reason["text"] == Reason.PRIVATE.message
    await assert_still_works(bot, api, tall_clip, tmp_path)


async def test_a_flood_limit_past_the_deadline_ends_in_one_reason(
    tiktok: TikTokStandIn, api: FakeBotApi, tall_clip: Clip, tmp_path: Path
) -> None:
    """Telegram asks to wait longer than a reply may take: the user is told, once."""
    async with running_bot(tiktok, tmp_path / "data", telegram=api, reply_deadline_s=0.5) as bot:
        api.fail_next("sendVideo", 429, retry_after=2)
        message = await ask(bot, api, POST, chat_id=503)
        assert len(api.calls_to("sendVideo")) == 1
        [reason] = replies_to(api, message)
        assert reason["text"] == Reason.FAILED.message
        await assert_still_works(bot, api, tall_clip, tmp_path)


async def test_an_upload_refused_as_too_large_becomes_one_reason(
    bot: Reshare, api: FakeBotApi, tall_clip: Clip, tmp_path: Path
) -> None:
    api.fail_next("sendVideo", 413)
    message = await ask(bot, api, POST, chat_id=504)
    assert len(api.calls_to("sendVideo")) == 1
    [reason] = replies_to(api, message)
    assert reason["text"] == Reason.TOO_LARGE.message
    await assert_still_works(bot, api, tall_clip, tmp_path)


async def test_an_upload_whose_answer_is_lost_is_not_sent_again(
    bot: Reshare,
    api: FakeBotApi,
    h264_clip: Clip,
    tall_clip: Clip,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Telegram posted the video, then the connection dropped: a second upload would double it."""
    api.reset_next("sendVideo", after_body=True)
    message = await ask(bot, api, POST, chat_id=505)
    assert len(api.calls_to("sendVideo")) == 1
    assert api.faults == [("sendVideo", "reset after the call was carried out")]
    [video] = replies_to(api, message)
    assert video["video"]["width"] == h264_clip.width
    assert unconfirmed_warnings(caplog)
    await assert_still_works(bot, api, tall_clip, tmp_path)


async def test_a_drop_before_the_body_is_not_sent_again_either(
    bot: Reshare,
    api: FakeBotApi,
    tall_clip: Clip,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The client sees the same as above (request sent, no answer), so it cannot know it may
    send again: the reply is lost and logged, never doubled (bot.retry's trade-off)."""
    api.reset_next("sendVideo")
    message = await ask(bot, api, POST, chat_id=506)
    assert api.faults == [("sendVideo", "reset before the body")]
    assert api.calls_to("sendVideo") == []
    assert replies_to(api, message) == []
    assert unconfirmed_warnings(caplog)
    await assert_still_works(bot, api, tall_clip, tmp_path)


async def test_a_30_s_answer_is_waited_for_with_the_default_timeouts(
    bot: Reshare,
    api: FakeBotApi,
    h264_clip: Clip,
    tall_clip: Clip,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.delay_next("sendVideo", SLOW_ANSWER_S)
    api.delay_next("sendMessage", SLOW_ANSWER_S)
    message = api.inject_message(link(POST), chat_id=507)
    private = api.inject_message(link(PRIVATE_POST), chat_id=508)
    # The stand-in carries the calls out at once and answers 30 s later: the jobs end then.
    await until(lambda: bool(replies_to(api, message) and replies_to(api, private)))
    await jobs_done(bot)
    assert len(api.calls_to("sendVideo")) == 1
    # One reason; the 30 s upload also showed its status ("Uploading…"), since removed.
    said = [call.params["text"] for call in api.calls_to("sendMessage")]
    assert said.count(Reason.PRIVATE.message) == 1
    assert len(said) <= 2
    [video] = replies_to(api, message)
    assert video["video"]["width"] == h264_clip.width
    [reason] = replies_to(api, private)
    assert reason["text"] == Reason.PRIVATE.message
    assert not unconfirmed_warnings(caplog), "the answers were waited for, not given up on"
    await assert_still_works(bot, api, tall_clip, tmp_path)


def test_the_default_timeouts_outlast_a_30_s_answer() -> None:
    assert TelegramSettings(_env_file=None).telegram_timeout_s > SLOW_ANSWER_S
    assert UPLOAD_TIMEOUT_S > SLOW_ANSWER_S


async def test_the_configured_timeout_is_what_the_bot_waits(bot: Reshare) -> None:
    assert bot.telegram is not None
    request = bot.telegram.application.bot.request
    assert request.read_timeout == TelegramSettings(_env_file=None).telegram_timeout_s


async def test_an_answer_later_than_the_timeout_is_not_sent_twice(
    tiktok: TikTokStandIn,
    api: FakeBotApi,
    tall_clip: Clip,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The same as a 30 s answer with the default timeouts, scaled down: the reason was posted,
    its answer came too late, and it is not posted again."""
    async with running_bot(tiktok, tmp_path / "data", telegram=api, telegram_timeout_s=0.5) as bot:
        api.delay_next("sendMessage", 1.5)
        message = await ask(bot, api, PRIVATE_POST, chat_id=509)
        assert len(api.calls_to("sendMessage")) == 1
        [reason] = replies_to(api, message)
        assert reason["text"] == Reason.PRIVATE.message
        assert unconfirmed_warnings(caplog)
        await assert_still_works(bot, api, tall_clip, tmp_path)


async def test_random_transient_faults_still_answer_each_request_once(
    bot: Reshare, api: FakeBotApi
) -> None:
    """A small run of the seeded random mode the fault run uses: every request answered once."""
    api.fail_randomly(random.Random(6), 0.5, TRANSIENT_FAULTS, delay_s=0.2)
    asked = [
        api.inject_message(link(post), chat_id=600 + n, user_id=700 + n)
        for n, post in enumerate([POST, PRIVATE_POST, SECOND_POST, POST, PRIVATE_POST, POST])
    ]
    await until(lambda: all(replies_to(api, message) for message in asked))
    await jobs_done(bot)
    assert api.faults, "the seeded run injected no fault"
    assert [len(replies_to(api, message)) for message in asked] == [1] * len(asked)


async def test_an_album_retries_only_the_message_that_was_refused(
    api: FakeBotApi, tmp_path: Path
) -> None:
    """Twelve photos and the music are three messages; a refused one is sent again on its own,
    so the photos already posted do not come twice."""
    slides = [
        make_image(tmp_path / f"slide{n}.jpeg", width=360, height=480, seed=n) for n in range(12)
    ]
    music = make_music(tmp_path / "music.mp3", duration=2.0)
    async with TikTokStandIn() as tt:
        tt.add_photo_post(PHOTO_POST, slides, music, author="painter", desc="twelve slides")
        async with running_bot(tt, tmp_path / "data", telegram=api) as bot:
            api.fail_next("sendMediaGroup", 502)
            api.fail_next("sendAudio", 429, retry_after=1)
            message = api.inject_message(f"https://www.tiktok.com/@painter/photo/{PHOTO_POST}")
            await api.wait_for_call("sendAudio", count=2)
            await jobs_done(bot)
    assert len(api.calls_to("sendMediaGroup")) == 3
    answers = replies_to(api, message)
    assert sum("photo" in answer for answer in answers) == len(slides)
    assert sum("audio" in answer for answer in answers) == 1
    assert len(answers) == len(slides) + 1
