"""SiteCatalog: which links other than TikTok's are taken, and how they are told apart."""

from __future__ import annotations

from bot.sites import SiteCatalog


def test_generic_links_without_an_id_stay_distinct() -> None:
    """The generic extractor has no ids: two URLs must not share a cache key or be merged."""
    catalog = SiteCatalog(["generic"])
    first, second = catalog.find("https://a.example/v.mp4 and https://b.example/v.mp4")
    assert (first.url, second.url) == ("https://a.example/v.mp4", "https://b.example/v.mp4")
    assert first.clip_id is None
    assert second.clip_id is None


def test_a_named_site_wins_over_the_generic_extractor_whatever_the_order() -> None:
    catalog = SiteCatalog(["generic", "Streamable"])
    [link] = catalog.find("https://streamable.com/abc1")
    assert (link.site, link.clip_id) == ("Streamable", "streamable:abc1")


def test_the_generic_extractor_comes_with_its_html5_helper() -> None:
    assert SiteCatalog(["TikTok", "generic"]).ytdlp_extractors == ["tiktok", "generic", "html5"]
    assert SiteCatalog(["TikTok", "Streamable"]).ytdlp_extractors == ["tiktok", "streamable"]
