"""What a chat (a Telegram group, a private chat, a Discord server or channel) chose for itself.

Every field left None means "as the platform does by default" (today's behaviour), so a chat
that never opened /settings gets exactly what it got before. Values are stored as JSON of the
fields that are set; unknown fields and values from a newer release are ignored when read.
"""

from __future__ import annotations

import dataclasses
import enum
import json
from dataclasses import dataclass
from typing import Any

from bot.i18n import N_


class SlideshowMode(enum.Enum):
    """How a TikTok photo post is sent: its photos and music as they are, or made into a video."""

    ALBUM = "album"
    VIDEO = "video"


def chat_key(platform: str, chat: int | str) -> str:
    """The key of a chat's settings (the same chat the rate limits count)."""
    return f"{platform}:chat:{chat}"


def server_key(platform: str, server: int | str) -> str:
    """The key of a server's settings (a Discord guild), which its channels start from."""
    return f"{platform}:server:{server}"


class AutoDetect(enum.Enum):
    """Whether links pasted in messages are answered, or only those given to /download."""

    ON = "on"
    ON_REQUEST = "on_request"


class CaptionStyle(enum.Enum):
    FULL = "full"
    LINK = "link"
    NONE = "none"


class OriginalMessage(enum.Enum):
    """What happens to the message that held the link once the video was sent."""

    KEEP = "keep"
    HIDE_PREVIEW = "hide_preview"
    # Only when the message held nothing but the link, and the bot may delete it.
    DELETE = "delete"


class FailureStyle(enum.Enum):
    REPLY = "reply"
    REACTION = "reaction"
    SILENT = "silent"


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """One chat's choices; None: the platform's default."""

    auto_detect: AutoDetect | None = None
    caption: CaptionStyle | None = None
    original: OriginalMessage | None = None
    failures: FailureStyle | None = None
    slideshow: SlideshowMode | None = None
    # A language code ("es", "pt-BR"); None: each person's own.
    language: str | None = None
    # False: /top is off and the chat's counts are forgotten.
    trending: bool | None = None

    def to_json(self) -> str:
        fields: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None:
                fields[field.name] = value.value if isinstance(value, enum.Enum) else value
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> ChatSettings:
        """The settings in `text`; what this release does not know is left at its default."""
        try:
            stored = json.loads(text)
        except ValueError:
            return cls()
        if not isinstance(stored, dict):
            return cls()
        found: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            value = stored.get(field.name)
            if value is None:
                continue
            kind = _ENUMS.get(field.name)
            try:
                found[field.name] = kind(value) if kind is not None else value
            except ValueError:
                continue
        if not isinstance(found.get("language", ""), str):
            found.pop("language")
        if not isinstance(found.get("trending", True), bool):
            found.pop("trending")
        return cls(**found)


_ENUMS: dict[str, type[enum.Enum]] = {
    "auto_detect": AutoDetect,
    "caption": CaptionStyle,
    "original": OriginalMessage,
    "failures": FailureStyle,
    "slideshow": SlideshowMode,
}


@dataclass(frozen=True, slots=True)
class Choice:
    """One value a setting may take in /settings, and its label (a catalogue msgid)."""

    value: object
    label: str


# A language's own name, shown as it is in every language.
LANGUAGE_NAMES: dict[str, str] = {
    "en": "English",
    "es": "Español",
    "pt": "Português",
    "ru": "Русский",
    "de": "Deutsch",
}
_COMMON: dict[str, tuple[Choice, ...]] = {
    "caption": (
        Choice(None, N_("author, text and link")),
        Choice(CaptionStyle.LINK, N_("link only")),
        Choice(CaptionStyle.NONE, N_("none")),
    ),
    "slideshow": (
        Choice(None, N_("photos")),
        Choice(SlideshowMode.VIDEO, N_("one video")),
    ),
    "language": (
        Choice(None, N_("each person's own")),
        *(Choice(code, name) for code, name in LANGUAGE_NAMES.items()),
    ),
    "trending": (Choice(None, N_("counted")), Choice(False, N_("off, forgotten"))),
}
# The choices /settings offers on each platform, in the order shown, the default first (a
# button press moves to the next). Telegram bots cannot hide a preview in others' messages.
OFFERED: dict[str, dict[str, tuple[Choice, ...]]] = {
    "telegram": {
        "auto_detect": (
            Choice(None, N_("answered")),
            Choice(AutoDetect.ON_REQUEST, N_("only with /download")),
        ),
        "caption": _COMMON["caption"],
        "original": (
            Choice(None, N_("kept")),
            Choice(OriginalMessage.DELETE, N_("deleted if it's just the link")),
        ),
        "failures": (
            Choice(None, N_("short reply")),
            Choice(FailureStyle.REACTION, N_("reaction only")),
            Choice(FailureStyle.SILENT, N_("silent")),
        ),
        "slideshow": _COMMON["slideshow"],
        "language": _COMMON["language"],
        "trending": _COMMON["trending"],
    },
    "discord": {
        "auto_detect": (
            Choice(None, N_("answered")),
            Choice(AutoDetect.ON_REQUEST, N_("only with /download")),
        ),
        "caption": _COMMON["caption"],
        "original": (
            Choice(None, N_("preview hidden")),
            Choice(OriginalMessage.KEEP, N_("kept as it is")),
            Choice(OriginalMessage.DELETE, N_("deleted if it's just the link")),
        ),
        "failures": (
            Choice(None, N_("reaction only")),
            Choice(FailureStyle.REPLY, N_("short reply")),
            Choice(FailureStyle.SILENT, N_("silent")),
        ),
        "slideshow": _COMMON["slideshow"],
        "language": _COMMON["language"],
        "trending": _COMMON["trending"],
    },
}

LABELS: dict[str, str] = {
    "auto_detect": N_("Pasted links"),
    "caption": N_("Caption"),
    "original": N_("Link message"),
    "failures": N_("Failures"),
    "slideshow": N_("Photo posts"),
    "language": N_("Language"),
    "trending": N_("/top"),
}
# A /settings button: a setting's label and its current value.
SETTING_BUTTON_TEXT = N_("{label}: {value}")


def choices(platform: str, name: str) -> tuple[Choice, ...]:
    return OFFERED[platform][name]


def current(platform: str, settings: ChatSettings, name: str) -> Choice:
    """The offered choice the settings hold (a value not offered here shows as the default)."""
    offered = choices(platform, name)
    value = getattr(settings, name)
    return next((choice for choice in offered if choice.value == value), offered[0])


def chosen(settings: ChatSettings, name: str, value: object) -> ChatSettings:
    """The settings with `name` set to `value`."""
    changed: dict[str, Any] = {name: value}
    return dataclasses.replace(settings, **changed)


def next_choice(platform: str, settings: ChatSettings, name: str) -> ChatSettings:
    """The settings with `name` moved to its next offered choice (after the last, the first)."""
    offered = choices(platform, name)
    at = offered.index(current(platform, settings, name))
    return chosen(settings, name, offered[(at + 1) % len(offered)].value)


def shown(platform: str, settings: ChatSettings) -> list[tuple[str, str, str]]:
    """Each offered setting as (name, label msgid, current value's label msgid), in order."""
    return [
        (name, LABELS[name], current(platform, settings, name).label) for name in OFFERED[platform]
    ]
