"""Replies of redis-py as plain values (its types admit str or bytes for every reply)."""

from __future__ import annotations


def text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def raw(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    raise TypeError(f"expected bytes from Redis, got {type(value).__name__}")
