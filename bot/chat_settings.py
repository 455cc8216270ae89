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

from bot.settings import SlideshowMode


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


# The choices /settings offers, in the order shown, with the default first: pressing a button
# moves to the next. Only settings that already change what the bot does are offered.
OFFERED: dict[str, tuple[object, ...]] = {
    "auto_detect": (None, AutoDetect.ON_REQUEST),
}

LABELS: dict[str, str] = {"auto_detect": "Pasted links"}
VALUE_LABELS: dict[object, str] = {
    None: "answered",
    AutoDetect.ON: "answered",
    AutoDetect.ON_REQUEST: "only with /download",
}


def next_choice(settings: ChatSettings, name: str) -> ChatSettings:
    """The settings with `name` moved to its next offered choice (after the last, the first)."""
    choices = OFFERED[name]
    current = getattr(settings, name)
    at = choices.index(current) if current in choices else 0
    changed: dict[str, Any] = {name: choices[(at + 1) % len(choices)]}
    return dataclasses.replace(settings, **changed)


def shown(settings: ChatSettings) -> list[tuple[str, str]]:
    """Each offered setting as (name, "Label: value"), in order."""
    return [(name, f"{LABELS[name]}: {VALUE_LABELS[getattr(settings, name)]}") for name in OFFERED]
