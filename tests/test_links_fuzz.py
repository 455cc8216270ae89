"""Link finding on arbitrary input: never an exception, always in bounded time (bad input)."""

from __future__ import annotations

import time

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.intake import select_links
from bot.links import LinkKind, find_links, parse_link
from bot.sites import SiteCatalog

TIKTOK_ONLY = SiteCatalog(["TikTok"])
PIECES = st.sampled_from(
    [
        "https://",
        "http://",
        "www.tiktok.com",
        "vm.tiktok.com/",
        "tiktok.com/@a/video/",
        "/video/",
        "7301234567890123456",
        "?_t=1&_r=1",
        ".",
        ",",
        ")",
        "(",
        "[",
        "](",
        "\u200f",
        "\u202e",
        "\x00",
        "\n",
        " ",
        "😀",
        "@",
        "#",
        "evil.example/",
    ]
)
TEXTS = st.one_of(
    st.text(max_size=4096),
    st.lists(PIECES, max_size=400).map("".join),
)


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_find_links_never_fails_and_stays_fast(text: str) -> None:
    started = time.perf_counter()
    links = find_links(text)
    assert time.perf_counter() - started < 1.0
    for link in links:
        assert link.original in text
        if link.kind is LinkKind.VIDEO:
            assert link.clip_id is not None
            assert link.url == f"https://www.tiktok.com/@_/video/{link.clip_id}"


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=2000))
def test_parse_link_never_fails(url: str) -> None:
    found = parse_link(url)
    assert found is None or found.site == "tiktok"


@settings(max_examples=100, deadline=None)
@given(st.lists(TEXTS, max_size=3))
def test_selection_takes_at_most_three(texts: list[str]) -> None:
    assert len(select_links(texts, TIKTOK_ONLY, private=True)) <= 3


def test_a_thousand_links_in_one_message_give_three() -> None:
    text = " ".join(
        f"https://www.tiktok.com/@a/video/{7301234567890000000 + n}" for n in range(1000)
    )
    started = time.perf_counter()
    chosen = select_links([text], TIKTOK_ONLY, private=False)
    assert time.perf_counter() - started < 1.0
    assert [link.clip_id for link in chosen] == [str(7301234567890000000 + n) for n in range(3)]
