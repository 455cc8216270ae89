"""The bot in-process around a stop and a start: the grace, late requests, the journal taken up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import cast

import pytest

from adapters.discord.inbound import MessageOrigin
from adapters.discord.inbound import origin_codec as discord_origins
from adapters.telegram.inbound import TelegramOrigin
from adapters.telegram.inbound import origin_codec as telegram_origins
from bot.answers import AnswerWatch
from bot.codec import RequestCodec
from bot.intake import RESTARTING_TEXT
from bot.model import Album, Audio, CachedMedia, Manner, Media, Origin, Reason, VideoRequest
from bot.progress import Progress
from bot.retry import Unconfirmed
from bot.sites import SiteCatalog
from bot.stores.sqlite_journal import SqliteJournal
from tests.harness import jobs_done, running_bot, tiktok_serving, until
from tests.harness import link as tiktok_link
from tests.standins.clips import Clip
from tests.standins.discord_api import FakeDiscord
from tests.standins.telegram_api import FakeBotApi
from tests.standins.tiktok import TikTokStandIn

POSTS = [f"73012345678901235{n:02d}" for n in range(3)]
link = partial(tiktok_link, author="dancer")
EPHEMERAL = 1 << 6


@pytest.fixture
async def tiktok(h264_clip: Clip) -> AsyncIterator[TikTokStandIn]:
    async with tiktok_serving(h264_clip, *POSTS) as tt:
        yield tt


def telegram_journal(data_dir: Path, token: str) -> SqliteJournal:
    codec = RequestCodec({"telegram": telegram_origins(token)})
    journal = SqliteJournal(data_dir / "journal.sqlite3", codec)
    journal.open()
    return journal


async def written_down(
    data_dir: Path, token: str, origin: TelegramOrigin, url: str, *, starts: int = 0
) -> None:
    """Leave the journal as a process killed after accepting the request leaves it, after
    `starts` earlier starts that took it up and died too."""
    journal = telegram_journal(data_dir, token)
    links = tuple(SiteCatalog(["TikTok"]).find(url))
    assert await journal.accept(VideoRequest(links=links, origin=origin, budget_bytes=50_000_000))
    for _ in range(starts):
        await journal.take_unanswered()
    await journal.close()


async def test_a_redelivered_update_of_a_request_taken_up_is_answered_once(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    # Killed after writing the request down, before confirming its update: Telegram sends the
    # update again, and the journal holds the request.
    data_dir = tmp_path / "data"
    message = api.inject_message(link(POSTS[0]), chat_id=31)
    await written_down(
        data_dir, api.token, TelegramOrigin(31, message["message_id"]), link(POSTS[0])
    )
    async with running_bot(tiktok, data_dir, telegram=api) as bot:
        await api.wait_for_call("sendVideo")
        await until(lambda: api.pending_updates == [])
        await jobs_done(bot)
    [video] = api.calls_to("sendVideo")
    assert video.params["chat_id"] == 31
    assert video.params["reply_parameters"]["message_id"] == message["message_id"]
    assert api.calls_to("sendMessage") == []


async def test_a_request_taken_up_three_times_is_given_up_with_a_reason(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    api.add_chat(32)
    await written_down(data_dir, api.token, TelegramOrigin(32, 5), link(POSTS[0]), starts=3)
    async with running_bot(tiktok, data_dir, telegram=api):
        [notice] = await api.wait_for_call("sendMessage")
    assert notice.params["chat_id"] == 32
    assert notice.params["text"] == Reason.FAILED.message
    assert api.calls_to("sendVideo") == []
    assert tiktok.media_requests == 0
    assert await telegram_journal(data_dir, api.token).take_unanswered() == []


async def test_past_the_grace_the_running_and_the_queued_request_hear_restarting_once(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    # Longer than the grace, short enough that the cancelled download ends before the bot does.
    tiktok.media_delay_s = 1.0
    data_dir = tmp_path / "data"
    # One worker: the first request runs, the second waits in the queue.
    async with running_bot(tiktok, data_dir, telegram=api, workers=1, shutdown_grace_s=0.2):
        api.inject_message(link(POSTS[0]), chat_id=41)
        api.inject_message(link(POSTS[1]), chat_id=42)
        await tiktok.wait_for_media_request()
        await until(lambda: api.pending_updates == [])
    notices = api.calls_to("sendMessage")
    assert sorted(call.params["chat_id"] for call in notices) == [41, 42]
    assert {call.params["text"] for call in notices} == {RESTARTING_TEXT}
    assert api.calls_to("sendVideo") == []
    # Told is answered: the next start has nothing to take up.
    assert await telegram_journal(data_dir, api.token).take_unanswered() == []


async def test_a_discord_command_during_the_grace_is_told_restarting_the_running_one_finishes(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    tiktok.media_delay_s = 2.0
    async with (
        FakeDiscord() as discord_api,
        running_bot(tiktok, tmp_path / "data", discord=discord_api, shutdown_grace_s=20) as bot,
    ):
        running = discord_api.inject_slash_command("download", {"url": link(POSTS[0])})
        await tiktok.wait_for_media_request()
        stopping = asyncio.create_task(bot.stop())
        await asyncio.sleep(0.05)
        late = discord_api.inject_slash_command("download", {"url": link(POSTS[1])})
        [refusal] = await discord_api.wait_for_request("POST", f"/interactions/{late['id']}/")
        await stopping
        webhook = f"/webhooks/{discord_api.application_id}/{running['token']}"
        [video] = discord_api.requests_to("POST", webhook)
    assert refusal.json["type"] == 4
    assert refusal.json["data"]["content"] == RESTARTING_TEXT
    assert refusal.json["data"]["flags"] & EPHEMERAL
    assert [upload.filename for upload in video.files] == [f"{POSTS[0]}.mp4"]
    assert tiktok.media_requests == 1


class SlowReplier:
    """A Replier whose answers take until `release` is set."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    async def working(self, origin: Origin) -> None:
        return None

    async def status(self, origin: Origin, progress: Progress, manner: Manner) -> None:
        return None

    async def clear_status(self, origin: Origin, *, earlier: bool = False) -> None:
        return None

    async def deliver(self, origin: Origin, media: Media, manner: Manner) -> str | None:
        await self.release.wait()
        return None

    async def resend(self, origin: Origin, cached: CachedMedia, manner: Manner) -> None:
        await self.release.wait()

    async def deliver_audio(self, origin: Origin, audio: Audio, manner: Manner) -> str | None:
        await self.release.wait()
        return None

    async def resend_audio(self, origin: Origin, cached: CachedMedia, manner: Manner) -> None:
        await self.release.wait()

    async def deliver_album(self, origin: Origin, album: Album, manner: Manner) -> None:
        await self.release.wait()

    async def fail(self, origin: Origin, reason: Reason, manner: Manner) -> None:
        await self.release.wait()


def reporting(reported: list[Origin]) -> Callable[[Origin], Awaitable[None]]:
    """An `on_answered` that writes down each origin it hears of."""

    async def answered(origin: Origin) -> None:
        reported.append(origin)

    return answered


async def test_no_notice_after_an_answer_cut_off_mid_send_or_after_every_link_answered() -> None:
    reported: list[Origin] = []
    watch = AnswerWatch(on_answered=reporting(reported))
    slow = SlowReplier()
    replier = watch.watch(slow)
    links = tuple(SiteCatalog(["TikTok"]).find(f"{link(POSTS[0])} {link(POSTS[1])}"))
    cut, done, half = (TelegramOrigin(n, n) for n in (1, 2, 3))
    sending = asyncio.create_task(replier.fail(cut, Reason.FAILED, Manner()))
    sent = [asyncio.create_task(replier.fail(done, Reason.FAILED, Manner())) for _ in links]
    halfway = asyncio.create_task(replier.fail(half, Reason.FAILED, Manner()))
    await asyncio.sleep(0)
    sending.cancel()
    slow.release.set()
    await asyncio.wait([sending, *sent, halfway])
    assert reported == [done, done, half]
    assert watch.settle(VideoRequest(links, cut, 10))
    assert watch.settle(VideoRequest(links, done, 10))
    assert not watch.settle(VideoRequest(links, half, 10))
    # Settled means forgotten.
    assert not watch.settle(VideoRequest(links, cut, 10))


class UnconfirmedReplier(SlowReplier):
    """A Replier whose videos go out whole and whose answers are lost."""

    async def deliver(self, origin: Origin, media: Media, manner: Manner) -> str | None:
        raise Unconfirmed("read timeout")


async def test_an_unconfirmed_answer_counts_as_the_links_answer() -> None:
    # The service does not send it again; neither may a restart nor a "restarting" notice.
    reported: list[Origin] = []
    watch = AnswerWatch(on_answered=reporting(reported))
    replier = watch.watch(UnconfirmedReplier())
    links = tuple(SiteCatalog(["TikTok"]).find(link(POSTS[0])))
    origin = TelegramOrigin(1, 1)
    with pytest.raises(Unconfirmed):
        await replier.deliver(origin, cast(Media, None), Manner())
    assert reported == [origin]
    assert watch.settle(VideoRequest(links, origin, 10))


async def test_polling_outlives_failed_get_updates_and_loses_no_update(
    tiktok: TikTokStandIn, api: FakeBotApi, tmp_path: Path
) -> None:
    api.fail_next("getUpdates", 502, times=2)
    api.fail_next("getUpdates", 429, retry_after=1)
    api.inject_message(link(POSTS[0]), chat_id=51)
    async with running_bot(tiktok, tmp_path / "data", telegram=api):
        [video] = await api.wait_for_call("sendVideo")
    assert video.params["chat_id"] == 51
    assert len(api.calls_to("getUpdates")) >= 4


def discord_journal(data_dir: Path) -> SqliteJournal:
    journal = SqliteJournal(
        data_dir / "journal.sqlite3", RequestCodec({"discord": discord_origins()})
    )
    journal.open()
    return journal


async def test_an_auto_detected_discord_message_is_answered_in_its_channel_after_a_crash(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    async with FakeDiscord() as discord_api:
        # Posted and accepted, then the process died; the bot is offline now.
        message = discord_api.inject_message(f"look {link(POSTS[0])}")
        origin = MessageOrigin(
            channel_id=discord_api.channel_id,
            message_id=int(message["id"]),
            guild_id=discord_api.guild_id,
        )
        journal = discord_journal(data_dir)
        links = tuple(SiteCatalog(["TikTok"]).find(link(POSTS[0])))
        await journal.accept(VideoRequest(links=links, origin=origin, budget_bytes=10_000_000))
        await journal.close()
        async with running_bot(
            tiktok, data_dir, discord=discord_api, discord_message_content=True
        ) as bot:
            channel = f"/channels/{discord_api.channel_id}/messages"
            [sent] = await discord_api.wait_for_request("POST", channel)
            await jobs_done(bot)
    assert int(sent.json["message_reference"]["message_id"]) == int(message["id"])
    assert [upload.filename for upload in sent.files] == [f"{POSTS[0]}.mp4"]
    assert discord_api.requests_to("POST", channel) == [sent]
    assert await discord_journal(data_dir).take_unanswered() == []


async def test_an_auto_detected_discord_message_past_the_grace_is_asked_to_send_again(
    tiktok: TikTokStandIn, tmp_path: Path
) -> None:
    tiktok.media_delay_s = 1.0
    async with FakeDiscord() as discord_api:
        async with running_bot(
            tiktok,
            tmp_path / "data",
            discord=discord_api,
            discord_message_content=True,
            shutdown_grace_s=0.2,
        ):
            message = discord_api.inject_message(f"look {link(POSTS[0])}")
            await tiktok.wait_for_media_request()
        channel = f"/channels/{discord_api.channel_id}/messages"
        [notice] = discord_api.requests_to("POST", channel)
    assert notice.json["content"] == RESTARTING_TEXT
    assert int(notice.json["message_reference"]["message_id"]) == int(message["id"])
    assert not notice.files
    assert discord_api.reactions_on(message["id"]) == []
