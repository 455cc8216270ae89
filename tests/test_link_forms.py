"""Every TikTok link form listed in tests/data/tiktok_link_forms.json, with where it was seen.

Each entry is what a person pastes and what the bot makes of it: a post ("video", "photo"), a
short link to resolve ("short"), a TikTok page that is no single post ("not_video": answered in
private chats only), or nothing at all ("none": not TikTok, a look-alike, or an app advert).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.intake import select_links
from bot.links import SITE, Link, LinkKind, find_links, parse_link
from bot.sites import SiteCatalog

FORMS_FILE = Path(__file__).resolve().parent / "data" / "tiktok_link_forms.json"
FORMS: list[dict[str, Any]] = json.loads(FORMS_FILE.read_text(encoding="utf-8"))
KINDS = {kind.value: kind for kind in LinkKind}
EXPECTS = {*KINDS, "none"}

LITE_SHARE_TEXT = next(form["text"] for form in FORMS if "Check out" in form["text"])
ADVERT = "https://www.tiktok.com/tiktoklite"


def _id(form: dict[str, Any]) -> str:
    return str(form["text"])[:60]


def _summary(link: Link) -> tuple[str, str, str | None]:
    return link.kind.value, link.url, link.clip_id


def test_the_list_is_well_formed() -> None:
    assert 40 <= len(FORMS) <= 80
    texts = [form["text"] for form in FORMS]
    assert len(set(texts)) == len(texts), "a form is listed twice"
    for form in FORMS:
        assert set(form) <= {"text", "expect", "clip_id", "url", "source", "note", "parse_link"}
        assert form["expect"] in EXPECTS, form
        assert form["source"], form
        if form["expect"] == "none":
            assert form["url"] is None, form
        else:
            assert form["url"], form
        assert (form["clip_id"] is not None) == (form["expect"] in {"video", "photo"}), form


@pytest.mark.parametrize("form", FORMS, ids=_id)
def test_find_links(form: dict[str, Any]) -> None:
    found = find_links(form["text"])
    if form["expect"] == "none":
        assert found == []
        return
    assert [_summary(link) for link in found] == [(form["expect"], form["url"], form["clip_id"])]
    assert found[0].site == SITE
    assert found[0].original in form["text"]


def _one_bare_url(form: dict[str, Any]) -> bool:
    """The text is a single URL and nothing else (what `parse_link` is given)."""
    text = str(form["text"])
    found = find_links(text)
    whole = len(found) == 1 and found[0].original == text
    return not any(char.isspace() for char in text) and (whole or form["expect"] == "none")


@pytest.mark.parametrize("form", [form for form in FORMS if _one_bare_url(form)], ids=_id)
def test_parse_link_where_the_text_is_one_url(form: dict[str, Any]) -> None:
    text = form["text"]
    found = find_links(text)
    link = parse_link(text)
    expect = form.get("parse_link", form["expect"])
    if expect == "none":
        assert link is None
    elif form["expect"] == "none":
        # TikTok's own page (so no other extractor takes it), but never offered as a link.
        assert link is not None
        assert link.kind.value == expect
    else:
        assert link == found[0]


@pytest.mark.parametrize("form", [form for form in FORMS if form["expect"] != "none"], ids=_id)
def test_the_url_to_fetch_reads_back_as_itself(form: dict[str, Any]) -> None:
    link = parse_link(form["url"])
    assert link is not None
    assert _summary(link) == (form["expect"], form["url"], form["clip_id"])


def test_the_app_advert_gets_no_answer_anywhere() -> None:
    for text in (ADVERT, f"Download TikTok Lite to enjoy more posts: {ADVERT}"):
        assert select_links([text], SiteCatalog(["TikTok"]), private=True) == []
        assert select_links([text], SiteCatalog(["TikTok"]), private=False) == []


def test_a_lite_share_text_gives_one_clip_even_with_the_generic_extractor() -> None:
    for sites in (SiteCatalog(["TikTok"]), SiteCatalog(["TikTok", "generic"])):
        for private in (True, False):
            chosen = select_links([LITE_SHARE_TEXT], sites, private=private)
            assert [link.url for link in chosen] == ["https://vm.tiktok.com/ZS4BB5Rc7/"]
    assert SiteCatalog(["generic"]).find(LITE_SHARE_TEXT) == []


def test_the_advert_does_not_hide_links_after_it() -> None:
    text = (
        f"{ADVERT},https://vm.tiktok.com/ZSHneWNgo9WRY-xiRJ7/ {ADVERT}/ https://vt.tiktok.com/ZS1/"
    )
    assert [link.url for link in find_links(text)] == [
        "https://vm.tiktok.com/ZSHneWNgo9WRY-xiRJ7/",
        "https://vt.tiktok.com/ZS1/",
    ]
