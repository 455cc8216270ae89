"""DOWNLOAD_COOKIES_FILE: a Netscape cookies.txt, checked once at start and read, never written.

yt-dlp writes its cookie jar back to `cookiefile` when a YoutubeDL closes, and gallery-dl
writes back to `--cookies` unless told not to: the file is the operator's (a logged-in session),
so yt-dlp gets copies of the cookies (`load_cookie_jar`) and gallery-dl `cookies-update=false`.
Nothing here logs a cookie value or a line of the file.
"""

from __future__ import annotations

import re
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from yt_dlp.cookies import YoutubeDLCookieJar

# What yt-dlp's YoutubeDLCookieJar (through http.cookiejar.MozillaCookieJar) accepts.
_MAGIC = re.compile(r"#( Netscape)? HTTP Cookie File")
_HTTPONLY_PREFIX = "#HttpOnly_"
_FIELDS = 7
_EXPIRES = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class CookiesFileError(ValueError):
    """The cookies file cannot be used; the message is one line saying why."""


@dataclass(frozen=True, slots=True)
class CookieFileInfo:
    """What a checked cookies file holds: how many cookies, for which domains."""

    count: int
    domains: tuple[str, ...]


def check_cookies_file(path: Path) -> CookieFileInfo:
    """Raise CookiesFileError unless `path` is a cookies.txt only its owner can read, in the
    format yt-dlp reads, with at least one cookie."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CookiesFileError(f"cookies file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as err:
        why = err.strerror if isinstance(err, OSError) and err.strerror else type(err).__name__
        raise CookiesFileError(f"cookies file {path} cannot be read: {why}") from None
    if not stat.S_ISREG(mode):
        raise CookiesFileError(f"cookies file {path} is not a regular file")
    if mode & 0o077:
        raise CookiesFileError(f"cookies file {path} is readable by other users: chmod 600 it")
    lines = text.splitlines()
    if not lines or not _MAGIC.match(lines[0]):
        raise CookiesFileError(
            f"cookies file {path} is not a Netscape cookies.txt: its first line must be "
            '"# Netscape HTTP Cookie File"'
        )
    count = 0
    domains: set[str] = set()
    for number, line in enumerate(lines[1:], start=2):
        line = line.removeprefix(_HTTPONLY_PREFIX)
        if not line.strip() or line.lstrip().startswith(("#", "$")):
            continue
        fields = line.split("\t")
        if len(fields) != _FIELDS or not fields[0] or not fields[5]:
            raise CookiesFileError(
                f"cookies file {path} line {number} is not a cookie "
                f"({_FIELDS} tab-separated fields)"
            )
        if fields[4] and not _EXPIRES.fullmatch(fields[4]):
            raise CookiesFileError(f"cookies file {path} line {number} has no valid expiry")
        count += 1
        domains.add(fields[0].lower())
    if count == 0:
        raise CookiesFileError(f"cookies file {path} holds no cookies")
    return CookieFileInfo(count=count, domains=tuple(sorted(domains)))


def load_cookie_jar(path: Path) -> YoutubeDLCookieJar:
    """The cookies of a file `check_cookies_file` accepted, in a jar that knows no file name
    (so saving it can never overwrite the file)."""
    from yt_dlp.cookies import YoutubeDLCookieJar  # only where yt-dlp runs

    check_cookies_file(path)
    jar = YoutubeDLCookieJar(str(path))
    jar.load()
    jar.filename = None
    return jar
