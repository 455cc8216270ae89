"""Inline mode: a person types the bot's name and a link in any chat, even one the bot is not in.

Telegram asks for results as the person types (a query per keystroke), and a chosen result is
sent into the chat by the person's own client. What this module decides, for every platform
with such a mode:
- a link that needs a lookup on the network (a short link never looked up) is worked on only
  for a person's last query within a short pause (debounce), within their rate limit; a post
  link, or a short link looked up before, costs one cache lookup and is answered at once;
- a clip fetched before (any link form, any chat) is offered at once by its platform file id;
- a new clip is offered as a placeholder; once chosen, it is fetched like any other request, to
  an origin that names the sent inline message, and the adapter edits that message into the
  video (bot.service answers it, bot.intake queues it);
- without a place to upload new clips (Telegram's storage chat) only clips fetched before are
  offered.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

from bot.i18n import N_
from bot.intake import Answer, Intake, select_links
from bot.links import Link, LinkKind
from bot.model import CachedMedia, FetchError, Origin, PlatformFile, Sender
from bot.ports import ClipCache, LinkResolver, RateLimits, Verdict
from bot.service import clip_key
from bot.sites import SiteCatalog

log = logging.getLogger(__name__)

# Seconds a short link in a query waits for a newer query of the same person before it is
# looked up: typing a link sends a query per keystroke, and only the last one matters.
DEBOUNCE_S = 0.4

NO_LINK_HINT = N_("Paste a TikTok link to send its video here")
SLOW_DOWN_HINT = N_("That's a lot of links at once: please wait a minute")
NOT_ENABLED_HINT = N_("New clips can't be sent inline here yet: send the link to the bot directly")
FETCHING_TEXT = N_("⏳ Fetching the video…")


@dataclass(frozen=True, slots=True)
class InlineCached:
    """Offer the clip at once by the handle it was sent with before."""

    link: Link
    media: CachedMedia
    file_id: str


@dataclass(frozen=True, slots=True)
class InlinePlaceholder:
    """Offer a placeholder for a new clip; it becomes the video once chosen and fetched."""

    link: Link


class InlineRefusal(enum.Enum):
    """No result to offer, and why (the adapter shows a hint, or nothing)."""

    NO_LINK = "no_link"
    SLOW_DOWN = "slow_down"
    NOT_ENABLED = "not_enabled"
    # A newer query from the same person came within the pause: this one is dropped.
    SUPERSEDED = "superseded"
    UNAVAILABLE = "unavailable"

    @property
    def hint(self) -> str | None:
        return {
            InlineRefusal.NO_LINK: NO_LINK_HINT,
            InlineRefusal.SLOW_DOWN: SLOW_DOWN_HINT,
            InlineRefusal.NOT_ENABLED: NOT_ENABLED_HINT,
            InlineRefusal.UNAVAILABLE: NOT_ENABLED_HINT,
        }.get(self)


InlineAnswer = InlineCached | InlinePlaceholder | InlineRefusal


class InlineQueries:
    """Answers inline queries from the clip cache, or with a placeholder to fetch once chosen."""

    def __init__(
        self,
        *,
        sites: SiteCatalog,
        limits: RateLimits,
        resolver: LinkResolver,
        cache: Callable[[], ClipCache | None],
        variant: Callable[[], str],
        intake: Intake,
        debounce_s: float = DEBOUNCE_S,
    ) -> None:
        """`cache` and `variant` are read per query: the cache opens when the engine starts."""
        self._sites = sites
        self._limits = limits
        self._resolver = resolver
        self._cache = cache
        self._variant = variant
        self._intake = intake
        self._debounce_s = debounce_s
        self._latest: dict[str, int] = {}
        self._asked = 0

    async def answer(
        self, platform: str, user: int | str, text: str, budget_bytes: int, *, new_clips: bool
    ) -> InlineAnswer:
        """What to offer for `text`, typed by `user`; `new_clips` says whether a placeholder
        may be offered (the platform has somewhere to upload new clips).

        A post link, or a short link looked up before, is answered at once (one cache lookup).
        Any other short link needs a lookup on the network: it waits for the person to stop
        typing, and counts against their rate limit.
        """
        link = self._link_in(text)
        if link is None:
            return InlineRefusal.NO_LINK
        if link.clip_id is None:
            known = await self._recall(link)
            if known is not None:
                # A person's earlier query still waiting for a pause is out of date now.
                self._latest.pop(f"{platform}:{user}", None)
                link = known
            else:
                looked_up = await self._look_up(platform, user, link)
                if isinstance(looked_up, InlineRefusal):
                    return looked_up
                link = looked_up
        key = clip_key(link, platform, budget_bytes, self._variant())
        cache = self._cache()
        if key is not None and cache is not None:
            try:
                hit = await cache.get(key)
            except Exception as err:
                log.warning("cache lookup failed: %r", err)
                hit = None
            if hit is not None and isinstance(hit.handle, PlatformFile):
                return InlineCached(link, hit, hit.handle.file_id)
        return InlinePlaceholder(link) if new_clips else InlineRefusal.NOT_ENABLED

    async def _recall(self, link: Link) -> Link | None:
        try:
            return await self._resolver.recall(link)
        except Exception as err:
            log.warning("short links unreadable: %r", err)
            return None

    async def _look_up(self, platform: str, user: int | str, link: Link) -> Link | InlineRefusal:
        """The short link resolved, once the person's typing paused and within their limit."""
        person = f"{platform}:{user}"
        self._asked += 1
        mine = self._latest[person] = self._asked
        try:
            await asyncio.sleep(self._debounce_s)
            if self._latest.get(person) != mine:
                return InlineRefusal.SUPERSEDED
        finally:
            if self._latest.get(person) == mine:
                del self._latest[person]
        try:
            verdict = await self._limits.check(
                f"{platform}:inline-user:{user}", f"{platform}:inline:{user}", 1
            )
        except Exception as err:
            log.warning("rate limits unreachable: %r", err)
            return InlineRefusal.UNAVAILABLE
        if verdict is not Verdict.ALLOW:
            return InlineRefusal.SLOW_DOWN
        try:
            return await self._resolver.resolve(link)
        except FetchError as err:
            # Offered as it is: fetched once chosen, its reason told then.
            log.info("inline link %s not resolved: %s", link.url, err)
            return link

    async def chosen(self, text: str, origin: Origin, budget_bytes: int, sender: Sender) -> Answer:
        """The person sent the placeholder for `text`: fetch its clip for the sent message (a
        request like any other: rate-limited, written down, queued)."""
        link = self._link_in(text)
        if link is None:
            return Answer.IGNORED
        return await self._intake.take(
            [link.original], origin, budget_bytes, private=True, sender=sender
        )

    def _link_in(self, text: str) -> Link | None:
        """The first link of the query that may lead to a clip."""
        links = [
            link
            for link in select_links([text], self._sites, private=True)
            if link.kind is not LinkKind.NOT_VIDEO
        ]
        return links[0] if links else None
