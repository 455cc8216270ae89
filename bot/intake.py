"""What the core does with an incoming message: which links to take and what to say at once."""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.chat_settings import AutoDetect
from bot.links import Link, LinkKind
from bot.logs import job_key_shown
from bot.model import Origin, Reason, VideoRequest
from bot.ports import ChatSettingsStore, JobQueue, Journal, RateLimits, Verdict
from bot.sites import SiteCatalog

log = logging.getLogger(__name__)

MAX_LINKS_PER_MESSAGE = 3

HELP_TEXT = (
    "Send me a TikTok link and I reply with the video itself, ready to play and to share.\n"
    "I take links like https://www.tiktok.com/@user/video/123…, https://vm.tiktok.com/…, "
    "https://vt.tiktok.com/… and https://www.tiktok.com/t/…, up to 3 per message.\n"
    "In groups I answer only messages that hold such a link, or /download <link>; a group's "
    "admins can have me answer only /download with /settings."
)
BUSY_TEXT = "I'm busy right now, please try again in a minute."
UNAVAILABLE_TEXT = "I can't take links right now, please try again in a minute."
SLOW_DOWN_TEXT = "That's a lot of links at once: please wait a minute before sending more."
RESTARTING_TEXT = Reason.RESTARTING.message


class Answer(enum.Enum):
    """What the adapter should say right away (the video itself comes later)."""

    QUEUED = "queued"
    NO_LINK = "no_link"
    IGNORED = "ignored"
    BUSY = "busy"
    SLOW_DOWN = "slow_down"
    RESTARTING = "restarting"
    # The shared state (Redis) could not be reached: nothing was queued, the sender may retry.
    UNAVAILABLE = "unavailable"


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sent a message and where, as the platform numbers them (for rate limits)."""

    user: int | str
    chat: int | str


class Intake:
    """Picks the links of a message and queues them as one request."""

    def __init__(
        self,
        queue: JobQueue,
        sites: SiteCatalog,
        limits: RateLimits,
        journal: Journal | None = None,
        job_key: Callable[[Origin], str | None] | None = None,
        chat_settings: Callable[[], ChatSettingsStore | None] | None = None,
    ) -> None:
        """`job_key` names a request's job in the log (its idempotency key); `chat_settings`
        gives the chats' own settings once they are open (the engine opens them at start)."""
        self._queue = queue
        self._job_key_of = job_key
        self._sites = sites
        self._limits = limits
        self._journal = journal
        self._chat_settings = chat_settings or (lambda: None)
        self._closed = False
        self.no_link_text = (
            f"I send the video behind links from {', '.join(sites.names)}: paste a link like "
            "https://www.tiktok.com/@user/video/123… or https://vm.tiktok.com/…"
            if "TikTok" in sites.names
            else f"I send the video behind links from {', '.join(sites.names)}."
        )

    async def take(
        self,
        texts: Iterable[str],
        origin: Origin,
        budget_bytes: int,
        *,
        private: bool,
        sender: Sender,
        explicit: bool = False,
    ) -> Answer:
        """`private` is true where every message is meant for the bot (a DM, a command);
        `explicit` where the sender asked for the video (a /download command), which a chat
        that answers links only on request still answers."""
        request = await self.request(
            texts, origin, budget_bytes, private=private, sender=sender, explicit=explicit
        )
        return await self.submit(request) if isinstance(request, VideoRequest) else request

    async def request(
        self,
        texts: Iterable[str],
        origin: Origin,
        budget_bytes: int,
        *,
        private: bool,
        sender: Sender,
        explicit: bool = False,
    ) -> VideoRequest | Answer:
        """The request for a message, or what to say when there is nothing to fetch.

        Split from `submit` for platforms that must acknowledge before work may start.
        """
        links = select_links(texts, self._sites, private=private)
        if not links:
            return Answer.NO_LINK if private else Answer.IGNORED
        if self._closed:
            return Answer.RESTARTING
        if not (private or explicit) and await self._on_request_only(origin, sender):
            return Answer.IGNORED
        try:
            verdict = await self._limits.check(
                f"{origin.platform}:user:{sender.user}",
                f"{origin.platform}:chat:{sender.chat}",
                len(links),
            )
        except Exception as err:
            log.warning("rate limits unreachable: %r", err)
            return Answer.UNAVAILABLE
        if verdict is Verdict.REFUSE_AND_SAY:
            return Answer.SLOW_DOWN
        if verdict is Verdict.REFUSE_QUIETLY:
            return Answer.IGNORED
        return VideoRequest(links=tuple(links), origin=origin, budget_bytes=budget_bytes)

    async def _on_request_only(self, origin: Origin, sender: Sender) -> bool:
        """Whether the chat chose to have links answered only when asked (/download)."""
        store = self._chat_settings()
        if store is None:
            return False
        try:
            chosen = await store.get(chat_key(origin.platform, sender.chat))
        except Exception as err:
            log.warning("chat settings unreachable (%r): answering as by default", err)
            return False
        return chosen.auto_detect is AutoDetect.ON_REQUEST

    def say(self, answer: Answer) -> str | None:
        """What to tell the sender at once; None when the answer is the video, or silence."""
        return {
            Answer.NO_LINK: self.no_link_text,
            Answer.BUSY: BUSY_TEXT,
            Answer.SLOW_DOWN: SLOW_DOWN_TEXT,
            Answer.RESTARTING: RESTARTING_TEXT,
            Answer.UNAVAILABLE: UNAVAILABLE_TEXT,
        }.get(answer)

    async def submit(self, request: VideoRequest) -> Answer:
        """Queue the request, written down first; a request seen before is not queued again."""
        if self._closed:
            return Answer.RESTARTING
        try:
            if (
                self._journal is not None
                and not await self._journal.accept(request)
                and await self._journal.remaining(request) is None
            ):
                return Answer.IGNORED  # seen and answered before
            # Seen but not answered yet: queued again, and the worker answers it once.
            if await self._queue.submit(request):
                log.info("job %s queued", self._job_key(request))
                return Answer.QUEUED
            if self._journal is not None:
                await self._journal.answered(request.origin)  # "busy" is its answer
        except Exception as err:
            log.warning("could not queue a request: %r", err)
            return Answer.UNAVAILABLE
        return Answer.BUSY

    def _job_key(self, request: VideoRequest) -> str:
        key = self._job_key_of(request.origin) if self._job_key_of is not None else None
        return job_key_shown(key) if key is not None else "-"

    def close(self) -> None:
        """Take no more work: the bot is shutting down, new requests are told to come back."""
        self._closed = True


def chat_key(platform: str, chat: int | str) -> str:
    """The key of a chat's settings (the same chat the rate limits count)."""
    return f"{platform}:chat:{chat}"


def select_links(texts: Iterable[str], sites: SiteCatalog, *, private: bool) -> list[Link]:
    """Links in order, each clip once, at most three; in groups only those that lead to a post."""
    chosen: list[Link] = []
    seen: set[str] = set()
    for text in texts:
        for link in sites.find(text):
            key = link.clip_id or link.url
            if key in seen or (not private and link.kind is LinkKind.NOT_VIDEO):
                continue
            seen.add(key)
            chosen.append(link)
    return chosen[:MAX_LINKS_PER_MESSAGE]
