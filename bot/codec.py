"""Requests and origins as versioned JSON: what the journal stores and the job queue carries.

Only the adapter knows an origin's shape; it hands the core an `OriginCodec` per platform. A
request's key (a hash of its encoded origin) is its idempotency key: the journal's row, the
queued job's id and the logs' `job=` all use it.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
from collections.abc import Mapping
from typing import Any, Protocol

from bot.chat_settings import CaptionStyle, FailureStyle, OriginalMessage, SlideshowMode
from bot.links import Link, LinkKind
from bot.model import Manner, Origin, Sender, VideoRequest, Want

# Bumped when the JSON of a request changes shape; a reader refuses versions it does not know.
# Version 1 (before chats had settings) is still read: its requests are answered by default.
REQUEST_VERSION = 2
_READ_VERSIONS = frozenset({1, 2})


class OriginCodec(Protocol):
    """Turns one platform's origins into text and back; the adapter knows their shape."""

    def encode(self, origin: Origin) -> str: ...

    def decode(self, text: str, age_s: float) -> Origin | None:
        """The origin again, or None when it can no longer be answered (an expired token)."""


class DataclassCodec:
    """JSON for origins that are frozen dataclasses of plain values, tagged by class name.

    `scope` names whose origins they are (one bot's chat and message ids mean nothing to
    another bot); an origin stored under another scope is not answered. `max_age_s` names
    classes whose answer channel expires (Discord interaction tokens).
    """

    def __init__(
        self,
        *kinds: type[Any],
        scope: str = "",
        max_age_s: Mapping[type[Any], float] | None = None,
    ) -> None:
        self._kinds = {kind.__name__: kind for kind in kinds}
        self._scope = scope
        self._max_age_s = dict(max_age_s or {})

    def encode(self, origin: Origin) -> str:
        kind = type(origin).__name__
        if self._kinds.get(kind) is not type(origin) or not dataclasses.is_dataclass(origin):
            raise TypeError(f"no codec for origin {origin!r}")
        fields = {"kind": kind, "scope": self._scope, **dataclasses.asdict(origin)}
        return json.dumps(fields, sort_keys=True, separators=(",", ":"))

    def decode(self, text: str, age_s: float) -> Origin | None:
        fields = json.loads(text)
        kind = self._kinds.get(fields.pop("kind"))
        limit = self._max_age_s.get(kind) if kind is not None else None
        if kind is None or fields.pop("scope") != self._scope:
            return None
        if limit is not None and age_s > limit:
            return None
        origin: Origin = kind(**fields)
        return origin


class RequestCodec:
    """Requests of every configured platform to JSON text and back."""

    def __init__(self, origins: Mapping[str, OriginCodec]) -> None:
        self._origins = origins

    def origin_text(self, origin: Origin) -> str | None:
        """The origin's JSON, or None for a platform without a codec (not journaled)."""
        codec = self._origins.get(origin.platform)
        return codec.encode(origin) if codec is not None else None

    def origin_from(self, platform: str, text: str, age_s: float) -> Origin | None:
        codec = self._origins.get(platform)
        return codec.decode(text, age_s) if codec is not None else None

    def key(self, origin: Origin) -> str | None:
        """The request's idempotency key; None for a platform without a codec."""
        text = self.origin_text(origin)
        return key_of(text) if text is not None else None

    def encode(self, request: VideoRequest, accepted_at: float) -> str:
        origin = self.origin_text(request.origin)
        if origin is None:
            raise TypeError(f"no codec for platform {request.origin.platform!r}")
        return json.dumps(
            {
                "v": REQUEST_VERSION,
                "platform": request.origin.platform,
                "origin": origin,
                "links": links_json(request.links),
                "budget": request.budget_bytes,
                "accepted_at": accepted_at,
                "manner": manner_json(request.manner),
                "sender": dataclasses.asdict(request.sender) if request.sender else None,
                "want": request.want.value,
            },
            separators=(",", ":"),
        )

    def decode(self, text: str, now: float) -> tuple[VideoRequest, float] | None:
        """The request and when it was accepted; None when its origin can no longer be
        answered. Raises ValueError on a version this code does not know."""
        fields = json.loads(text)
        if fields.get("v") not in _READ_VERSIONS:
            raise ValueError(f"unknown request version {fields.get('v')!r}")
        accepted_at = float(fields["accepted_at"])
        origin = self.origin_from(fields["platform"], fields["origin"], now - accepted_at)
        if origin is None:
            return None
        links = links_from(fields["links"])
        sender = fields.get("sender")
        request = VideoRequest(
            links=links,
            origin=origin,
            budget_bytes=fields["budget"],
            manner=manner_from(fields.get("manner") or {}),
            sender=Sender(**sender) if sender else None,
            want=Want(fields.get("want", Want.VIDEO.value)),
        )
        return request, accepted_at


def key_of(encoded_origin: str) -> str:
    return hashlib.sha256(encoded_origin.encode()).hexdigest()


def links_json(links: tuple[Link, ...]) -> str:
    return json.dumps([{**dataclasses.asdict(link), "kind": link.kind.value} for link in links])


def links_from(text: str) -> tuple[Link, ...]:
    return tuple(
        Link(**{**fields, "kind": LinkKind(fields["kind"])}) for fields in json.loads(text)
    )


def manner_json(manner: Manner) -> dict[str, Any]:
    return {
        field.name: value.value if isinstance(value, enum.Enum) else value
        for field in dataclasses.fields(manner)
        for value in [getattr(manner, field.name)]
    }


_MANNER_ENUMS: dict[str, type[enum.Enum]] = {
    "caption": CaptionStyle,
    "original": OriginalMessage,
    "failures": FailureStyle,
    "slideshow": SlideshowMode,
}


def manner_from(fields: Mapping[str, Any]) -> Manner:
    """The manner written by `manner_json`; what this release does not know is left default."""
    known = {field.name for field in dataclasses.fields(Manner)}
    values: dict[str, Any] = {}
    for name, value in fields.items():
        if name not in known:
            continue
        kind = _MANNER_ENUMS.get(name)
        try:
            values[name] = kind(value) if kind is not None and value is not None else value
        except ValueError:
            continue
    return Manner(**values)
