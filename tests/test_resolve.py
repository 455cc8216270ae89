"""Short links: every hop must stay on a TikTok host; nothing is sent anywhere else; each is
looked up once when a store keeps where it led."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.links import Link, LinkKind, parse_link
from bot.model import FetchError, Reason
from bot.ports import ShortLinks
from bot.proxies import ProxyPool
from bot.resolve import HttpxLinkResolver
from bot.stores.sqlite_shortlinks import SqliteShortLinks
from tests.standins.tiktok import TikTokStandIn


@pytest.mark.parametrize(
    "location",
    [
        "http://169.254.169.254/latest/meta-data/",
        "https://localhost/@x/video/7300000000000000001",
        "https://www.tiktok.com.evil.example/@x/video/7300000000000000001",
    ],
)
async def test_a_short_link_leading_off_tiktok_is_refused_before_the_hop(
    tiktok: TikTokStandIn, location: str
) -> None:
    tiktok.add_short_link_off_site("ZMoffsite", location)
    resolver = HttpxLinkResolver(
        proxies=ProxyPool([tiktok.proxy_url]), verify_tls=False, timeout_s=10
    )
    link = parse_link("https://vm.tiktok.com/ZMoffsite/")
    assert link is not None
    try:
        with pytest.raises(FetchError) as caught:
            await resolver.resolve(link)
    finally:
        await resolver.aclose()
    assert caught.value.reason is Reason.NOT_A_VIDEO
    assert [(r.host, r.path) for r in tiktok.requests] == [("vm.tiktok.com", "/ZMoffsite/")]
    assert tiktok.refused == []
    assert tiktok.plain_requests == []


class BrokenShortLinks:
    """A store that fails every call, as a Redis gone away would."""

    async def get(self, short_url: str) -> str | None:
        raise ConnectionError("store down")

    async def put(self, short_url: str, post_url: str) -> None:
        raise ConnectionError("store down")

    async def close(self) -> None:
        return None


@pytest.fixture
async def short_links(tmp_path: Path) -> AsyncIterator[SqliteShortLinks]:
    store = await SqliteShortLinks.open(tmp_path / "shortlinks.sqlite3")
    try:
        yield store
    finally:
        await store.close()


@contextlib.asynccontextmanager
async def resolver_with(
    tiktok: TikTokStandIn, store: ShortLinks | None
) -> AsyncIterator[HttpxLinkResolver]:
    resolver = HttpxLinkResolver(
        proxies=ProxyPool([tiktok.proxy_url]),
        verify_tls=False,
        timeout_s=10,
        short_links=lambda: store,
    )
    try:
        yield resolver
    finally:
        await resolver.aclose()


async def resolve(resolver: HttpxLinkResolver, url: str) -> Link:
    link = parse_link(url)
    assert link is not None
    return await resolver.resolve(link)


@pytest.mark.parametrize(
    ("code", "host", "first", "again", "post_path", "kind"),
    [
        (
            "ZMshort1",
            "vm.tiktok.com",
            "https://vm.tiktok.com/ZMshort1/",
            "http://VM.TikTok.com/ZMshort1?_t=abc&_r=1",
            "/@dancer/video/7301234567890123456",
            LinkKind.VIDEO,
        ),
        (
            "ZPshort3",
            "www.tiktok.com",
            "https://www.tiktok.com/t/ZPshort3/",
            "tiktok.com/t/ZPshort3//",
            "/@dancer/photo/7301234567890123457",
            LinkKind.PHOTO,
        ),
    ],
)
async def test_a_short_link_is_looked_up_once_in_any_spelling(
    tiktok: TikTokStandIn,
    short_links: SqliteShortLinks,
    code: str,
    host: str,
    first: str,
    again: str,
    post_path: str,
    kind: LinkKind,
) -> None:
    tiktok.add_short_link(code, post_path, host=host)
    async with resolver_with(tiktok, short_links) as resolver:
        looked_up = await resolve(resolver, first)
        assert tiktok.count(host=host) == 1
        for url in (first, again):
            remembered = await resolve(resolver, url)
            assert (remembered.kind, remembered.url, remembered.clip_id) == (
                looked_up.kind,
                looked_up.url,
                looked_up.clip_id,
            )
            assert remembered.original == url
    assert looked_up.kind is kind
    assert looked_up.clip_id == post_path.rsplit("/", 1)[1]
    assert tiktok.count(host=host) == 1


async def test_a_failed_lookup_is_not_remembered(
    tiktok: TikTokStandIn, short_links: SqliteShortLinks
) -> None:
    async with resolver_with(tiktok, short_links) as resolver:
        with pytest.raises(FetchError) as caught:
            await resolve(resolver, "https://vm.tiktok.com/ZMlater/")
        assert caught.value.reason is Reason.REMOVED
        assert await short_links.get("https://vm.tiktok.com/ZMlater/") is None
        # The link starts working (a 404 may be temporary): it is looked up again.
        tiktok.add_short_link("ZMlater", "/@dancer/video/7301234567890123456")
        found = await resolve(resolver, "https://vm.tiktok.com/ZMlater/")
    assert found.clip_id == "7301234567890123456"
    assert tiktok.count(host="vm.tiktok.com") == 2


async def test_a_broken_store_still_resolves_over_the_network(
    tiktok: TikTokStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    tiktok.add_short_link("ZMshort1", "/@dancer/video/7301234567890123456")
    async with resolver_with(tiktok, BrokenShortLinks()) as resolver:
        for _ in range(2):
            found = await resolve(resolver, "https://vm.tiktok.com/ZMshort1/")
            assert found.clip_id == "7301234567890123456"
    assert tiktok.count(host="vm.tiktok.com") == 2
    assert "store down" in caplog.text


async def test_a_kept_url_that_is_no_post_is_looked_up_again(
    tiktok: TikTokStandIn, short_links: SqliteShortLinks
) -> None:
    tiktok.add_short_link("ZMshort1", "/@dancer/video/7301234567890123456")
    await short_links.put("https://vm.tiktok.com/ZMshort1/", "https://example.com/")
    async with resolver_with(tiktok, short_links) as resolver:
        found = await resolve(resolver, "https://vm.tiktok.com/ZMshort1/")
    assert found.clip_id == "7301234567890123456"
    assert tiktok.count(host="vm.tiktok.com") == 1
