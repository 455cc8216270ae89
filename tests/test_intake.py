from dataclasses import dataclass

import pytest

from bot.intake import Answer, Intake, select_links
from bot.links import LinkKind
from bot.queue import AsyncioJobQueue
from bot.sites import SiteCatalog

TIKTOK_ONLY = SiteCatalog(["TikTok"])


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
    intake = Intake(queue, TIKTOK_ONLY)
    assert intake.take(["hi"], ChatOrigin(1), 10, private=True) is Answer.NO_LINK
    assert intake.take(["hi"], ChatOrigin(2), 10, private=False) is Answer.IGNORED
    assert intake.take([post(1)], ChatOrigin(3), 10, private=False) is Answer.QUEUED


async def test_a_full_queue_answers_busy_at_once() -> None:
    intake = Intake(AsyncioJobQueue(workers=1, maxsize=2), TIKTOK_ONLY)
    answers = [intake.take([post(n)], ChatOrigin(n), 10, private=True) for n in range(4)]
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
    intake = Intake(AsyncioJobQueue(workers=1, maxsize=1), SiteCatalog(["TikTok", "Streamable"]))
    assert "TikTok, Streamable" in intake.no_link_text


def test_an_unknown_site_name_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="Nosuchsite"):
        SiteCatalog(["TikTok", "Nosuchsite"])
