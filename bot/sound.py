"""The "🎵 Sound" button under a video: what it says, and the clip its data names.

Its data ("snd:tiktok:7350…") is the clip's canonical id, the same on every platform, so a press
works in any process and after a restart: the link is rebuilt from the id alone. Only TikTok
clips get one: another site's link does not fit in Telegram's 64 bytes of callback data.
"""

from __future__ import annotations

from bot.i18n import N_
from bot.links import SITE, parse_link, post_link
from bot.model import ClipInfo

SOUND_BUTTON_TEXT = N_("🎵 Sound")
SOUND_PREFIX = "snd:"
_TIKTOK = f"{SITE}:"


def sound_button_data(info: ClipInfo) -> str | None:
    """The button's data for a clip ("snd:tiktok:<id>"); None when it gets no button."""
    link = parse_link(info.webpage_url)
    if link is None or link.clip_id is None:
        return None
    return f"{SOUND_PREFIX}{_TIKTOK}{link.clip_id}"


def sound_link(data: str) -> str | None:
    """The canonical link of the clip a button's data names; None for data that names none."""
    clip = data.removeprefix(SOUND_PREFIX)
    if clip == data or not clip.startswith(_TIKTOK):
        return None
    try:
        return post_link(clip.removeprefix(_TIKTOK))
    except ValueError:
        return None
