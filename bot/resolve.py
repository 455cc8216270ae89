"""Short links (vm.tiktok.com/CODE) become post links through one redirect lookup."""

from __future__ import annotations

import httpx

from bot.links import Link, LinkKind, parse_link
from bot.model import FetchError, Reason

# TikTok answers a preview crawler with a plain redirect instead of a script page.
_CRAWLER_AGENT = "facebookexternalhit/1.1"
_MAX_HOPS = 5


class HttpxLinkResolver:
    """Follows redirects by hand so that every hop stays on a TikTok host."""

    def __init__(self, *, proxy: str | None, verify_tls: bool, timeout_s: float) -> None:
        self._client = httpx.AsyncClient(
            proxy=proxy or None,
            verify=verify_tls,
            timeout=httpx.Timeout(timeout_s),
            headers={"User-Agent": _CRAWLER_AGENT},
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def resolve(self, link: Link) -> Link:
        if link.kind is not LinkKind.SHORT:
            return link
        url = link.url
        for _ in range(_MAX_HOPS):
            try:
                response = await self._client.head(url)
                if response.status_code == 405:
                    response = await self._client.get(url)
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
            return Link(
                site=found.site,
                kind=found.kind,
                url=found.url,
                clip_id=found.clip_id,
                original=link.original,
            )
        raise FetchError(Reason.NOT_A_VIDEO, "too many redirects")
