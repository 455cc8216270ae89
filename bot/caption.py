"""Captions: the author's handle, the description shortened to fit, and the link."""

from __future__ import annotations

from bot.chat_settings import CaptionStyle
from bot.model import ClipInfo

ELLIPSIS = "…"


def utf16_len(text: str) -> int:
    """Length as Telegram and Discord count it (UTF-16 code units)."""
    return len(text.encode("utf-16-le")) // 2


def _shorten(text: str, room: int) -> str:
    if utf16_len(text) <= room:
        return text
    if room <= utf16_len(ELLIPSIS):
        return ""
    budget = room - utf16_len(ELLIPSIS)
    out: list[str] = []
    used = 0
    for ch in text:
        width = utf16_len(ch)
        if used + width > budget:
            break
        out.append(ch)
        used += width
    cut = "".join(out)
    space = cut.rfind(" ")
    if space > len(cut) * 2 // 3:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def make_caption(info: ClipInfo, *, limit: int = 1024) -> str:
    """`@handle: description` on the first line, the original post's link on the second."""
    link = info.webpage_url
    head = f"@{info.author}" if info.author else ""
    description = " ".join(info.description.split())
    room = limit - utf16_len(link) - 1 - utf16_len(head) - (2 if head else 0)
    body = _shorten(description, room) if description and room > 0 else ""
    first = f"{head}: {body}" if head and body else head or body
    caption = f"{first}\n{link}" if first else link
    if utf16_len(caption) > limit:
        return _shorten(caption, limit)
    return caption


def caption_for(info: ClipInfo, style: CaptionStyle | None, *, limit: int) -> str:
    """The caption a chat chose: the full one (the default), the link alone, or none ("")."""
    if style is CaptionStyle.NONE:
        return ""
    if style is CaptionStyle.LINK:
        return info.webpage_url if utf16_len(info.webpage_url) <= limit else ""
    return make_caption(info, limit=limit)
