"""Short links: every hop must stay on a TikTok host; nothing is sent anywhere else."""

from __future__ import annotations

import pytest

from bot.links import parse_link
from bot.model import FetchError, Reason
from bot.proxies import ProxyPool
from bot.resolve import HttpxLinkResolver
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
