"""What the core does with an incoming message: which links to take and what to say at once."""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections.abc import Callable, Iterable, Sequence

from bot.chat_settings import AutoDetect, ChatSettings, chat_key, server_key
from bot.i18n import N_, Catalogues
from bot.links import Link, LinkKind
from bot.logs import job_key_shown
from bot.model import Manner, Origin, Reason, Sender, VideoRequest, Want
from bot.ports import ChatSettingsStore, JobQueue, Journal, RateLimits, Verdict
from bot.sites import SiteCatalog

log = logging.getLogger(__name__)

MAX_LINKS_PER_MESSAGE = 3

HELP_TEXT = N_(
    "Send me a TikTok link and I reply with the video itself, ready to play and to share.\n"
    "I take links like https://www.tiktok.com/@user/video/123…, https://vm.tiktok.com/…, "
    "https://vt.tiktok.com/… and https://www.tiktok.com/t/…, up to 3 per message.\n"
    "In groups I answer only messages that hold such a link, or /download <link>.\n"
    "/audio <link> sends a clip's sound (or tap 🎵 Sound under a video), /top shows the clips "
    "most reshared here this week, and /settings lets a group's admins choose how I behave "
    "(captions, links only on request, errors, language…)."
)
BUSY_TEXT = N_("I'm busy right now, please try again in a minute.")
UNAVAILABLE_TEXT = N_("I can't take links right now, please try again in a minute.")
SLOW_DOWN_TEXT = N_("That's a lot of links at once: please wait a minute before sending more.")
RESTARTING_TEXT = Reason.RESTARTING.message
# A private message without a supported link; {sites}: the names of the sites taken.
NO_LINK_TIKTOK_TEXT = N_(
    "I send the video behind links from {sites}: paste a link like "
    "https://www.tiktok.com/@user/video/123… or https://vm.tiktok.com/…"
)
NO_LINK_TEXT = N_("I send the video behind links from {sites}.")


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
        texts: Catalogues | None = None,
    ) -> None:
        """`job_key` names a request's job in the log (its idempotency key); `chat_settings`
        gives the chats' own settings once they are open (the engine opens them at start);
        `texts` translates what is said at once (English without)."""
        self._texts = texts
        self._queue = queue
        self._job_key_of = job_key
        self._sites = sites
        self._limits = limits
        self._journal = journal
        self._chat_settings = chat_settings or (lambda: None)
        self._closed = False
        # What a private message without a link is told: a template and its {sites}.
        self.no_link_template = NO_LINK_TIKTOK_TEXT if "TikTok" in sites.names else NO_LINK_TEXT
        self.no_link_sites = ", ".join(sites.names)
        self.no_link_text = self.no_link_template.format(sites=self.no_link_sites)

    async def take(
        self,
        texts: Iterable[str],
        origin: Origin,
        budget_bytes: int,
        *,
        private: bool,
        sender: Sender,
        explicit: bool = False,
        want: Want = Want.VIDEO,
    ) -> Answer:
        """`private` is true where every message is meant for the bot (a DM, a command);
        `explicit` where the sender asked for the video (a /download command), which a chat
        that answers links only on request still answers; `want` what they asked for."""
        request = await self.request(
            texts,
            origin,
            budget_bytes,
            private=private,
            sender=sender,
            explicit=explicit,
            want=want,
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
        want: Want = Want.VIDEO,
    ) -> VideoRequest | Answer:
        """The request for a message, or what to say when there is nothing to fetch.

        Split from `submit` for platforms that must acknowledge before work may start.
        """
        texts = list(texts)
        links = select_links(texts, self._sites, private=private)
        if not links:
            return Answer.NO_LINK if private else Answer.IGNORED
        if self._closed:
            return Answer.RESTARTING
        chosen = await self.settings_of(origin.platform, sender)
        if not (private or explicit) and chosen.auto_detect is AutoDetect.ON_REQUEST:
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
        return VideoRequest(
            links=tuple(links),
            origin=origin,
            budget_bytes=budget_bytes,
            manner=manner_of(chosen, sender, link_only=holds_only_links(texts, links)),
            sender=sender,
            want=want,
        )

    async def settings_of(self, platform: str, sender: Sender) -> ChatSettings:
        """The chat's settings: its server's, with what the chat itself chose over them;
        the defaults when none are open or they cannot be read."""
        store = self._chat_settings()
        if store is None:
            return ChatSettings()
        keys = [chat_key(platform, sender.chat)]
        if sender.server is not None:
            keys.insert(0, server_key(platform, sender.server))
        try:
            layers = [await store.get(key) for key in keys]
        except Exception as err:
            log.warning("chat settings unreachable (%r): answering as by default", err)
            return ChatSettings()
        return merged(layers)

    def say(self, answer: Answer, language: str | None = None) -> str | None:
        """What to tell the sender at once, in `language`; None when the answer is the video,
        or silence."""
        msgid = {
            Answer.NO_LINK: self.no_link_template,
            Answer.BUSY: BUSY_TEXT,
            Answer.SLOW_DOWN: SLOW_DOWN_TEXT,
            Answer.RESTARTING: RESTARTING_TEXT,
            Answer.UNAVAILABLE: UNAVAILABLE_TEXT,
        }.get(answer)
        if msgid is None:
            return None
        if self._texts is None:
            return msgid.format(sites=self.no_link_sites) if answer is Answer.NO_LINK else msgid
        return self._texts.text(language, msgid, sites=self.no_link_sites)

    async def say_to(self, answer: Answer, platform: str, sender: Sender) -> str | None:
        """`say` in the sender's language (`language`), read only when there is something to
        say."""
        if self.say(answer) is None:
            return None
        return self.say(answer, await self.language(platform, sender))

    async def language(self, platform: str, sender: Sender) -> str | None:
        """The language to speak to a sender in: the chat's choice, else the person's own."""
        return (await self.settings_of(platform, sender)).language or sender.language

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
                if log.isEnabledFor(logging.INFO):  # the key is a hash: not made for nothing
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


def merged(layers: Sequence[ChatSettings]) -> ChatSettings:
    """The first layer with every field a later one sets put over it."""
    result = layers[0] if layers else ChatSettings()
    for layer in layers[1:]:
        chosen = {
            field.name: getattr(layer, field.name)
            for field in dataclasses.fields(layer)
            if getattr(layer, field.name) is not None
        }
        result = dataclasses.replace(result, **chosen)
    return result


def manner_of(settings: ChatSettings, sender: Sender, *, link_only: bool) -> Manner:
    """How a request is answered: as the chat chose, in the chat's language or else the
    sender's own."""
    return Manner(
        caption=settings.caption,
        original=settings.original,
        failures=settings.failures,
        slideshow=settings.slideshow,
        language=settings.language or sender.language,
        link_only=link_only,
        trending=settings.trending is not False,
    )


def holds_only_links(texts: Sequence[str], links: Sequence[Link]) -> bool:
    """Whether the message's own text is its links and nothing else (links hidden behind
    words count as words)."""
    if len(texts) != 1:
        return False
    rest = texts[0]
    for link in links:
        rest = rest.replace(link.original, " ")
    return not rest.strip()


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
