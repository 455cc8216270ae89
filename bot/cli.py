"""`python -m bot fetch URL`: the bot's pipeline from a shell, the video written to a file."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bot.media import audio_suffix
from bot.model import Album, Audio, CachedMedia, Manner, Media, Origin, Reason, StaleHandle
from bot.progress import Progress


@dataclass(frozen=True, slots=True)
class ShellOrigin:
    platform: str = "shell"


class FileReplier:
    """Delivers by copying the playable mp4 to a file; remembers a failure's reason."""

    def __init__(self, output: Path | None) -> None:
        self._output = output
        self.saved: Path | None = None
        self.reason: Reason | None = None

    async def working(self, origin: Origin) -> None:
        return None

    async def status(self, origin: Origin, progress: Progress, manner: Manner) -> None:
        return None

    async def clear_status(self, origin: Origin, *, earlier: bool = False) -> None:
        return None

    async def deliver(self, origin: Origin, media: Media, manner: Manner) -> str | None:
        clip_id = media.info.clip_id
        target = self._output or Path(f"{clip_id if clip_id.isdigit() else 'video'}.mp4")
        shutil.copyfile(media.path, target)
        self.saved = target
        return None

    async def resend(self, origin: Origin, cached: CachedMedia, manner: Manner) -> None:
        raise StaleHandle("a shell fetch keeps no cache")

    async def deliver_audio(self, origin: Origin, audio: Audio, manner: Manner) -> str | None:
        clip_id = audio.info.clip_id
        name = clip_id if clip_id.isdigit() else "sound"
        target = self._output or Path(f"{name}{audio_suffix(audio.path)}")
        shutil.copyfile(audio.path, target)
        self.saved = target
        return None

    async def resend_audio(self, origin: Origin, cached: CachedMedia, manner: Manner) -> None:
        raise StaleHandle("a shell fetch keeps no cache")

    async def deliver_album(self, origin: Origin, album: Album, manner: Manner) -> None:
        """A photo post becomes a directory: the images in order, then the music."""
        clip_id = album.info.clip_id
        target = self._output or Path(clip_id if clip_id.isdigit() else "slideshow")
        target.mkdir(parents=True, exist_ok=True)
        for path in (*album.images, *([album.audio] if album.audio else [])):
            shutil.copyfile(path, target / path.name)
        self.saved = target

    async def fail(self, origin: Origin, reason: Reason, manner: Manner) -> None:
        self.reason = reason
