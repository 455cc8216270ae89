"""TikTok photo posts: gallery-dl fetches the images and the music (yt-dlp sees only the music).

gallery-dl runs as a subprocess: its configuration is module-global state, which a process
keeps apart from the bot's, and a subprocess can be killed on cancellation. It reads
DOWNLOAD_COOKIES_FILE where it is (`--cookies`) and is told not to write it back
(`cookies-update=false`: by default gallery-dl saves its session's cookies into that file).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from pathlib import Path

from bot.links import Link
from bot.model import Album, ClipInfo, FailureKind, FetchError, Reason
from bot.proxies import ProxyPool, ProxyRoute, read_timeout_s
from bot.ytdlp_errors import is_transient, kind_for_error, reason_for_error

log = logging.getLogger(__name__)

# How often the job directory is measured while gallery-dl writes into it.
_SIZE_CHECK_S = 0.1

_IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".heic", ".avif"})
_AUDIO_SUFFIXES = frozenset({".mp3", ".m4a", ".aac", ".mp4", ".ogg", ".opus"})
# Refusals of the address a request came from: another proxy may get past them.
_REFUSALS = frozenset({FailureKind.CHALLENGE, FailureKind.BLOCKED_IP})


class GalleryDlSlideshows:
    """One gallery-dl run per post, into the job directory, with fixed file names; through the
    first proxy of `proxies.order()`, and the next one while TikTok refuses the address."""

    def __init__(
        self,
        *,
        proxies: ProxyPool,
        verify_tls: bool,
        timeout_s: float,
        max_bytes: int,
        cookies: Path | None = None,
    ) -> None:
        self._proxies = proxies
        self._verify_tls = verify_tls
        self._timeout_s = timeout_s
        self._max_bytes = max_bytes
        self._cookies = cookies

    def command(self, url: str, directory: Path, proxy: str | None = None) -> list[str]:
        args = [
            sys.executable, "-m", "gallery_dl", "--config-ignore", "--cache-file", ":memory:",
            "-o", "warnings=ignore", "-D", str(directory), "-f", "{num}.{extension}",
            "--write-info-json", "--filesize-max", str(self._max_bytes),
            # A silent server is given up on well within the deadline, retries included.
            "--http-timeout", f"{read_timeout_s(self._timeout_s):.1f}",
            # gallery-dl tries a page without its data (a challenge, a change) `retries` times,
            # sleeping --http-timeout between: seconds lost on what another proxy may answer
            # at once. Its page 5xx retries go with it: a failed run is run again (fetch).
            # The media keeps its own retries (they default to the extractor's).
            "-o", "extractor.tiktok.retries=0", "-o", "downloader.retries=3",
        ]  # fmt: skip
        if proxy:
            args += ["--proxy", proxy]
        if self._cookies is not None:
            args += ["--cookies", str(self._cookies), "-o", "cookies-update=false"]
        if not self._verify_tls:
            args.append("--no-check-certificate")
        return [*args, url]

    async def fetch(self, link: Link, workdir: Path) -> Album:
        directory = workdir / "slides"
        directory.mkdir(mode=0o700)
        route = ProxyRoute(self._proxies)
        again = True
        try:
            async with asyncio.timeout(self._timeout_s):
                while True:
                    try:
                        album = await self._fetch_through(link, directory, route.proxy)
                    except FetchError as err:
                        if again and is_transient(err.detail):
                            again = False
                            log.info("gallery-dl failed, running it again")
                            await asyncio.to_thread(_empty, directory)
                            continue
                        if route.proxy is None or err.kind not in _REFUSALS:
                            raise
                        if not route.refused(err.detail, err.kind):
                            raise route.error() from None
                        log.info("gallery-dl refused through a proxy, trying the next")
                        await asyncio.to_thread(_empty, directory)
                        continue
                    route.worked()
                    return album
        except TimeoutError:
            raise FetchError(Reason.TIMED_OUT, "gallery-dl") from None

    async def _fetch_through(self, link: Link, directory: Path, proxy: str | None) -> Album:
        """One gallery-dl run, through `proxy` (None: direct)."""
        process = await asyncio.create_subprocess_exec(
            *self.command(link.url, directory, proxy),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            _, stderr = await self._within_size(process, directory)
        finally:
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        errors = stderr.decode(errors="replace")
        files = await asyncio.to_thread(_files_in, directory)
        images = tuple(p for p in files if p.suffix.lower() in _IMAGE_SUFFIXES)
        if not images:
            log.info("gallery-dl found no images (%s): %s", process.returncode, errors[-500:])
            if not errors:
                raise FetchError(Reason.NOT_A_VIDEO, errors)
            raise FetchError(reason_for_error(errors), errors, kind_for_error(errors))
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


def _files_in(directory: Path) -> list[Path]:
    """The files gallery-dl wrote: the slides by number, then the rest by name."""
    return sorted(
        (p for p in directory.iterdir() if p.is_file()),
        key=lambda p: (not p.stem.isdigit(), int(p.stem) if p.stem.isdigit() else 0, p.name),
    )


def _empty(directory: Path) -> None:
    """Remove what a refused run left, before the next one writes."""
    for leftover in directory.iterdir():
        if leftover.is_file():
            leftover.unlink(missing_ok=True)


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
                music = data.get("music") or {}
                if not isinstance(music, dict):
                    music = {}
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
                    music_title=str(music.get("title") or ""),
                    music_author=str(music.get("authorName") or ""),
                )
    return ClipInfo(link.clip_id or "", "", "", "", link.url)
