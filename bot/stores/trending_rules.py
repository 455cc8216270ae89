"""What both trending stores agree on: how long and how many reshares a chat keeps, how a person
is written down (a pseudonym, never the user id)."""

from __future__ import annotations

import hashlib
import hmac

KEEP_S = 7 * 24 * 3600.0
MAX_EVENTS = 10_000


def pseudonym(key: bytes, chat: str, user: str) -> str:
    """A user as kept for one chat: enough to count different people, not to name them, and not
    the same across chats (so two chats' counts cannot be joined on it). Keyed with a secret the
    store does not hold: user ids are few enough to try every one against a plain hash."""
    message = f"{len(chat)}:{chat}\0{user}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:16]


def check_limits(keep_s: float, max_events: int) -> None:
    if keep_s <= 0:
        raise ValueError(f"keep_s must be positive, got {keep_s}")
    if max_events < 1:
        raise ValueError(f"max_events must be at least 1, got {max_events}")
