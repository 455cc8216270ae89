from dataclasses import dataclass

import pytest

from bot.chat_settings import ChatSettings
from bot.i18n import Catalogues
from bot.intake import (
    BUSY_TEXT,
    RESTARTING_TEXT,
    SLOW_DOWN_TEXT,
    Answer,
    Intake,
    select_links,
)
from bot.links import LinkKind
from bot.model import Sender
from bot.ports import Verdict
from bot.queue import AsyncioJobQueue
from bot.sites import SiteCatalog
from bot.stores.memory_limits import MemoryRateLimits, SlidingWindow

TIKTOK_ONLY = SiteCatalog(["TikTok"])
SOMEONE = Sender(user=1, chat=1)


def generous() -> MemoryRateLimits:
    return MemoryRateLimits(user_per_minute=1000, chat_per_minute=1000)


@dataclass(frozen=True)
class ChatOrigin:
    chat: int
    platform: str = "test"


def post(n: int) -> str:
    return f"https://www.tiktok.com/@a/video/730123456789012345{n}"


def test_links_are_taken_in_order_each_clip_once_at_most_three() -> None:
    text = f"{post(1)} {post(2)} {post(1)}?is_from_webapp=1 {post(3)} {post(4)}"
    assert [link.clip_id for link in select_links([text], TIKTOK_ONLY, private=True)] == [
        "7301234567890123451",
        "7301234567890123452",
        "7301234567890123453",
    ]


def test_hidden_link_targets_count_after_the_text() -> None:
    links = select_links(["look", post(2), post(1)], TIKTOK_ONLY, private=False)
    assert [link.clip_id for link in links] == ["7301234567890123452", "7301234567890123451"]


def test_links_to_no_post_are_answered_only_in_private() -> None:
    text = "https://www.tiktok.com/@someone"
    assert [link.kind for link in select_links([text], TIKTOK_ONLY, private=True)] == [
        LinkKind.NOT_VIDEO
    ]
    assert select_links([text], TIKTOK_ONLY, private=False) == []


async def test_take_queues_answers_help_or_stays_quiet() -> None:
    queue = AsyncioJobQueue(workers=1, maxsize=10)
    intake = Intake(queue, TIKTOK_ONLY, generous())
    assert (
        await intake.take(["hi"], ChatOrigin(1), 10, private=True, sender=SOMEONE) is Answer.NO_LINK
    )
    assert (
        await intake.take(["hi"], ChatOrigin(2), 10, private=False, sender=SOMEONE)
        is Answer.IGNORED
    )
    assert (
        await intake.take([post(1)], ChatOrigin(3), 10, private=False, sender=SOMEONE)
        is Answer.QUEUED
    )


async def test_a_full_queue_answers_busy_at_once() -> None:
    intake = Intake(AsyncioJobQueue(workers=1, maxsize=2), TIKTOK_ONLY, generous())
    answers = [
        await intake.take([post(n)], ChatOrigin(n), 10, private=True, sender=SOMEONE)
        for n in range(4)
    ]
    assert answers == [Answer.QUEUED, Answer.QUEUED, Answer.BUSY, Answer.BUSY]


def test_other_sites_count_only_when_allowed() -> None:
    text = f"https://streamable.com/abc12 {post(1)} https://www.youtube.com/watch?v=abcdefghijk"
    assert [link.site for link in select_links([text], TIKTOK_ONLY, private=True)] == ["tiktok"]
    both = SiteCatalog(["TikTok", "Streamable"])
    links = select_links([text], both, private=True)
    assert [(link.site, link.url) for link in links] == [
        ("Streamable", "https://streamable.com/abc12"),
        ("tiktok", "https://www.tiktok.com/@_/video/7301234567890123451"),
    ]
    assert both.ytdlp_extractors == ["tiktok", "streamable"]


def test_the_no_link_answer_names_the_sites_taken() -> None:
    intake = Intake(
        AsyncioJobQueue(workers=1, maxsize=1), SiteCatalog(["TikTok", "Streamable"]), generous()
    )
    assert "TikTok, Streamable" in intake.no_link_text


def test_an_unknown_site_name_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="Nosuchsite"):
        SiteCatalog(["TikTok", "Nosuchsite"])


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_rate_limit_says_so_once_then_stays_quiet_until_the_minute_passes() -> None:
    clock = FakeClock()
    limits = MemoryRateLimits(user_per_minute=3, chat_per_minute=100, clock=clock)
    verdicts = [await limits.check("u1", "c1", 1) for _ in range(6)]
    assert verdicts == [Verdict.ALLOW] * 3 + [Verdict.REFUSE_AND_SAY] + [Verdict.REFUSE_QUIETLY] * 2
    assert await limits.check("u2", "c1", 1) is Verdict.ALLOW  # only u1 is over its limit
    assert await limits.check("u3", "c2", 1) is Verdict.ALLOW
    clock.now += 61
    assert await limits.check("u1", "c1", 3) is Verdict.ALLOW
    assert await limits.check("u1", "c1", 1) is Verdict.REFUSE_AND_SAY


async def test_a_chat_limit_holds_across_users() -> None:
    limits = MemoryRateLimits(user_per_minute=100, chat_per_minute=4, clock=FakeClock())
    assert [await limits.check(f"u{n}", "group", 2) for n in range(3)] == [
        Verdict.ALLOW,
        Verdict.ALLOW,
        Verdict.REFUSE_AND_SAY,
    ]


def test_a_window_says_how_long_until_its_oldest_entries_leave_it() -> None:
    """The embedded flood limits (MemorySendLimits) sleep exactly that long."""
    clock = FakeClock()
    window = SlidingWindow(3, clock, window_s=1.0)
    for at in (1000.0, 1000.2, 1000.4):
        clock.now = at
        window.take("bot", 1)
    clock.now = 1000.5
    assert window.wait_s("bot") == pytest.approx(0.5)
    assert window.wait_s("bot", 2) == pytest.approx(0.7)
    assert window.wait_s("bot", 4) == float("inf")
    assert window.wait_s("other") == 0.0
    clock.now = 1001.0
    assert window.wait_s("bot") == 0.0
    assert window.fits("bot", 1)


async def test_intake_turns_the_limit_into_one_notice() -> None:
    limits = MemoryRateLimits(user_per_minute=2, chat_per_minute=100)
    intake = Intake(AsyncioJobQueue(workers=1, maxsize=100), TIKTOK_ONLY, limits)
    answers = [
        await intake.take([post(n)], ChatOrigin(5), 10, private=False, sender=SOMEONE)
        for n in range(5)
    ]
    assert answers == [Answer.QUEUED] * 2 + [Answer.SLOW_DOWN] + [Answer.IGNORED] * 2


async def test_users_and_chats_gone_quiet_are_forgotten() -> None:
    clock = FakeClock()
    limits = MemoryRateLimits(user_per_minute=1, chat_per_minute=100, clock=clock)
    for n in range(100):
        await limits.check(f"u{n}", f"c{n}", 1)
    assert await limits.check("u0", "c0", 1) is Verdict.REFUSE_AND_SAY
    clock.now += 61
    assert await limits.check("u1", "c1", 1) is Verdict.ALLOW
    # What a bot that runs for months would otherwise keep of every user it ever met.
    remembered = [f"{kind}{n}" for kind in "uc" for n in range(100)]
    assert [key for key in remembered if key in limits._users or key in limits._chats] == [
        "u1",
        "c1",
    ]
    assert limits._told == set()


def test_what_to_say_at_once_is_decided_in_the_core() -> None:
    intake = Intake(AsyncioJobQueue(workers=1, maxsize=1), TIKTOK_ONLY, generous())
    said = {answer: intake.say(answer) for answer in Answer}
    assert said[Answer.QUEUED] is None, "the video itself is the answer"
    assert said[Answer.IGNORED] is None, "silence"
    assert said[Answer.NO_LINK] == intake.no_link_text
    assert said[Answer.BUSY] == BUSY_TEXT
    assert said[Answer.SLOW_DOWN] == SLOW_DOWN_TEXT
    assert said[Answer.RESTARTING] == RESTARTING_TEXT


class _OneChatsSettings:
    """Every chat's settings are the same `settings` (a ChatSettingsStore for one test)."""

    def __init__(self, settings: ChatSettings) -> None:
        self.settings = settings
        self.reads = 0

    async def get(self, chat: str) -> ChatSettings:
        self.reads += 1
        return self.settings

    async def put(self, chat: str, settings: ChatSettings) -> None:
        self.settings = settings

    async def close(self) -> None:
        return None


async def test_what_is_said_at_once_is_in_the_chats_language_else_the_senders() -> None:
    store = _OneChatsSettings(ChatSettings())
    intake = Intake(
        AsyncioJobQueue(workers=1, maxsize=1),
        TIKTOK_ONLY,
        generous(),
        chat_settings=lambda: store,
        texts=Catalogues.load(),
    )
    sender = Sender(user=1, chat=1, language="de-AT")
    assert await intake.say_to(Answer.QUEUED, "telegram", sender) is None
    assert store.reads == 0, "nothing to say: no settings read"
    german = await intake.say_to(Answer.BUSY, "telegram", sender)
    assert german == Catalogues.load().text("de", BUSY_TEXT) != BUSY_TEXT
    store.settings = ChatSettings(language="es")
    spanish = await intake.say_to(Answer.BUSY, "telegram", sender)
    assert spanish == Catalogues.load().text("es", BUSY_TEXT) != BUSY_TEXT
