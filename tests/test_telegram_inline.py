"""Inline mode end to end: real python-telegram-bot, real yt-dlp, the Bot API stand-in playing the
person who types `@bot <link>` in some chat and sends a result.

A clip fetched before is offered by its file id and costs TikTok nothing; a new one goes out as
a placeholder that, once sent, is fetched, uploaded to the storage chat and edited into the video
by that upload's file id (an inline message takes no upload); a failure edits it into the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from adapters.runtime import Reshare
from bot.inline import FETCHING_TEXT, NO_LINK_HINT, NOT_ENABLED_HINT
from bot.model import Reason
from tests.harness import assert_plays, jobs_done, link, running_bot, tiktok_serving, until
from tests.standins.clips import Clip
from tests.standins.telegram_api import ApiCall, FakeBotApi
from tests.standins.tiktok import TikTokStandIn

POST = "7330000000000000001"
PRIVATE_POST = "7330000000000000002"
STORAGE = -1001234567890
FAST: dict[str, Any] = {"download_timeout_s": 15, "download_retry_delay_s": 0.01}


@pytest.fixture
async def tiktok(h264_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with tiktok_serving(h264_clip, POST) as tt:
        tt.add_status(PRIVATE_POST, 10216)
        tt.add_short_link("ZMinline1", f"/@dancer/video/{POST}")
        yield tt


@pytest.fixture
async def bot(tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path) -> AsyncIterator[Reshare]:
    api.add_chat(STORAGE, "channel", title="Reshare storage")
    async with running_bot(
        tiktok, tmp_path / "data", telegram=api, telegram_storage_chat_id=STORAGE, **FAST
    ) as reshare:
        yield reshare


def media_requests(tt: TikTokStandIn) -> int:
    return tt.media_requests


async def answer_of(api: FakeBotApi, query_id: str) -> ApiCall:
    await until(lambda: _answered(api, query_id), within_s=30)
    return api.inline_answer(query_id)


def _answered(api: FakeBotApi, query_id: str) -> bool:
    try:
        api.inline_answer(query_id)
    except (KeyError, LookupError, AssertionError):
        return False
    return True


def results_of(answer: ApiCall) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = answer.params["results"]
    return results


async def test_a_clip_sent_before_is_offered_by_its_file_id_without_fetching(
    bot: Reshare, api: FakeBotApi, tiktok: TikTokStandIn
) -> None:
    api.inject_message(link(POST, "dancer"), chat_id=500)
    [sent] = await api.wait_for_call("sendVideo")
    file_id = sent.result["video"]["file_id"]
    await jobs_done(bot)
    fetched = media_requests(tiktok)
    # Any link form of the same post: the short one too.
    query = api.inject_inline_query("https://vm.tiktok.com/ZMinline1/", user_id=77)
    answer = await answer_of(api, query)
    [result] = results_of(answer)
    assert result["type"] == "video"
    assert result["video_file_id"] == file_id
    assert "@dancer" in result["caption"]
    message = api.choose_inline_result(query, result["id"], chat_id=600, chat_type="group")
    assert message["video"]["file_id"] == file_id
    assert message["via_bot"]["id"] == api.bot_user["id"]
    assert media_requests(tiktok) == fetched
    assert api.calls_to("editMessageMedia") == []


async def test_a_new_clip_is_a_placeholder_that_becomes_the_video_once_sent(
    bot: Reshare, api: FakeBotApi, tiktok: TikTokStandIn, h264_clip: Clip, tmp_path: Path
) -> None:
    query = api.inject_inline_query(link(POST, "dancer"), user_id=78)
    [placeholder] = results_of(await answer_of(api, query))
    assert placeholder["type"] == "article"
    assert placeholder["input_message_content"]["message_text"].startswith(FETCHING_TEXT)
    assert media_requests(tiktok) == 0  # nothing is fetched before the person sends it
    sent = api.choose_inline_result(query, placeholder["id"], chat_id=601, chat_type="group")
    inline_id = sent["inline_message_id"]
    [edit] = await api.wait_for_call("editMessageMedia")
    [stored] = api.calls_to("sendVideo")
    assert int(stored.params["chat_id"]) == STORAGE
    assert edit.params["inline_message_id"] == inline_id
    assert edit.params["media"]["media"] == stored.result["video"]["file_id"]
    now = api.inline_message(inline_id)
    assert now["video"]["file_id"] == stored.result["video"]["file_id"]
    assert "@dancer" in now["caption"]
    path = tmp_path / "stored.mp4"
    path.write_bytes(api.video_bytes(stored))
    assert_plays(path, h264_clip)
    # Offered by its file id from now on, to anyone.
    again = api.inject_inline_query(link(POST), user_id=79)
    [result] = results_of(await answer_of(api, again))
    assert result["video_file_id"] == stored.result["video"]["file_id"]
    assert media_requests(tiktok) == 1


async def test_a_clip_that_cannot_be_sent_turns_the_placeholder_into_the_reason(
    bot: Reshare, api: FakeBotApi
) -> None:
    query = api.inject_inline_query(link(PRIVATE_POST), user_id=80)
    [placeholder] = results_of(await answer_of(api, query))
    sent = api.choose_inline_result(query, placeholder["id"], chat_id=602)
    [edit] = await api.wait_for_call("editMessageText")
    assert edit.params["inline_message_id"] == sent["inline_message_id"]
    assert api.inline_message(sent["inline_message_id"])["text"] == Reason.PRIVATE.message
    assert api.calls_to("sendVideo") == []


async def test_typing_a_short_link_looks_it_up_once_and_fetches_once(
    bot: Reshare, api: FakeBotApi, tiktok: TikTokStandIn
) -> None:
    full = "https://vm.tiktok.com/ZMinline1/"
    typed = [full[:n] for n in range(len(full) - 9, len(full) + 1)]
    assert len(typed) == 10
    queries = [api.inject_inline_query(text, user_id=81) for text in typed]
    [placeholder] = results_of(await answer_of(api, queries[-1]))
    await jobs_done(bot)
    # Only the last query was looked up and answered.
    assert tiktok.count(host="vm.tiktok.com") == 1
    assert [c.params["inline_query_id"] for c in api.calls_to("answerInlineQuery")] == [queries[-1]]
    api.choose_inline_result(queries[-1], placeholder["id"], chat_id=603)
    await api.wait_for_call("editMessageMedia")
    assert media_requests(tiktok) == 1


async def test_a_short_link_looked_up_before_is_answered_without_waiting_for_a_pause(
    bot: Reshare, api: FakeBotApi, tiktok: TikTokStandIn
) -> None:
    """Its post is known: no pause for more typing and no lookup, so a query the person types
    right after it does not make it out of date."""
    api.inject_message("https://vm.tiktok.com/ZMinline1/", chat_id=604)
    [sent] = await api.wait_for_call("sendVideo")
    await jobs_done(bot)
    looked_up = tiktok.count(host="vm.tiktok.com")
    known = api.inject_inline_query("https://vm.tiktok.com/ZMinline1/", user_id=84)
    newer = api.inject_inline_query("https://vm.tiktok.com/ZMnever1/", user_id=84)
    [result] = results_of(await answer_of(api, known))
    assert result["video_file_id"] == sent.result["video"]["file_id"]
    [placeholder] = results_of(await answer_of(api, newer))
    assert placeholder["type"] == "article"
    # The newer query's code was looked up; the known one's was not again.
    assert tiktok.count(host="vm.tiktok.com") == looked_up + 1


async def test_a_query_without_a_link_gets_a_hint_and_no_results(
    bot: Reshare, api: FakeBotApi
) -> None:
    answer = await answer_of(api, api.inject_inline_query("funny cats", user_id=82))
    assert results_of(answer) == []
    assert answer.params["button"]["text"] == NO_LINK_HINT


async def test_without_a_storage_chat_only_clips_sent_before_are_offered(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    async with running_bot(tiktok, tmp_path / "data", telegram=api, **FAST) as reshare:
        answer = await answer_of(api, api.inject_inline_query(link(POST), user_id=83))
        assert results_of(answer) == []
        assert answer.params["button"]["text"] == NOT_ENABLED_HINT
        api.inject_message(link(POST), chat_id=501)
        [sent] = await api.wait_for_call("sendVideo")
        await jobs_done(reshare)
        answer = await answer_of(api, api.inject_inline_query(link(POST), user_id=83))
        [result] = results_of(answer)
        assert result["video_file_id"] == sent.result["video"]["file_id"]
