"""TikTok photo posts: gallery-dl fetches the images and the music (yt-dlp sees only the music).

gallery-dl runs as a subprocess: its configuration is module-global state, which a process
keeps apart from the bot's, and a subprocess can be killed on cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path

from bot.download import read_timeout_s
from bot.links import Link
from bot.model import Album, ClipInfo, FetchError, Reason
from bot.ytdlp_errors import reason_for_error

log = logging.getLogger(__name__)

# How often the job directory is measured while gallery-dl writes into it.
_SIZE_CHECK_S = 0.1

_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".heic", ".avif"})
_AUDIO_SUFFIXES = frozenset({".mp3", ".m4a", ".aac", ".mp4", ".ogg", ".opus"})


class GalleryDlSlideshows:
    """One gallery-dl run per post, into the job directory, with fixed file names."""

    def __init__(
        self, *, proxy: str | None, verify_tls: bool, timeout_s: float, max_bytes: int
    ) -> None:
        self._proxy = proxy
        self._verify_tls = verify_tls
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes

    def command(self, url: str, directory: Path) -> list[str]:
        args = [
            sys.executable, "-m", "gallery_dl", "--config-ignore", "--cache-file", ":memory:",
            "-o", "warnings=ignore", "-D", str(directory), "-f", "{num}.{extension}",
            "--write-info-json", "--filesize-max", str(self._max_bytes),
            # A silent server is given up on well within the deadline, retries included.
            "--http-timeout", f"{read_timeout_s(self._timeout_s):.1f}",
        ]  # fmt: skip
        if self._proxy:
            args += ["--proxy", self._proxy]
        if not self._verify_tls:
            args.append("--no-check-certificate")
        return [*args, url]

    async def fetch(self, link: Link, workdir: Path) -> Album:
        directory = workdir / "slides"
        directory.mkdir(mode=0o700)
        process = await asyncio.create_subprocess_exec(
            *self.command(link.url, directory),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            async with asyncio.timeout(self._timeout_s):
                _, stderr = await self._within_size(process, directory)
        except TimeoutError:
            raise FetchError(Reason.TIMED_OUT, "gallery-dl") from None
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        errors = stderr.decode(errors="replace")
        files = sorted(
            (p for p in directory.iterdir() if p.is_file()),
            key=lambda p: (not p.stem.isdigit(), int(p.stem) if p.stem.isdigit() else 0, p.name),
        )
        images = tuple(p for p in files if p.suffix.lower() in _IMAGE_SUFFIXES)
        if not images:
            log.info("gallery-dl found no images (%s): %s", process.returncode, errors[-500:])
            raise FetchError(reason_for_error(errors) if errors else Reason.NOT_A_VIDEO, errors)
        audio = next((p for p in files if p.suffix.lower() in _AUDIO_SUFFIXES), None)
        return Album(images=images, audio=audio, info=_album_info(files, link))

    async def _within_size(
        self, process: asyncio.subprocess.Process, directory: Path
    ) -> tuple[bytes, bytes]:
        """gallery-dl's output; stopped as soon as what it wrote passes the byte cap (its own
        --filesize-max checks each file's announced size only, and not the post's sum)."""
        communicate = asyncio.ensure_future(process.communicate())
        try:
            while not communicate.done():
                await asyncio.wait([communicate], timeout=_SIZE_CHECK_S)
                written = await asyncio.to_thread(_bytes_in, directory)
                if written > self._max_bytes:
                    raise FetchError(Reason.TOO_LARGE, f"over {self._max_bytes} bytes")
            return communicate.result()
        finally:
            if not communicate.done():
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await asyncio.wait([communicate])


def _bytes_in(directory: Path) -> int:
    total = 0
    for path in directory.rglob("*"):
        # gallery-dl renames each .part file when it is complete.
        with contextlib.suppress(FileNotFoundError):
            total += path.stat().st_size
    return total


def _album_info(files: list[Path], link: Link) -> ClipInfo:
    """Caption facts from the metadata gallery-dl wrote beside the files."""
    for path in files:
        if path.name == "info.json":
            with contextlib.suppress(ValueError, OSError):
                data = json.loads(path.read_text())
                author = data.get("author") or {}
                clip_id = str(data.get("id") or link.clip_id or "")
                handle = str(
                    (author.get("uniqueId") if isinstance(author, dict) else None)
                    or data.get("user")
                    or ""
                )
                return ClipInfo(
                    clip_id=clip_id,
                    author=handle,
                    nickname=str(author.get("nickname") or handle)
                    if isinstance(author, dict)
                    else "",
                    description=str(data.get("desc") or ""),
                    webpage_url=f"https://www.tiktok.com/@{handle}/photo/{clip_id}"
                    if handle
                    else link.url,
                )
    return ClipInfo(link.clip_id or "", "", "", "", link.url)
