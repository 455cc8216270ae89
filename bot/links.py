"""Find TikTok links in chat text and turn them into canonical, fetchable URLs (DESIGN.md §5).

Pure functions: no I/O and no state. Every regex here runs in linear time: each repetition takes
one character from a fixed set (at most after a fixed-length lookahead), and neighbouring
repetitions never compete for the same characters, so no input makes the engine backtrack.

The link forms people paste, each with where it was seen, are listed in
tests/data/tiktok_link_forms.json. Links that only advertise the app (TikTok Lite's share text ends
with "Download TikTok Lite to enjoy more posts: https://www.tiktok.com/tiktoklite") are TikTok's
own to `parse_link` but never found in text: they are no clip and deserve no answer.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["SITE", "Link", "LinkKind", "find_links", "parse_link", "post_link"]

SITE = "tiktok"


class LinkKind(enum.Enum):
    """What a link leads to, as far as can be told without the network."""

    VIDEO = "video"
    PHOTO = "photo"
    SHORT = "short"
    NOT_VIDEO = "not_video"


@dataclass(frozen=True, slots=True)
class Link:
    """One TikTok link: `url` is what to fetch, `clip_id` the post id when known offline."""

    site: str
    kind: LinkKind
    url: str
    clip_id: str | None
    original: str


# Characters a URL may hold as typed in chat: printable ASCII without spaces, quotes, brackets,
# `*`, `\`, `^`, `|` and backtick, plus non-ASCII letters and digits (tag names). Anything else
# (spaces, brackets, emoji, typographic quotes, `…`) ends a URL.
_URL_CHAR = r"(?:[!#-&+-;=?-Z_a-z~]|[^\W\x00-\x7f])"
# TikTok URLs never hold `,`, `;` or `!`, so these end one (links glued by punctuation split
# there); `?` and `#` end the path, `#` ends the query.
_PATH_CHAR = r"(?:[$%&+\-./0-9:=@A-Z_a-z~]|[^\W\x00-\x7f])"
_QUERY_CHAR = r"(?:[$%&+\-./0-9:=?@A-Z_a-z~]|[^\W\x00-\x7f])"
_FRAGMENT_CHAR = r"(?:[#$%&+\-./0-9:=?@A-Z_a-z~]|[^\W\x00-\x7f])"
# ASCII-only case folding, so that look-alikes such as the Kelvin sign never match "k".
_SCHEME = r"(?ai:https?://)"
# lite.: TikTok Lite's share links; t.: where TikTok Lite's short links lead
# (/i18n/share/video/ID); pro.: the "TikTok Pro" app's links. Other subdomains are look-alikes.
_HOST = r"(?ai:(?:www\.|m\.|vm\.|vt\.|lite\.|t\.|pro\.)?tiktok\.com|(?:www\.)?tiktokv\.com)"

# A scheme, a TikTok host that is not the start of a longer name (tiktok.com.evil.example,
# tiktok.com@evil.example, tiktok.com-x, tiktok.com:8080), then path, query and fragment. A path
# stops where another "http(s)://" starts (a second link glued on); query and fragment stop where
# they would start with one or where punctuation and then one follow, but "?u=https://..." is a
# value of this URL.
_CANDIDATE = re.compile(
    rf"(?P<scheme>{_SCHEME})?(?P<host>{_HOST})(?![\w@%-]|[.:][\w-])"
    rf"(?:/(?:(?!{_SCHEME}){_PATH_CHAR})*)?"
    rf"(?:\?(?!{_SCHEME})(?:(?![.:?]{_SCHEME}){_QUERY_CHAR})*)?"
    rf"(?:\#(?!{_SCHEME})(?:(?![.:?]{_SCHEME}){_FRAGMENT_CHAR})*)?"
)
_CHUNK = re.compile(rf"{_URL_CHAR}+")
_TRAILING = ".,;:!?"
# What may stand between the start of a run of URL characters and a link: nothing, or a word
# followed by punctuation ("Look:https://..."). A dot is allowed only before a scheme, so that
# evil.tiktok.com and x.tiktok.com stay look-alikes; non-ASCII letters may touch a scheme
# directly, as in Chinese or Russian text without spaces.
_LEAD = re.compile(r"(?:\w*[,;:!?]+)?")
_LEAD_BEFORE_SCHEME = re.compile(r"(?:\w*[.,;:!?]+|[^\W\x00-\x7f]+)?")
# What may stand between two links in one run: punctuation only.
_GLUE = re.compile(r"[.,;:!?]*")

_ID = r"(?P<id>[0-9]{1,25})"
_POST_PATHS = (
    re.compile(rf"/@[A-Za-z0-9_.-]*/(?P<kind>(?ai:video|photo))/{_ID}/*"),
    re.compile(rf"/(?ai:(?:i18n/)?share/video)/{_ID}/*"),
    re.compile(rf"/(?ai:embed(?:/v[0-9]+)?)/{_ID}/*"),
    re.compile(rf"/(?ai:player/v1)/{_ID}/*"),
    re.compile(rf"/(?ai:v)/{_ID}(?ai:\.html)?/*"),
)
# Short codes are letters and digits, and since 2025 also "-" (ZSHneWNgo9WRY-xiRJ7).
_CODE = r"(?P<code>[A-Za-z0-9_-]{1,64})"
_SITE_SHORT_PATH = re.compile(rf"/(?ai:t)/{_CODE}/*")
_SHORT_PATH = re.compile(rf"/{_CODE}/*")
_SHORT_HOSTS = frozenset({"vm.tiktok.com", "vt.tiktok.com"})
# Hosts whose /t/CODE short links stay on their own host; on any other host they move to www.
_OWN_SITE_SHORT_HOSTS = frozenset({"www.tiktok.com", "lite.tiktok.com"})
# Paths that advertise the app, on any TikTok host: TikTok Lite's share text ends with
# www.tiktok.com/tiktoklite; /download and /download-link/... are the app's download pages;
# lite.tiktok.com/ref/CODE invites to TikTok Lite's rewards programme.
_APP_ADVERT_PATH = re.compile(
    r"/(?ai:(?:tiktoklite|download|ref/[^/]+)/*|download-link(?:/[^/]*)*)"
)
_POST_ID = re.compile(r"[0-9]{1,25}")


def find_links(text: str) -> list[Link]:
    """Every TikTok link in `text`, in order, each post (or short link) once."""
    found: list[Link] = []
    seen: set[str] = set()
    for link in _scan(text):
        key = link.clip_id or link.url
        if key not in seen:
            seen.add(key)
            found.append(link)
    return found


def parse_link(url: str) -> Link | None:
    """One URL, with or without a scheme, as a Link; None when it is not a TikTok URL."""
    url = url.strip()
    match = _CANDIDATE.match(url)
    if match is None or any(char.isspace() for char in url):
        return None
    original = url.rstrip(_TRAILING)
    rest = original[match.end("host") :]
    if rest and rest[0] not in "/?#":
        return None
    return _link(match.group("host"), rest, original)


def post_link(clip_id: str, *, photo: bool = False) -> str:
    """The canonical URL of a post, in the one form yt-dlp accepts for every kind of post."""
    if not _POST_ID.fullmatch(clip_id):
        raise ValueError(f"not a TikTok post id: {clip_id!r}")
    return f"https://www.tiktok.com/@_/{'photo' if photo else 'video'}/{clip_id}"


def _scan(text: str) -> Iterator[Link]:
    """Links in order of appearance, duplicates included."""
    for chunk in _CHUNK.finditer(text):
        anchor = chunk.start()
        after_link = False
        for match in _CANDIDATE.finditer(text, chunk.start(), chunk.end()):
            if after_link:
                lead = _GLUE
            elif match.group("scheme"):
                lead = _LEAD_BEFORE_SCHEME
            else:
                lead = _LEAD
            if not lead.fullmatch(text, anchor, match.start()):
                # Part of some other URL or word; everything after it in this run is too.
                break
            end = match.end()
            while text[end - 1] in _TRAILING:
                end -= 1
            rest = text[match.end("host") : end]
            if not _APP_ADVERT_PATH.fullmatch(_path(rest)):
                yield _link(match.group("host"), rest, text[match.start() : end])
            anchor = end
            after_link = True


def _path(rest: str) -> str:
    """The path of what follows the host (path, query and fragment as typed)."""
    cut = min((i for i in (rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    return rest[:cut]


def _link(host: str, rest: str, original: str) -> Link:
    """Classify what follows the host: `rest` is the path, query and fragment as typed."""
    host = host.lower()
    path = _path(rest)
    if host in _SHORT_HOSTS:
        short = _SHORT_PATH.fullmatch(path)
        if short:
            return Link(SITE, LinkKind.SHORT, f"https://{host}/{short['code']}/", None, original)
    else:
        for pattern in _POST_PATHS:
            post = pattern.fullmatch(path)
            if post:
                photo = (post.groupdict().get("kind") or "").lower() == "photo"
                kind = LinkKind.PHOTO if photo else LinkKind.VIDEO
                return Link(SITE, kind, post_link(post["id"], photo=photo), post["id"], original)
        short = _SITE_SHORT_PATH.fullmatch(path)
        if short:
            site = host if host in _OWN_SITE_SHORT_HOSTS else "www.tiktok.com"
            url = f"https://{site}/t/{short['code']}/"
            return Link(SITE, LinkKind.SHORT, url, None, original)
    return Link(SITE, LinkKind.NOT_VIDEO, f"https://{host}{path or '/'}", None, original)
