"""Short links (vm.tiktok.com/CODE) become post links through one redirect lookup, made once
per short link when a `ShortLinks` store keeps where it led."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

import httpx

from bot.links import Link, LinkKind, parse_link
from bot.model import FetchError, Reason
from bot.ports import ShortLinks
from bot.proxies import ProxyPool

log = logging.getLogger(__name__)

# TikTok answers a preview crawler with a plain redirect instead of a script page.
_CRAWLER_AGENT = "facebookexternalhit/1.1"
_MAX_HOPS = 5


class HttpxLinkResolver:
    """Follows redirects by hand so that every hop stays on a TikTok host; through the first
    proxy of `proxies.order()` (one client per proxy, made when first needed).

    `short_links` gives the store of earlier lookups (None while there is none, e.g. before the
    engine opened it); a store that fails is passed by, never fails a lookup."""

    def __init__(
        self,
        *,
        proxies: ProxyPool,
        verify_tls: bool,
        timeout_s: float,
        short_links: Callable[[], ShortLinks | None] = lambda: None,
    ) -> None:
        self._proxies = proxies
        self._short_links = short_links
        self._verify_tls = verify_tls
        self._timeout_s = timeout_s
        self._clients: dict[str | None, httpx.AsyncClient] = {}

    def _client(self) -> httpx.AsyncClient:
        order = self._proxies.order()
        proxy = order[0] if order else None
        client = self._clients.get(proxy)
        if client is None:
            client = self._clients[proxy] = httpx.AsyncClient(
                proxy=proxy,
                verify=self._verify_tls,
                timeout=httpx.Timeout(self._timeout_s),
                headers={"User-Agent": _CRAWLER_AGENT},
                follow_redirects=False,
            )
        return client

    async def aclose(self) -> None:
        clients = list(self._clients.values())
        self._clients.clear()
        for client in clients:
            await client.aclose()

    async def resolve(self, link: Link) -> Link:
        known = await self.recall(link)
        if known is not None:
            return known
        found = await self._look_up(link)
        store = self._short_links()
        if store is not None:
            try:
                await store.put(link.url, found.url)
            except Exception as err:
                log.warning("short link %s not kept: %r", link.url, err)
        return found

    async def recall(self, link: Link) -> Link | None:
        if link.kind is not LinkKind.SHORT:
            return link
        store = self._short_links()
        return None if store is None else await _recall(store, link)

    async def _look_up(self, link: Link) -> Link:
        """Follow the short link's redirects to the post (FetchError when there is none)."""
        url = link.url
        client = self._client()
        for _ in range(_MAX_HOPS):
            try:
                response = await client.head(url)
                if response.status_code == 405:
                    response = await client.get(url)
            except httpx.TimeoutException:
                raise FetchError(Reason.TIMED_OUT, "short link lookup") from None
            except httpx.HTTPError as err:
                raise FetchError(Reason.FAILED, f"short link lookup: {err!r}") from None
            if response.status_code == 404:
                raise FetchError(Reason.REMOVED, "short link unknown")
            if not response.is_redirect:
                raise FetchError(Reason.NOT_A_VIDEO, f"short link answered {response.status_code}")
            target = str(response.url.join(response.headers["location"]))
            found = parse_link(target)
            if found is None:
                raise FetchError(Reason.NOT_A_VIDEO, "short link leaves TikTok")
            if httpx.URL(target).path.startswith("/login"):
                raise FetchError(Reason.LOGIN_REQUIRED, "short link leads to login")
            if found.kind is LinkKind.SHORT:
                url = found.url
                continue
            if found.kind is LinkKind.NOT_VIDEO:
                raise FetchError(Reason.NOT_A_VIDEO, "short link leads to no post")
            return dataclasses.replace(found, original=link.original)
        raise FetchError(Reason.NOT_A_VIDEO, "too many redirects")


async def _recall(store: ShortLinks, link: Link) -> Link | None:
    """The post a short link led to before, or None (never kept, or the store failed)."""
    try:
        post_url = await store.get(link.url)
    except Exception as err:
        log.warning("short links unreadable, looking %s up: %r", link.url, err)
        return None
    found = parse_link(post_url) if post_url is not None else None
    if found is None or found.kind not in (LinkKind.VIDEO, LinkKind.PHOTO):
        return None
    return dataclasses.replace(found, original=link.original)
