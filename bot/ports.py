"""The core's ports: what it needs from the outside, as Protocols.

Each kind of state has two implementations in `bot.stores`: embedded (SQLite, files and
memory, one process) and distributed (Redis, any number of processes); the composition root
chooses the set, and one contract test suite holds both to the same promises.
"""

from __future__ import annotations

import enum
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.chat_settings import ChatSettings, SlideshowMode
from bot.links import Link
from bot.model import (
    Album,
    Audio,
    CachedMedia,
    CacheKey,
    Download,
    FailureKind,
    Manner,
    Media,
    Origin,
    Reason,
    StoredFile,
    VideoRequest,
)
from bot.progress import Progress, Reporter

# Tools: where bytes come from and how they are sent.


class LinkResolver(Protocol):
    """Turns a pasted link into one with a known clip id (short links need a lookup)."""

    async def resolve(self, link: Link) -> Link: ...

    async def recall(self, link: Link) -> Link | None:
        """`link` resolved when no lookup on the network is needed (a post link, a short link
        looked up before), else None."""


class ShortLinks(Protocol):
    """Where short links led, kept for good: a short code never changes its post, so each is
    looked up over the network once. Keyed by the short link's canonical `Link.url`; only
    lookups that found a post are kept (a 404 may be temporary)."""

    async def get(self, short_url: str) -> str | None:
        """The canonical post URL the short link led to, or None when it was never kept."""

    async def put(self, short_url: str, post_url: str) -> None: ...

    async def close(self) -> None: ...


class Downloader(Protocol):
    """Fetches a clip into a job directory."""

    async def fetch(
        self, link: Link, workdir: Path, budget_bytes: int, *, progress: Reporter | None = None
    ) -> Download:
        """Raise FetchError before any media request when the clip cannot be sent; the media's
        arrival is reported to `progress` (DOWNLOADING)."""


class SlideshowFetcher(Protocol):
    """Fetches the images and music of a photo post into a job directory."""

    async def fetch(self, link: Link, workdir: Path) -> Album: ...


class SecondPath(Protocol):
    """Another way to a clip (a cobalt instance), asked when the first path fails for a reason
    that is not the post's own."""

    async def fetch(self, link: Link, workdir: Path, budget_bytes: int) -> Download | Album: ...


class Pipeline(Protocol):
    """A link to what is sent: a playable video within the budget, or a photo post's album."""

    def variant(self, slideshow: SlideshowMode | None = None) -> str:
        """What, besides the budget, changes the bytes it sends (part of the cache key), for a
        chat that chose `slideshow` (None: the bot's default)."""

    async def prepare(
        self,
        link: Link,
        budget_bytes: int,
        workdir: Path,
        slideshow: SlideshowMode | None = None,
        *,
        progress: Reporter | None = None,
    ) -> Media | Album:
        """Raise FetchError with the reason when the clip cannot be sent; the download and
        any re-encode report how far they have come to `progress`."""

    async def sound(
        self,
        link: Link,
        budget_bytes: int,
        workdir: Path,
        *,
        progress: Reporter | None = None,
    ) -> Audio:
        """The clip's sound alone (a photo post's music); FetchError with the reason when
        there is none to send."""


class Replier(Protocol):
    """Answers on one platform; the adapter chooses how a video or a reason looks there, in the
    request's `manner` (its chat's caption, failure and original-message choices, its language)."""

    async def working(self, origin: Origin) -> None:
        """Show that a job runs (called again every few seconds while it does)."""

    async def deliver(self, origin: Origin, media: Media, manner: Manner) -> str | None:
        """Send the video; return the platform's file id to send it again without an upload
        (Telegram's file_id), or None. Raise FetchError(Reason.TOO_LARGE) when refused for size."""

    async def resend(self, origin: Origin, cached: CachedMedia, manner: Manner) -> None:
        """Send a video by its PlatformFile handle; StaleHandle when it is refused."""

    async def deliver_audio(self, origin: Origin, audio: Audio, manner: Manner) -> str | None:
        """Send a clip's sound as an audio file, titled from its music; return the platform's
        file id to send it again without an upload, or None (as `deliver`)."""

    async def resend_audio(self, origin: Origin, cached: CachedMedia, manner: Manner) -> None:
        """Send a sound by its PlatformFile handle; StaleHandle when it is refused."""

    async def deliver_album(self, origin: Origin, album: Album, manner: Manner) -> None:
        """Send a photo post's images (in groups the platform allows) and then its music."""

    async def fail(self, origin: Origin, reason: Reason, manner: Manner) -> None:
        """Tell the requester why a link got no video."""

    async def status(self, origin: Origin, progress: Progress, manner: Manner) -> None:
        """Show how far a long job has come (a status message, shown the first time and
        changed afterwards); called at most every few seconds. Not an answer: a status that
        cannot be shown now is skipped, never waited for."""

    async def clear_status(self, origin: Origin, *, earlier: bool = False) -> None:
        """Remove the status shown for `origin`, if any: called once after every request
        handled, whatever became of its answers (a replier may keep state per request until
        then); never raises. `earlier`: before a request is run again (its first run died), a
        status that run may have left is removed where the platform lets it be found."""


# State: what the service and the intake remember.


class ClipCache(Protocol):
    """What was delivered, by clip: a repeated link costs one lookup and one send."""

    async def get(self, key: CacheKey) -> CachedMedia | None:
        """The stored media, or None when missing or older than the cache's maximum age."""

    async def put(self, key: CacheKey, media: CachedMedia) -> None:
        """Store the media for the key, replacing what was there."""

    async def forget(self, key: CacheKey) -> None:
        """Drop the entry, e.g. when the platform refused its stored file id."""

    async def close(self) -> None: ...


class MediaStore(Protocol):
    """Files kept for platforms that take uploads only, capped in size (least recently used out)."""

    async def keep(self, key: CacheKey, source: Path) -> StoredFile | None:
        """Keep a copy of `source`; None when it is larger than the whole store may hold.
        `source` must not be rewritten in place afterwards (the copy may be a hard link)."""

    async def open(self, stored: StoredFile, workdir: Path) -> Path | None:
        """A local path to upload the file from (inside `workdir` or the store's own), or None
        when it is gone."""


class SingleFlight(Protocol):
    """One job at a time per clip, across every process that shares the implementation."""

    def hold(self, key: str) -> AbstractAsyncContextManager[None]:
        """Wait until no one else holds `key`, then hold it until the block ends. A holder
        that dies lets go by itself after a lease; a living one keeps its hold."""


class Verdict(enum.Enum):
    ALLOW = "allow"
    REFUSE_AND_SAY = "refuse_and_say"
    REFUSE_QUIETLY = "refuse_quietly"


class RateLimits(Protocol):
    """A user's links and a chat's links per minute; a refused sender hears it once."""

    async def check(self, user: str, chat: str, links: int) -> Verdict: ...


class SendLimits(Protocol):
    """A platform's flood limits for the whole bot, however many processes send for it."""

    async def admit(self, group: str | None) -> None:
        """Wait until one more message (to `group`, when it goes to a group chat) keeps within
        the limits, and count it."""


class JobQueue(Protocol):
    """Holds accepted requests until a worker runs them."""

    async def submit(self, request: VideoRequest) -> bool:
        """Queue the request durably; False when it cannot be queued now (full, or down)."""


@dataclass(frozen=True, slots=True)
class Unanswered:
    """A request found in the journal at start; `attempts` counts the starts that took it up."""

    request: VideoRequest
    attempts: int


class Journal(Protocol):
    """Keeps each accepted request until it has been answered, so a restart or another worker
    can run it again, and never answers a link twice."""

    async def accept(self, request: VideoRequest) -> bool:
        """Write the request down; False when its origin was accepted before (a redelivery)."""

    async def link_answered(self, origin: Origin) -> None:
        """One more link of the request from `origin` was answered (links go in order)."""

    async def answered(self, origin: Origin) -> None:
        """The request from `origin` got its whole answer: never run it again."""

    async def remaining(self, request: VideoRequest) -> VideoRequest | None:
        """The request less the links already answered; None when nothing is left to answer.

        An answer the platform took but whose confirmation a dying run never read is not
        marked: it is sent again (at least once, and exactly once unless a run dies in that
        moment)."""

    async def attempt(self, origin: Origin) -> int:
        """Count one more run of the request from `origin`; how many runs it has had (0 for a
        request never written down)."""

    async def take_unanswered(self) -> list[Unanswered]:
        """Every request not answered, oldest first, each counted as one more attempt."""

    async def close(self) -> None: ...


# Breakage: what the operator is told, and what users are spared meanwhile.


@dataclass(frozen=True, slots=True)
class HealthChange:
    """A site's fetches went bad (`broken`) or got well again; reported to exactly one caller
    of `FetchHealth.record`, whichever process it runs in, so the operator hears it once.

    `kind` is the most frequent kind of failure among the recent ones (the one that started the
    incident, when it ends); `failures` of the last `attempts` fetches failed."""

    site: str
    broken: bool
    kind: FailureKind
    failures: int
    attempts: int


@dataclass(frozen=True, slots=True)
class HealthRule:
    """When a site counts as broken: `failures` of the last `attempts` fetches within `window_s`
    failed; and when it is well again: the last `recover_after` fetches worked."""

    failures: int = 5
    attempts: int = 10
    window_s: float = 600.0
    recover_after: int = 3


class FetchHealth(Protocol):
    """Counts each site's recent fetches, failed by kind or not, and notices incidents: enough
    failures among the last attempts within a window start one, a run of successes ends it."""

    async def record(self, site: str, kind: FailureKind | None) -> HealthChange | None:
        """Count one fetch (`kind` None: it worked); the change it made, if it made one."""

    async def incident(self, site: str) -> FailureKind | None:
        """The kind of the site's incident going on now, or None."""


class FailedLinks(Protocol):
    """Links that just failed, answered from memory for a while instead of fetched again."""

    async def remember(self, clip: str, reason: Reason, ttl_s: float) -> None: ...

    async def recall(self, clip: str) -> Reason | None:
        """The reason a clip failed within its time to live, or None."""


class OperatorChannel(Protocol):
    """A place where the operator reads the bot's alerts (a Telegram chat, a Discord channel)."""

    async def tell_operator(self, text: str) -> None: ...


class ChatSettingsStore(Protocol):
    """Each chat's own choices (bot.chat_settings), read on every request: implementations keep
    a memory copy and drop it when the chat changes, in whichever process."""

    async def get(self, chat: str) -> ChatSettings:
        """The chat's settings; all defaults for a chat that never chose."""

    async def put(self, chat: str, settings: ChatSettings) -> None: ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class TrendingClip:
    """A clip reshared in a chat: `times` reshares by `people` different people, and its
    canonical link to show it."""

    clip_id: str
    link: str
    times: int
    people: int


class Trending(Protocol):
    """Each chat's recent reshares, by clip, for `/top`: clip ids, links, times and pseudonymous
    people only (never message text, never a raw user id). Implementations forget reshares older
    than their window by themselves and keep a bounded number per chat."""

    async def count(self, chat: str, clip_id: str, link: str, user: str, at: float) -> None:
        """One reshare of a clip (by its canonical id and link) in `chat` by `user` at unix time
        `at`."""

    async def top(self, chat: str, since: float, limit: int) -> list[TrendingClip]:
        """The chat's clips reshared since `since`: most times first, then more people, then the
        most recently reshared."""

    async def forget(self, chat: str) -> None:
        """Drop everything kept for the chat (its trending setting was turned off)."""

    async def close(self) -> None: ...
