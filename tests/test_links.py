"""Unit tests of bot.links: finding and canonicalising TikTok links in chat text."""

from __future__ import annotations

import dataclasses
import time

import pytest

from bot.links import SITE, Link, LinkKind, find_links, parse_link, post_link

ID = "7106798200794926362"
VIDEO_URL = f"https://www.tiktok.com/@_/video/{ID}"
PHOTO_URL = f"https://www.tiktok.com/@_/photo/{ID}"

# (as pasted, kind, url to fetch, clip id)
FORMS: list[tuple[str, LinkKind, str, str | None]] = [
    # Posts with a known id.
    (f"https://www.tiktok.com/@user/video/{ID}", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://www.tiktok.com/@user/video/{ID}/", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"http://www.tiktok.com/@user/video/{ID}", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://tiktok.com/@user/video/{ID}", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://m.tiktok.com/@user/video/{ID}", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"www.tiktok.com/@user/video/{ID}", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"tiktok.com/@a/video/{ID}", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://www.tiktok.com/@user.name_x-y/video/{ID}", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://www.tiktok.com/@/video/{ID}", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://www.tiktok.com/@_/video/{ID}", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://www.tiktok.com/@user/video/{ID}?_t=8kXyZ&_r=1", LinkKind.VIDEO, VIDEO_URL, ID),
    (
        f"https://www.tiktok.com/@user/video/{ID}?is_from_webapp=1&sender_device=pc&web_id=1",
        LinkKind.VIDEO,
        VIDEO_URL,
        ID,
    ),
    (f"https://www.tiktok.com/@user/video/{ID}#comments", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://www.tiktok.com/@user/video/{ID}?lang=en#top", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"HTTPS://WWW.TIKTOK.COM/@USER/VIDEO/{ID}", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://WWW.TikTok.Com/@User/video/{ID}", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://www.tiktok.com/share/video/{ID}", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://www.tiktok.com/embed/v2/{ID}", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://www.tiktok.com/embed/v2/{ID}?lang=en-US", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://www.tiktok.com/embed/{ID}", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://www.tiktok.com/player/v1/{ID}?autoplay=1", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://m.tiktok.com/v/{ID}.html", LinkKind.VIDEO, VIDEO_URL, ID),
    (
        f"https://m.tiktok.com/v/{ID}.html?u_code=abc&preview_pb=0&language=en&utm_source=copy",
        LinkKind.VIDEO,
        VIDEO_URL,
        ID,
    ),
    (f"m.tiktok.com/v/{ID}", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://www.tiktokv.com/share/video/{ID}/", LinkKind.VIDEO, VIDEO_URL, ID),
    # Where TikTok Lite's short links lead, and the Lite and "TikTok Pro" hosts.
    (f"https://t.tiktok.com/i18n/share/video/{ID}/?_d=x&u_code=y", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://lite.tiktok.com/@user/video/{ID}?_r=1", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://pro.tiktok.com/@user/video/{ID}", LinkKind.VIDEO, VIDEO_URL, ID),
    (f"https://www.tiktok.com/@user/video/{ID}//", LinkKind.VIDEO, VIDEO_URL, ID),
    ("https://www.tiktok.com/@a/video/1", LinkKind.VIDEO, "https://www.tiktok.com/@_/video/1", "1"),
    (
        "https://www.tiktok.com/@a/video/" + "9" * 25,
        LinkKind.VIDEO,
        "https://www.tiktok.com/@_/video/" + "9" * 25,
        "9" * 25,
    ),
    # Slideshows.
    (f"https://www.tiktok.com/@user/photo/{ID}", LinkKind.PHOTO, PHOTO_URL, ID),
    (f"https://www.tiktok.com/@user/photo/{ID}?_r=1&_t=x", LinkKind.PHOTO, PHOTO_URL, ID),
    (f"tiktok.com/@user.name/photo/{ID}/", LinkKind.PHOTO, PHOTO_URL, ID),
    # Short links: the same host, https, a trailing slash, no query; the code keeps its case.
    ("https://vm.tiktok.com/ZMabc123/", LinkKind.SHORT, "https://vm.tiktok.com/ZMabc123/", None),
    ("https://vm.tiktok.com/ZMabc123", LinkKind.SHORT, "https://vm.tiktok.com/ZMabc123/", None),
    ("http://vm.tiktok.com/ZMabc123/", LinkKind.SHORT, "https://vm.tiktok.com/ZMabc123/", None),
    ("vm.tiktok.com/ZMabc/", LinkKind.SHORT, "https://vm.tiktok.com/ZMabc/", None),
    ("VM.TIKTOK.COM/ZMabc", LinkKind.SHORT, "https://vm.tiktok.com/ZMabc/", None),
    ("https://vm.tiktok.com/ZMabc/?_r=1#x", LinkKind.SHORT, "https://vm.tiktok.com/ZMabc/", None),
    ("https://vt.tiktok.com/ZSe4FqkKd", LinkKind.SHORT, "https://vt.tiktok.com/ZSe4FqkKd/", None),
    ("vt.tiktok.com/ZSe4FqkKd/", LinkKind.SHORT, "https://vt.tiktok.com/ZSe4FqkKd/", None),
    (
        "https://www.tiktok.com/t/ZTRC5xgJp/",
        LinkKind.SHORT,
        "https://www.tiktok.com/t/ZTRC5xgJp/",
        None,
    ),
    (
        "https://www.tiktok.com/t/ZTRC5xgJp?_r=1",
        LinkKind.SHORT,
        "https://www.tiktok.com/t/ZTRC5xgJp/",
        None,
    ),
    # yt-dlp only knows /t/ on www.tiktok.com, so other hosts move there.
    ("tiktok.com/t/ZTRC5xgJp", LinkKind.SHORT, "https://www.tiktok.com/t/ZTRC5xgJp/", None),
    ("m.tiktok.com/t/ZTRC5xgJp", LinkKind.SHORT, "https://www.tiktok.com/t/ZTRC5xgJp/", None),
    ("pro.tiktok.com/t/ZTRC5xgJp", LinkKind.SHORT, "https://www.tiktok.com/t/ZTRC5xgJp/", None),
    # TikTok Lite's share links stay on their own host.
    (
        "https://lite.tiktok.com/t/ZGe9gUghH/",
        LinkKind.SHORT,
        "https://lite.tiktok.com/t/ZGe9gUghH/",
        None,
    ),
    ("LITE.TIKTOK.COM/T/ZGe9gUghH", LinkKind.SHORT, "https://lite.tiktok.com/t/ZGe9gUghH/", None),
    # Codes with a dash (TikTok's newer, longer codes) and doubled trailing slashes.
    (
        "https://vm.tiktok.com/ZSHneWNgo9WRY-xiRJ7/",
        LinkKind.SHORT,
        "https://vm.tiktok.com/ZSHneWNgo9WRY-xiRJ7/",
        None,
    ),
    ("vt.tiktok.com/ZMh-AbC12", LinkKind.SHORT, "https://vt.tiktok.com/ZMh-AbC12/", None),
    (
        "https://lite.tiktok.com/t/ZS9AJY6f4n6Sw-GQnDP/?_r=1",
        LinkKind.SHORT,
        "https://lite.tiktok.com/t/ZS9AJY6f4n6Sw-GQnDP/",
        None,
    ),
    ("www.tiktok.com/t/ZMh-AbC12", LinkKind.SHORT, "https://www.tiktok.com/t/ZMh-AbC12/", None),
    (
        "https://www.tiktok.com/t/ZGdhVtER2//",
        LinkKind.SHORT,
        "https://www.tiktok.com/t/ZGdhVtER2/",
        None,
    ),
    # Links that lead to no single post: the cleaned URL, no id.
    ("https://www.tiktok.com/@user", LinkKind.NOT_VIDEO, "https://www.tiktok.com/@user", None),
    (
        "https://www.tiktok.com/@user.name/?lang=en",
        LinkKind.NOT_VIDEO,
        "https://www.tiktok.com/@user.name/",
        None,
    ),
    ("tiktok.com/@user", LinkKind.NOT_VIDEO, "https://tiktok.com/@user", None),
    (
        "https://www.tiktok.com/tag/funny",
        LinkKind.NOT_VIDEO,
        "https://www.tiktok.com/tag/funny",
        None,
    ),
    (
        f"https://www.tiktok.com/music/Original-Sound-{ID}",
        LinkKind.NOT_VIDEO,
        f"https://www.tiktok.com/music/Original-Sound-{ID}",
        None,
    ),
    ("https://www.tiktok.com/live", LinkKind.NOT_VIDEO, "https://www.tiktok.com/live", None),
    (
        "https://www.tiktok.com/@user/live",
        LinkKind.NOT_VIDEO,
        "https://www.tiktok.com/@user/live",
        None,
    ),
    (
        f"https://m.tiktok.com/share/live/{ID}/?language=en",
        LinkKind.NOT_VIDEO,
        f"https://m.tiktok.com/share/live/{ID}/",
        None,
    ),
    (
        "https://www.tiktok.com/discover/cats?lang=en",
        LinkKind.NOT_VIDEO,
        "https://www.tiktok.com/discover/cats",
        None,
    ),
    (
        f"https://www.tiktok.com/@user/collection/Best-{ID}",
        LinkKind.NOT_VIDEO,
        f"https://www.tiktok.com/@user/collection/Best-{ID}",
        None,
    ),
    ("https://www.tiktok.com/", LinkKind.NOT_VIDEO, "https://www.tiktok.com/", None),
    ("https://www.tiktok.com", LinkKind.NOT_VIDEO, "https://www.tiktok.com/", None),
    ("tiktok.com", LinkKind.NOT_VIDEO, "https://tiktok.com/", None),
    ("TikTok.com", LinkKind.NOT_VIDEO, "https://tiktok.com/", None),
    ("https://vm.tiktok.com/", LinkKind.NOT_VIDEO, "https://vm.tiktok.com/", None),
    ("https://www.tiktok.com/foryou", LinkKind.NOT_VIDEO, "https://www.tiktok.com/foryou", None),
    # A post path that is not quite one.
    (
        "https://www.tiktok.com/@user/video/",
        LinkKind.NOT_VIDEO,
        "https://www.tiktok.com/@user/video/",
        None,
    ),
    (
        "https://www.tiktok.com/@user/video/123abc",
        LinkKind.NOT_VIDEO,
        "https://www.tiktok.com/@user/video/123abc",
        None,
    ),
    (
        "https://www.tiktok.com/@user/video/" + "1" * 26,
        LinkKind.NOT_VIDEO,
        "https://www.tiktok.com/@user/video/" + "1" * 26,
        None,
    ),
    (
        "https://vm.tiktok.com/ZMabc/extra",
        LinkKind.NOT_VIDEO,
        "https://vm.tiktok.com/ZMabc/extra",
        None,
    ),
    ("https://lite.tiktok.com/", LinkKind.NOT_VIDEO, "https://lite.tiktok.com/", None),
    (
        "https://t.tiktok.com/i18n/share/user/1/",
        LinkKind.NOT_VIDEO,
        "https://t.tiktok.com/i18n/share/user/1/",
        None,
    ),
    # A bare tiktok.com/CODE is a page name on www (/foryou, /live), not a short link.
    ("https://tiktok.com/ZGdhVtER2", LinkKind.NOT_VIDEO, "https://tiktok.com/ZGdhVtER2", None),
]


def _summary(link: Link) -> tuple[LinkKind, str, str | None]:
    return link.kind, link.url, link.clip_id


@pytest.mark.parametrize(("pasted", "kind", "url", "clip_id"), FORMS)
def test_parse_link_forms(pasted: str, kind: LinkKind, url: str, clip_id: str | None) -> None:
    link = parse_link(pasted)
    assert link == Link(site=SITE, kind=kind, url=url, clip_id=clip_id, original=pasted)
    assert link.site == "tiktok"


@pytest.mark.parametrize(("pasted", "kind", "url", "clip_id"), FORMS)
def test_find_links_forms_inside_text(
    pasted: str, kind: LinkKind, url: str, clip_id: str | None
) -> None:
    text = f"look at this {pasted} it's great"
    assert find_links(text) == [Link(SITE, kind, url, clip_id, pasted)]


@pytest.mark.parametrize(("pasted", "kind", "url", "clip_id"), FORMS)
def test_find_links_forms_alone(pasted: str, kind: LinkKind, url: str, clip_id: str | None) -> None:
    assert [_summary(link) for link in find_links(pasted)] == [(kind, url, clip_id)]


LONG = f"https://www.tiktok.com/@user/video/{ID}"
SHORT = "https://vm.tiktok.com/ZMabc/"
BARE = f"tiktok.com/@a/video/{ID}"
QUERY = f"https://www.tiktok.com/@user/video/{ID}?_t=8kXyZ&_r=1"


@pytest.mark.parametrize("link", [LONG, SHORT, BARE, QUERY])
@pytest.mark.parametrize(
    "tail",
    [
        ".",
        ",",
        "!",
        "?",
        ";",
        ":",
        ")",
        "]",
        ">",
        "'",
        '"',
        "…",
        "...",
        "!!!",
        "?!",
        ").",
        "),",
        "].",
        "'.",
        '".',
        ":)",
        ";)",
        "!)",
        ".\n",
        "*",
        "**",
        "»",
        "”",
        "\u2019",
        "。",
        "\uff0c",
    ],
)
def test_trailing_punctuation_is_not_part_of_the_link(link: str, tail: str) -> None:
    found = find_links(f"see {link}{tail} and more")
    assert [item.original for item in found] == [link]
    assert found[0] == parse_link(link)


@pytest.mark.parametrize("link", [LONG, SHORT, BARE, QUERY])
@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("(", ")"),
        ("(see ", ")"),
        ("[", "]"),
        ("[the clip](", ")"),
        ("<", ">"),
        ('"', '"'),
        ("'", "'"),
        ("“", "”"),
        ("«", "»"),
        ("`", "`"),
        ("**", "**"),
        ("{", "}"),
        ("🔥", "🔥"),
        ("Look:", ""),
        ("wow!", "!"),
        ("\n", "\n"),
        ("\t", "\t"),
        ("\u00a0", "\u00a0"),
        ("", ""),
    ],
)
def test_links_inside_brackets_quotes_and_markup(link: str, before: str, after: str) -> None:
    found = find_links(f"hey {before}{link}{after} ok")
    assert [item.original for item in found] == [link]
    found = find_links(f"{before}{link}{after}")
    assert [item.original for item in found] == [link]


def test_markdown_link_with_the_url_as_its_text_counts_once() -> None:
    text = f"[{LONG}]({LONG})"
    assert [item.original for item in find_links(text)] == [LONG]


def test_markdown_link_with_other_text() -> None:
    assert [_summary(link) for link in find_links(f"watch [this]({SHORT}).")] == [
        (LinkKind.SHORT, SHORT, None)
    ]


def test_dot_after_scheme_link_in_a_sentence() -> None:
    assert [link.original for link in find_links(f"the end.{SHORT}")] == [SHORT]


def test_non_latin_text_glued_to_a_link() -> None:
    assert [link.original for link in find_links(f"смотри{SHORT}")] == [SHORT]
    assert [link.original for link in find_links(f"看这个{LONG}\uff0c好笑")] == [LONG]


def test_several_links_in_order_of_appearance() -> None:
    text = (
        "first https://vm.tiktok.com/AAA/ then\n"
        "https://www.tiktok.com/@a/video/111?_r=1\n"
        "(https://www.tiktok.com/@b/photo/222), and vt.tiktok.com/BBB; finally "
        "https://www.tiktok.com/t/CCC/ and m.tiktok.com/v/333.html!"
    )
    assert [_summary(link) for link in find_links(text)] == [
        (LinkKind.SHORT, "https://vm.tiktok.com/AAA/", None),
        (LinkKind.VIDEO, "https://www.tiktok.com/@_/video/111", "111"),
        (LinkKind.PHOTO, "https://www.tiktok.com/@_/photo/222", "222"),
        (LinkKind.SHORT, "https://vt.tiktok.com/BBB/", None),
        (LinkKind.SHORT, "https://www.tiktok.com/t/CCC/", None),
        (LinkKind.VIDEO, "https://www.tiktok.com/@_/video/333", "333"),
    ]


@pytest.mark.parametrize("glue", [",", ";", ".", ":", "!", "?", ",,", "...", ", ", "\n"])
def test_links_glued_by_punctuation(glue: str) -> None:
    text = glue.join(
        [
            "https://vm.tiktok.com/AAA/",
            "https://www.tiktok.com/@a/video/111?_r=1",
            "https://vt.tiktok.com/BBB",
            "https://www.tiktok.com/@b/video/222",
        ]
    )
    assert [link.url for link in find_links(text)] == [
        "https://vm.tiktok.com/AAA/",
        "https://www.tiktok.com/@_/video/111",
        "https://vt.tiktok.com/BBB/",
        "https://www.tiktok.com/@_/video/222",
    ]


def test_links_glued_without_anything_between() -> None:
    text = "https://vm.tiktok.com/AAA/https://vt.tiktok.com/BBBhttps://www.tiktok.com/@b/video/2"
    assert [link.url for link in find_links(text)] == [
        "https://vm.tiktok.com/AAA/",
        "https://vt.tiktok.com/BBB/",
        "https://www.tiktok.com/@_/video/2",
    ]


def test_a_query_swallows_a_link_glued_on_without_punctuation() -> None:
    # "?u=https://..." is a query value, so a scheme right after a query is one too.
    text = "https://www.tiktok.com/@a/video/1?_r=1https://www.tiktok.com/@b/video/2"
    assert [link.clip_id for link in find_links(text)] == ["1"]


@pytest.mark.parametrize("glue", [",", ";", "!", ", "])
def test_links_without_scheme_glued_by_punctuation(glue: str) -> None:
    text = glue.join(["tiktok.com/@a/video/111", "vm.tiktok.com/AAA", "www.tiktok.com/t/BBB"])
    assert [link.url for link in find_links(text)] == [
        "https://www.tiktok.com/@_/video/111",
        "https://vm.tiktok.com/AAA/",
        "https://www.tiktok.com/t/BBB/",
    ]


def test_original_is_the_text_as_found() -> None:
    text = f"a HTTPS://VM.TIKTOK.COM/ZMabc?_r=1. b WWW.TIKTOK.COM/@X/VIDEO/{ID}#c!"
    found = find_links(text)
    assert [link.original for link in found] == [
        "HTTPS://VM.TIKTOK.COM/ZMabc?_r=1",
        f"WWW.TIKTOK.COM/@X/VIDEO/{ID}#c",
    ]
    assert [link.url for link in found] == ["https://vm.tiktok.com/ZMabc/", VIDEO_URL]
    for link in found:
        assert link.original in text


def test_identical_long_links_count_once() -> None:
    assert find_links(f"{LONG} {LONG}\n{LONG}.") == [parse_link(LONG)]


def test_forms_of_one_post_count_once_keeping_the_first() -> None:
    text = (
        f"{QUERY} https://m.tiktok.com/v/{ID}.html tiktok.com/@other/video/{ID} "
        f"https://www.tiktok.com/embed/v2/{ID}"
    )
    found = find_links(text)
    assert len(found) == 1
    assert found[0].original == QUERY
    assert found[0].url == VIDEO_URL


def test_short_and_long_links_of_one_post_stay_distinct() -> None:
    found = find_links(f"{SHORT} {LONG}")
    assert [link.kind for link in found] == [LinkKind.SHORT, LinkKind.VIDEO]


def test_same_short_link_counts_once() -> None:
    text = "https://vm.tiktok.com/ZMabc/ vm.tiktok.com/ZMabc http://VM.tiktok.com/ZMabc/?_r=1"
    found = find_links(text)
    assert [link.url for link in found] == ["https://vm.tiktok.com/ZMabc/"]
    assert found[0].original == "https://vm.tiktok.com/ZMabc/"


def test_short_codes_differing_in_case_or_host_are_distinct() -> None:
    text = "vm.tiktok.com/ZMabc vm.tiktok.com/ZMABC vt.tiktok.com/ZMabc www.tiktok.com/t/ZMabc"
    assert [link.url for link in find_links(text)] == [
        "https://vm.tiktok.com/ZMabc/",
        "https://vm.tiktok.com/ZMABC/",
        "https://vt.tiktok.com/ZMabc/",
        "https://www.tiktok.com/t/ZMabc/",
    ]


def test_distinct_posts_all_kept() -> None:
    text = " ".join(f"https://www.tiktok.com/@a/video/{n}" for n in range(1, 6))
    assert [link.clip_id for link in find_links(text)] == ["1", "2", "3", "4", "5"]


def test_not_video_links_are_found_and_deduplicated_by_url() -> None:
    text = "tiktok.com/@user tiktok.com/@user?lang=en https://www.tiktok.com/@user"
    assert [link.url for link in find_links(text)] == [
        "https://tiktok.com/@user",
        "https://www.tiktok.com/@user",
    ]


LOOK_ALIKES = [
    "us.tiktok.com/@a/video/1",
    "https://us.tiktok.com/@a/video/1",
    "xlite.tiktok.com/t/ZMabc/",
    "evil.lite.tiktok.com/t/ZMabc/",
    "https://lite.tiktok.com.evil.example/t/ZMabc/",
    "https://evil.t.tiktok.com/i18n/share/video/1/",
    "repro.tiktok.com/@a/video/1",
    "https://v.douyin.com/iysEh9UH/",
    "tiktok.com.evil.example/@a/video/1",
    "https://tiktok.com.evil.example/@a/video/1",
    "https://www.tiktok.com.evil.example/@a/video/1",
    "evil.example/www.tiktok.com/@a/video/1",
    "https://evil.example/www.tiktok.com/@a/video/1",
    "https://evil.example/https://www.tiktok.com/@a/video/1",
    "https://web.archive.org/web/2024/https://www.tiktok.com/@a/video/1",
    "https://evil.example/?u=https://www.tiktok.com/@a/video/1",
    "https://evil.example/?u=www.tiktok.com/@a/video/1",
    "https://evil.example/?a=1&u=tiktok.com/@a/video/1",
    "https://evil.example/?a=1,https://www.tiktok.com/@a/video/1",
    "https://evil.example/#https://www.tiktok.com/@a/video/1",
    "https://evil.example/x.https://www.tiktok.com/@a/video/1",
    "https://evil.example/?u=https%3A%2F%2Fwww.tiktok.com%2F%40a%2Fvideo%2F1",
    "nottiktok.com/@a/video/1",
    "https://nottiktok.com/@a/video/1",
    "xtiktok.com",
    "xtiktok.com/@a/video/1",
    "x.tiktok.com/@a/video/1",
    "evil.tiktok.com/@a/video/1",
    "https://evil.vm.tiktok.com/ZMabc/",
    "user@tiktok.com",
    "mail user@tiktok.com today",
    "user@vm.tiktok.com",
    "https://tiktok.com@evil.example/@a/video/1",
    "https://www.tiktok.com:pw@evil.example/@a/video/1",
    "tiktok.com-evil.example/@a/video/1",
    "tiktok.community/@a/video/1",
    "tiktok.co/@a/video/1",
    "tiktok.com_x/@a/video/1",
    "tiktok.comé/@a/video/1",
    "tiktok.com%2eevil.example/@a/video/1",
    "//www.tiktok.com/@a/video/1",
    "ftp://www.tiktok.com/@a/video/1",
    "1tiktok.com/@a/video/1",
    "_tiktok.com/@a/video/1",
    "-tiktok.com/@a/video/1",
    ".tiktok.com/@a/video/1",
    "ti\u212atok.com/@a/video/1",  # Kelvin sign, which Unicode case folding turns into "k"
    "t\u0131ktok.com/@a/video/1",  # dotless i
    "tiktok\uff0ecom/@a/video/1",  # fullwidth full stop
]


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_are_not_links(text: str) -> None:
    assert find_links(text) == []
    assert find_links(f"see {text} now") == []
    assert find_links(f"({text})") == []


@pytest.mark.parametrize("text", LOOK_ALIKES)
def test_look_alikes_do_not_hide_a_real_link_after_them(text: str) -> None:
    found = find_links(f"{text} {SHORT}")
    assert [link.url for link in found] == [SHORT]


@pytest.mark.parametrize(
    "text",
    [
        "",
        " ",
        "\n\n",
        "hello there",
        "tiktok is fun",
        "tiktok . com",
        "https://example.com/@a/video/1",
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://vm.example.com/ZMabc/",
        "www.tiktok",
        "https://",
        "@user/video/123",
    ],
)
def test_text_without_tiktok_links(text: str) -> None:
    assert find_links(text) == []


ADVERTS = [
    "https://www.tiktok.com/tiktoklite",
    "https://www.tiktok.com/tiktoklite/",
    "www.tiktok.com/TikTokLite?lang=en",
    "https://www.tiktok.com/download",
    "https://www.tiktok.com/download-link/af/id1235601864",
    "https://lite.tiktok.com/ref/capdrawnn",
]


@pytest.mark.parametrize("advert", ADVERTS)
def test_app_adverts_are_never_found(advert: str) -> None:
    assert find_links(advert) == []
    assert find_links(f"Download TikTok Lite to enjoy more posts: {advert}") == []
    # Still TikTok's own page, so that no other extractor takes it.
    link = parse_link(advert)
    assert link is not None
    assert link.kind is LinkKind.NOT_VIDEO


def test_tiktok_lite_share_text_gives_only_the_clip() -> None:
    text = (
        "Check out Sarafina's video! #TikTok https://vm.tiktok.com/ZSHneWNgo9WRY-xiRJ7/ "
        "This post is shared via TikTok Lite. Download TikTok Lite to enjoy more posts:  "
        "https://www.tiktok.com/tiktoklite"
    )
    assert [_summary(link) for link in find_links(text)] == [
        (LinkKind.SHORT, "https://vm.tiktok.com/ZSHneWNgo9WRY-xiRJ7/", None)
    ]


@pytest.mark.parametrize(
    "text",
    [
        "https://www.tiktok.com/tiktoklites",
        "https://www.tiktok.com/downloads",
        "https://www.tiktok.com/@tiktoklite",
        "https://www.tiktok.com/ref/",
    ],
)
def test_pages_near_the_adverts_are_still_found(text: str) -> None:
    assert [link.kind for link in find_links(text)] == [LinkKind.NOT_VIDEO]


def test_tiktok_link_inside_a_tiktok_query_is_part_of_it() -> None:
    text = f"https://www.tiktok.com/login?redirect_url=https://www.tiktok.com/@a/video/{ID}"
    assert [_summary(link) for link in find_links(text)] == [
        (LinkKind.NOT_VIDEO, "https://www.tiktok.com/login", None)
    ]


@pytest.mark.parametrize(
    "url",
    [
        "",
        "   ",
        "hello",
        "https://example.com/",
        "https://www.youtube.com/watch?v=x",
        "https://evil.example/?u=https://www.tiktok.com/@a/video/1",
        "see https://vm.tiktok.com/ZMabc/",
        "https://vm.tiktok.com/ZMabc/ and more",
        "<https://vm.tiktok.com/ZMabc/>",
        "tiktok.com,foo",
        "tiktok.com:8080/@a/video/1",
        *LOOK_ALIKES,
    ],
)
def test_parse_link_rejects_what_is_not_a_tiktok_url(url: str) -> None:
    assert parse_link(url) is None


def test_parse_link_trims_whitespace_and_trailing_punctuation() -> None:
    link = parse_link(f"  {SHORT}.\n")
    assert link == Link(SITE, LinkKind.SHORT, SHORT, None, SHORT)


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (
            f"https://www.tiktok.com/@user/video/{ID}?_r=1&u_code=x&preview_pb=0&_d=a,b|c",
            (LinkKind.VIDEO, VIDEO_URL, ID),
        ),
        (
            "https://www.tiktok.com/login?redirect_url=https%3A%2F%2Fwww.tiktok.com%2F",
            (LinkKind.NOT_VIDEO, "https://www.tiktok.com/login", None),
        ),
        (
            "https://vm.tiktok.com/ZMother/?next=https://www.tiktok.com/@a/video/1",
            (LinkKind.SHORT, "https://vm.tiktok.com/ZMother/", None),
        ),
    ],
)
def test_parse_link_takes_a_whole_redirect_target(
    location: str, expected: tuple[LinkKind, str, str | None]
) -> None:
    link = parse_link(location)
    assert link is not None
    assert _summary(link) == expected


def test_parse_link_agrees_with_find_links() -> None:
    for pasted, *_ in FORMS:
        assert find_links(pasted) == [parse_link(pasted)]


@pytest.mark.parametrize(
    ("clip_id", "photo", "url"),
    [
        (ID, False, VIDEO_URL),
        (ID, True, PHOTO_URL),
        ("1", False, "https://www.tiktok.com/@_/video/1"),
        ("9" * 25, True, "https://www.tiktok.com/@_/photo/" + "9" * 25),
    ],
)
def test_post_link(clip_id: str, photo: bool, url: str) -> None:
    assert post_link(clip_id, photo=photo) == url
    link = parse_link(url)
    assert link is not None
    assert link.clip_id == clip_id
    assert link.url == url


def test_post_link_is_video_by_default() -> None:
    assert post_link(ID) == VIDEO_URL


@pytest.mark.parametrize("clip_id", ["", "abc", "12a", " 12", "1" * 26, "١٢٣", "-1"])
def test_post_link_rejects_non_ids(clip_id: str) -> None:
    with pytest.raises(ValueError, match="not a TikTok post id"):
        post_link(clip_id)


def test_link_is_a_frozen_value() -> None:
    link = parse_link(LONG)
    assert link is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        link.url = "https://evil.example/"  # type: ignore[misc]
    assert hash(link) == hash(parse_link(LONG))
    assert LinkKind("video") is LinkKind.VIDEO


NASTY = [
    "tiktok.com/" * 400,
    "https://" * 500,
    "http://" * 600,
    "https://www.tiktok.com" * 200,
    "https://vm.tiktok.com/" * 200,
    "https://www.tiktok.com/@a/video/1," * 120,
    "tiktok.com," * 400,
    "atiktok.com," * 400,
    "x.tiktok.com" * 350,
    "tiktok.com." * 400,
    "@tiktok.com" * 400,
    "?https://" * 500,
    ".https://" * 500,
    "https://www.tiktok.com/?" + ".https:/" * 500,
    "https://www.tiktok.com/#" + "?https:/" * 500,
    "https://www.tiktok.com/" + "/" * 4096,
    "https://www.tiktok.com/@" + "a." * 2048,
    "https://www.tiktok.com/@a/video/" + "1" * 4096,
    "https://vm.tiktok.com/" + "Z" * 4096,
    "https://vm.tiktok.com/" + "-" * 4096,
    "https://lite.tiktok.com/t/" + "Z-" * 2048 + "/" * 2048,
    "https://www.tiktok.com/download-link" + "/a" * 2048 + "?",
    "https://www.tiktok.com/download-link" + "/" * 4096 + "a",
    "lite.tiktok.com," * 300,
    "t.tiktok.com" * 350,
    "(" + "https://vm.tiktok.com/A/," * 150 + ")",
    "a" * 4096,
    "." * 4096,
    "@" * 4096,
    "/" * 4096,
    "wow!" * 1024,
    "🔥" * 4096,
    "ti" * 2048,
    "tiktok" * 700,
    "tiktok.co" * 450,
    "www." * 1024,
]


@pytest.mark.parametrize("text", NASTY, ids=[text[:24] for text in NASTY])
def test_adversarial_input_is_fast(text: str) -> None:
    started = time.perf_counter()
    find_links(text)
    parse_link(text)
    assert time.perf_counter() - started < 0.5


def test_long_message_with_many_links_is_fast() -> None:
    text = " ".join(f"x,https://www.tiktok.com/@u/video/{n}?_r=1." for n in range(2000))
    started = time.perf_counter()
    found = find_links(text)
    assert time.perf_counter() - started < 1.0
    assert len(found) == 2000
