"""The core's ports: what it needs from the outside, as Protocols."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from bot.links import Link
from bot.model import Album, CachedMedia, Download, Media, Origin, Reason, VideoRequest


class LinkResolver(Protocol):
    """Turns a pasted link into one with a known clip id (short links need a lookup)."""

    async def resolve(self, link: Link) -> Link: ...


class Downloader(Protocol):
    """Fetches a clip into a job directory."""

    async def fetch(self, link: Link, workdir: Path, budget_bytes: int) -> Download:
        """Raise FetchError before any media request when the clip cannot be sent."""


class SlideshowFetcher(Protocol):
    """Fetches the images and music of a photo post into a job directory."""

    async def fetch(self, link: Link, workdir: Path) -> Album: ...


class Replier(Protocol):
    """Answers on one platform; the adapter chooses how a video or a reason looks there."""

    async def working(self, origin: Origin) -> None:
        """Show that a job runs (called again every few seconds while it does)."""

    async def deliver(self, origin: Origin, media: Media) -> str | None:
        """Send the video; return the platform's handle to send it again without an upload
        (Telegram's file_id), or None. Raise FetchError(Reason.TOO_LARGE) when refused for size."""

    async def resend(self, origin: Origin, cached: CachedMedia) -> None:
        """Send a video by the handle `deliver` returned; StaleHandle when it is refused."""

    async def deliver_album(self, origin: Origin, album: Album) -> None:
        """Send a photo post's images (in groups the platform allows) and then its music."""

    async def fail(self, origin: Origin, reason: Reason) -> None:
        """Tell the requester why a link got no video."""


class JobQueue(Protocol):
    """Holds accepted requests until a worker runs them."""

    def submit(self, request: VideoRequest) -> bool:
        """Queue the request; False when the queue is full."""


class Journal(Protocol):
    """Keeps each accepted request until it has been answered, so a restart can run it again."""

    def accept(self, request: VideoRequest) -> bool:
        """Write the request down; False when its origin was accepted before (a redelivery)."""

    def answered(self, origin: Origin) -> None:
        """The request from `origin` got its answer (a video or a reason)."""
