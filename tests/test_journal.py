"""The request journal: what it keeps, what it gives back at start, and what it drops."""

from __future__ import annotations

import contextlib
import sqlite3
import stat
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.discord.inbound import InteractionOrigin, MessageOrigin
from adapters.discord.inbound import origin_codec as discord_origins
from adapters.telegram.inbound import TelegramOrigin
from adapters.telegram.inbound import origin_codec as telegram_origins
from bot.codec import DataclassCodec, RequestCodec
from bot.intake import Answer, Intake
from bot.links import Link, LinkKind
from bot.model import Sender, VideoRequest
from bot.queue import AsyncioJobQueue
from bot.sites import SiteCatalog
from bot.stores.memory_limits import MemoryRateLimits
from bot.stores.sqlite_journal import SqliteJournal

LINK = Link(
    site="tiktok",
    kind=LinkKind.VIDEO,
    url="https://www.tiktok.com/@_/video/7301234567890123456",
    clip_id="7301234567890123456",
    original="https://vm.tiktok.com/ZMx/ ‮ü",
)


BOT_TOKEN = "123456:TEST-journal-token"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def journal(path: Path, clock: Clock, token: str = BOT_TOKEN) -> SqliteJournal:
    codec = RequestCodec({"telegram": telegram_origins(token), "discord": discord_origins()})
    opened = SqliteJournal(path / "journal.sqlite3", codec, clock=clock)
    opened.open()
    return opened


def request(origin: TelegramOrigin | InteractionOrigin | MessageOrigin) -> VideoRequest:
    return VideoRequest(links=(LINK,), origin=origin, budget_bytes=50_000_000)


async def test_an_unanswered_request_comes_back_whole_after_a_reopen(tmp_path: Path) -> None:
    clock = Clock()
    first = journal(tmp_path, clock)
    sent = [
        request(TelegramOrigin(chat_id=-100123, message_id=7)),
        request(MessageOrigin(channel_id=5, message_id=6, guild_id=None)),
    ]
    assert all([await first.accept(r) for r in sent])
    await first.close()  # as a killed process leaves it: nothing marked answered

    again = journal(tmp_path, clock)
    [one, two] = await again.take_unanswered()
    assert [one.request, two.request] == sent
    assert (one.attempts, two.attempts) == (1, 1)
    assert [entry.attempts for entry in await again.take_unanswered()] == [2, 2]


async def test_an_answered_request_is_not_taken_up_and_its_redelivery_is_refused(
    tmp_path: Path,
) -> None:
    clock = Clock()
    first = journal(tmp_path, clock)
    origin = TelegramOrigin(chat_id=1, message_id=2)
    assert await first.accept(request(origin))
    assert not await first.accept(request(origin))  # Telegram sent the same update again
    await first.answered(origin)
    await first.close()

    again = journal(tmp_path, clock)
    assert await again.take_unanswered() == []
    assert not await again.accept(request(origin))


async def test_tombstones_go_after_two_days(tmp_path: Path) -> None:
    clock = Clock()
    first = journal(tmp_path, clock)
    origin = TelegramOrigin(chat_id=1, message_id=2)
    await first.accept(request(origin))
    await first.answered(origin)
    await first.close()
    clock.now += 2 * 24 * 3600 + 1
    again = journal(tmp_path, clock)
    assert await again.accept(request(origin))


async def test_an_expired_interaction_is_dropped_a_channel_message_is_kept(tmp_path: Path) -> None:
    clock = Clock()
    first = journal(tmp_path, clock)
    interaction = InteractionOrigin(application_id=1, token="tok")
    message = MessageOrigin(channel_id=5, message_id=6, guild_id=7)
    await first.accept(request(interaction))
    await first.accept(request(message))
    await first.close()
    clock.now += 15 * 60
    again = journal(tmp_path, clock)
    assert [entry.request.origin for entry in await again.take_unanswered()] == [message]
    assert (await again.take_unanswered())[0].attempts == 2
    # Dropped for good, not offered to the next start either.
    assert not await again.accept(request(interaction))


async def test_a_fresh_interaction_is_taken_up(tmp_path: Path) -> None:
    clock = Clock()
    first = journal(tmp_path, clock)
    interaction = InteractionOrigin(application_id=1, token="tok")
    await first.accept(request(interaction))
    clock.now += 60
    assert [entry.request.origin for entry in await first.take_unanswered()] == [interaction]


async def test_the_journal_file_is_private(tmp_path: Path) -> None:
    await journal(tmp_path / "data", Clock()).close()
    assert stat.S_IMODE((tmp_path / "data").stat().st_mode) == 0o700
    assert stat.S_IMODE((tmp_path / "data" / "journal.sqlite3").stat().st_mode) == 0o600


def test_an_origin_of_an_unknown_class_is_refused() -> None:
    @dataclass(frozen=True)
    class Elsewhere:
        platform: str = "telegram"

    with pytest.raises(TypeError):
        DataclassCodec(TelegramOrigin).encode(Elsewhere())


def intake_with(journal: SqliteJournal, queue_size: int = 10) -> Intake:
    limits = MemoryRateLimits(user_per_minute=1000, chat_per_minute=1000)
    queue = AsyncioJobQueue(workers=1, maxsize=queue_size)
    return Intake(queue, SiteCatalog(["TikTok"]), limits, journal=journal)


async def test_intake_writes_down_queues_once_and_refuses_after_close(tmp_path: Path) -> None:
    clock = Clock()
    opened = journal(tmp_path, clock)
    intake = intake_with(opened)
    someone = Sender(user=1, chat=1)
    origin = TelegramOrigin(chat_id=1, message_id=1)

    async def take(origin: TelegramOrigin) -> Answer:
        return await intake.take([LINK.url], origin, 10, private=True, sender=someone)

    assert await take(origin) is Answer.QUEUED
    # Seen but not answered yet: queued again (the worker runs its key once, under a lock, and
    # skips what was answered), and written down once.
    assert await take(origin) is Answer.QUEUED
    assert [entry.request.origin for entry in await opened.take_unanswered()] == [origin]
    await opened.answered(origin)
    assert await take(origin) is Answer.IGNORED
    intake.close()
    assert await take(TelegramOrigin(chat_id=1, message_id=2)) is Answer.RESTARTING
    assert await intake.take(["hi"], origin, 10, private=True, sender=someone) is Answer.NO_LINK


async def test_a_busy_answer_counts_as_the_answer(tmp_path: Path) -> None:
    opened = journal(tmp_path, Clock())
    intake = intake_with(opened, queue_size=1)
    someone = Sender(user=1, chat=1)
    answers = [
        await intake.take([LINK.url], TelegramOrigin(chat_id=1, message_id=n), 10,
                          private=True, sender=someone)
        for n in (1, 2)
    ]  # fmt: skip
    assert answers == [Answer.QUEUED, Answer.BUSY]
    [left] = await opened.take_unanswered()
    assert left.request.origin == TelegramOrigin(chat_id=1, message_id=1)


async def test_a_restart_skips_the_links_already_answered(tmp_path: Path) -> None:
    clock = Clock()
    first = journal(tmp_path, clock)
    links = tuple(
        Link("tiktok", LinkKind.VIDEO, f"{LINK.url[:-1]}{n}", f"{LINK.clip_id}"[:-1] + str(n), "")
        for n in range(3)
    )
    partly = TelegramOrigin(chat_id=1, message_id=1)
    fully = TelegramOrigin(chat_id=1, message_id=2)
    await first.accept(VideoRequest(links=links, origin=partly, budget_bytes=10))
    await first.accept(VideoRequest(links=links[:1], origin=fully, budget_bytes=10))
    await first.link_answered(partly)
    await first.link_answered(partly)
    await first.link_answered(fully)
    await first.close()  # killed before either request was marked answered

    [left] = await journal(tmp_path, clock).take_unanswered()
    assert left.request == VideoRequest(links=links[2:], origin=partly, budget_bytes=10)


async def test_another_bots_requests_are_neither_answered_nor_mistaken_for_redeliveries(
    tmp_path: Path,
) -> None:
    clock = Clock()
    first = journal(tmp_path, clock)
    origin = TelegramOrigin(chat_id=1, message_id=1)
    await first.accept(request(origin))
    await first.close()
    # The token changed: the new bot numbers its messages in chat 1 from 1 again.
    again = journal(tmp_path, clock, token="654321:TEST-other-token")
    assert await again.accept(request(origin))
    assert [entry.request.origin for entry in await again.take_unanswered()] == [origin]
    assert (
        telegram_origins(BOT_TOKEN).decode(telegram_origins("654321:x").encode(origin), age_s=0)
        is None
    )


async def test_an_answered_request_leaves_only_a_hash_in_the_table(tmp_path: Path) -> None:
    opened = journal(tmp_path, Clock())
    interaction = InteractionOrigin(application_id=1, token="interaction-token-secret")
    await opened.accept(request(interaction))
    await opened.answered(interaction)
    await opened.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "journal.sqlite3")) as db:
        rows = db.execute("SELECT * FROM accepted_requests").fetchall()
    [row] = rows
    assert "interaction-token-secret" not in repr(row)
    assert "7301234567890123456" not in repr(row)


async def test_remaining_is_the_request_less_its_answered_links(tmp_path: Path) -> None:
    opened = journal(tmp_path, Clock())
    links = tuple(
        Link("tiktok", LinkKind.VIDEO, f"{LINK.url[:-1]}{n}", f"{LINK.clip_id}"[:-1] + str(n), "")
        for n in range(3)
    )
    origin = TelegramOrigin(chat_id=1, message_id=1)
    whole = VideoRequest(links=links, origin=origin, budget_bytes=10)
    assert await opened.remaining(whole) == whole  # never accepted: all of it
    await opened.accept(whole)
    assert await opened.remaining(whole) == whole
    await opened.link_answered(origin)
    assert await opened.remaining(whole) == VideoRequest(links[1:], origin, 10)
    await opened.link_answered(origin)
    await opened.link_answered(origin)
    assert await opened.remaining(whole) is None
    other = request(TelegramOrigin(chat_id=1, message_id=2))
    await opened.accept(other)
    await opened.answered(other.origin)
    assert await opened.remaining(other) is None
