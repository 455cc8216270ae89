"""Values that travel through the core: requests, downloaded media, and failures."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from bot.chat_settings import CaptionStyle, FailureStyle, OriginalMessage, SlideshowMode
from bot.i18n import N_
from bot.links import Link


class Origin(Protocol):
    """Where to answer. Only the adapter that made it looks inside; the core reads `platform`."""

    @property
    def platform(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Sender:
    """Who sent a message and where, as the platform numbers them (rate limits, settings and the
    chat's trending clips); `server` is the server a chat belongs to (Discord's guild), and
    `language` the person's own language code as the platform gives it."""

    user: int | str
    chat: int | str
    server: int | str | None = None
    language: str | None = None


@dataclass(frozen=True, slots=True)
class Manner:
    """How one request is answered, from its chat's settings and its sender; None: as the
    platform does by default.

    `link_only`: the message held nothing but its links (so deleting it loses nothing);
    `trending`: the chat keeps counts for /top.
    """

    caption: CaptionStyle | None = None
    original: OriginalMessage | None = None
    failures: FailureStyle | None = None
    slideshow: SlideshowMode | None = None
    language: str | None = None
    link_only: bool = False
    trending: bool = True


class Want(enum.Enum):
    """What a request asks for: the clip itself, or its sound alone (the "🎵 Sound" button,
    /audio)."""

    VIDEO = "video"
    AUDIO = "audio"


@dataclass(frozen=True, slots=True)
class VideoRequest:
    """The links of one message (or command), answered in order, to one place, in its chat's
    manner; `sender` is None for requests of no chat (the shell)."""

    links: tuple[Link, ...]
    origin: Origin
    budget_bytes: int
    manner: Manner = Manner()
    sender: Sender | None = None
    want: Want = Want.VIDEO


@dataclass(frozen=True, slots=True)
class ClipInfo:
    """What the post page says about a clip, used for the caption; `music_title` and
    `music_author` name its sound (the "🎵 Sound" answer's title and performer)."""

    clip_id: str
    author: str
    nickname: str
    description: str
    webpage_url: str
    music_title: str = ""
    music_author: str = ""


@dataclass(frozen=True, slots=True)
class Download:
    """A file a downloader wrote into the job directory, with the page's facts about it."""

    path: Path
    info: ClipInfo


@dataclass(frozen=True, slots=True)
class Media:
    """A playable H.264/AAC mp4 on disk with the facts the platform is told."""

    path: Path
    width: int
    height: int
    duration: float
    size: int
    thumbnail: Path | None
    info: ClipInfo


@dataclass(frozen=True, slots=True)
class Album:
    """A photo post (slideshow): its images in order and its music, sent as they are."""

    images: tuple[Path, ...]
    audio: Path | None
    info: ClipInfo


@dataclass(frozen=True, slots=True)
class Audio:
    """A clip's sound alone: its AAC audio in an .m4a (no picture), or a photo post's music as
    it is served."""

    path: Path
    duration: float
    size: int
    info: ClipInfo


@dataclass(frozen=True, slots=True)
class CacheKey:
    """One deliverable form of a clip on one platform.

    `variant` names whatever changes the delivered bytes (e.g. "budget=50000000" or
    "slideshow=album"), so a clip fitted to a small budget is not reused where a larger one fits.
    """

    platform: str
    clip_id: str
    variant: str

    def text(self) -> str:
        """An unambiguous one-string form, whatever characters the parts hold."""
        return json.dumps([self.platform, self.clip_id, self.variant], separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class PlatformFile:
    """A file the platform keeps and sends again by its id (Telegram's file_id)."""

    file_id: str


@dataclass(frozen=True, slots=True)
class StoredFile:
    """A copy in the media store, for platforms that take uploads only (Discord)."""

    name: str


Handle = PlatformFile | StoredFile


@dataclass(frozen=True, slots=True)
class CachedMedia:
    """What is needed to send a clip again without fetching it.

    `stored_at` (unix time) is when the handle was obtained, and expiry counts from it.
    """

    handle: Handle
    width: int
    height: int
    duration: float
    size: int
    caption: str
    stored_at: float

    @property
    def info(self) -> ClipInfo:
        """The caption facts, kept as the JSON of a ClipInfo."""
        return ClipInfo(**json.loads(self.caption))


class Reason(enum.Enum):
    """The closed set of reasons a link is not answered with a video; values are user-facing."""

    PRIVATE = N_("This video is private.")
    REMOVED = N_("This post was removed or isn't available here.")
    REGION_LOCKED = N_("TikTok doesn't show this post in the bot's region.")
    LOGIN_REQUIRED = N_("TikTok wants a login to show this post.")
    NOT_A_VIDEO = N_("That link doesn't lead to a video.")
    TIMED_OUT = N_("The download timed out, please try again.")
    TOO_LARGE = N_("This video is too large for this chat's upload limit.")
    TOO_LONG = N_("This video is too long for me to send.")
    BLOCKED = N_("TikTok is refusing downloads right now; try again later.")
    UNSUPPORTED_SITE = N_("I can't fetch links from that site.")
    UNSAFE_ADDRESS = N_(
        "That link leads to a private or local network address, which I don't fetch."
    )
    NO_SOUND = N_("This post has no sound.")
    FAILED = N_("Something went wrong fetching this video, please try again.")
    RESTARTING = N_("The bot is restarting, please send the link again in a minute.")

    @property
    def message(self) -> str:
        return self.value


class FailureKind(enum.Enum):
    """How a site refused a fetch when the fault is not the post's own: what the operator
    counts (bot.breakage) and what tells the likely fix."""

    EXTRACTION = "extraction"  # the page came, its data did not: the site changed its pages
    CHALLENGE = "challenge"  # a "Please wait..." bot check instead of the page
    BLOCKED_IP = "blocked_ip"  # the site refuses our address (TikTok's 10204, 403 on media)
    LOGIN_WALL = "login_wall"  # the site wants a logged-in session
    SERVER_ERROR = "server_error"  # 5xx, resets and silence that outlasted the retries


class FetchError(Exception):
    """A fetch ended with a known reason; carries no raw library text to users.

    `kind` is set when the site, not the post, is at fault (None: private, removed, too long...).
    """

    def __init__(self, reason: Reason, detail: str = "", kind: FailureKind | None = None) -> None:
        super().__init__(f"{reason.name}: {detail}" if detail else reason.name)
        self.reason = reason
        self.detail = detail
        self.kind = kind


class SlideshowPost(FetchError):
    """The post holds photos and music, not a video: another tool fetches it."""

    def __init__(self, detail: str) -> None:
        super().__init__(Reason.NOT_A_VIDEO, detail)


class StaleHandle(Exception):
    """The platform no longer accepts a handle (file_id) stored for a clip."""
