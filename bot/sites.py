"""Which links users may send: TikTok's (found by links.py), and other yt-dlp extractors by name."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from bot.links import SITE as TIKTOK
from bot.links import Link, LinkKind, find_links, parse_link

_URL = re.compile(r"(?ai:https?://)[^\s<>\"'()\[\]{}|\\^`]+")
_TRAILING = ".,;:!?…"


class SiteCatalog:
    """Built once from ALLOWED_SITES; the generic extractor only when named there."""

    def __init__(self, allowed: Sequence[str]) -> None:
        wanted = {name.lower(): name for name in allowed}
        self._tiktok = TIKTOK in wanted
        others = {name: label for name, label in wanted.items() if name != TIKTOK}
        self._extractors: list[tuple[str, Any]] = []
        if others:
            # Only then: a TikTok-only bot whose yt-dlp runs in bot.download_process loads none.
            from yt_dlp.extractor import gen_extractor_classes

            by_name = {ie.IE_NAME.lower(): ie for ie in gen_extractor_classes()}
            unknown = sorted(label for name, label in others.items() if name not in by_name)
            if unknown:
                raise ValueError(f"ALLOWED_SITES names no yt-dlp extractor: {', '.join(unknown)}")
            # The generic extractor takes any URL: as in yt-dlp, it is tried last.
            ordered = sorted(others, key=lambda name: name == "generic")
            self._extractors = [(by_name[name].IE_NAME, by_name[name]) for name in ordered]
        self.names: tuple[str, ...] = (
            *(["TikTok"] if self._tiktok else []),
            *(name for name, _ in self._extractors),
        )

    @property
    def ytdlp_extractors(self) -> list[str]:
        """yt-dlp's `allowed_extractors`: exact names, so no other extractor ever runs."""
        tiktok = ["tiktok"] if self._tiktok else []
        names = [re.escape(name.lower()) for name, _ in self._extractors]
        if "generic" in names:
            # The generic extractor hands pages' <video>/<audio> tags to this one.
            names.append("html5")
        return [*tiktok, *names]

    def find(self, text: str) -> list[Link]:
        """Every allowed link in the text, in order of appearance."""
        found = find_links(text) if self._tiktok else []
        if self._extractors:
            found.extend(self._other_links(text))
            found.sort(key=lambda link: text.find(link.original))
        return found

    def _other_links(self, text: str) -> list[Link]:
        links: list[Link] = []
        for match in _URL.finditer(text):
            url = match.group().rstrip(_TRAILING)
            if parse_link(url) is not None:
                continue  # TikTok's own, allowed or not
            for name, extractor in self._extractors:
                if extractor.suitable(url):
                    try:
                        temp_id = extractor.get_temp_id(url)
                    except Exception:
                        temp_id = None
                    # The generic extractor has no ids: such links are known by their URL.
                    clip_id = f"{name.lower()}:{temp_id}" if temp_id else None
                    links.append(Link(name, LinkKind.VIDEO, url, clip_id, url))
                    break
        return links
