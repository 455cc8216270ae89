"""PTB's rate limiter port, over the core's `SendLimits`: Telegram's flood limits counted for
the whole bot, across every worker when the windows are in Redis (DESIGN.md section 13: PTB's
own AIORateLimiter counts per process)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from telegram._utils.types import JSONDict
from telegram.ext import BaseRateLimiter

from bot.ports import SendLimits


class SharedRateLimiter(BaseRateLimiter[int]):
    """Waits for room in the windows before each call; a 429 that still comes is the core's to
    retry (bot.retry), so it is raised as it is."""

    def __init__(self, limits: SendLimits) -> None:
        self._limits = limits

    async def initialize(self) -> None:
        return None

    async def shutdown(self) -> None:
        return None

    async def process_request(
        self,
        callback: Callable[..., Coroutine[Any, Any, bool | JSONDict | list[JSONDict]]],
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> bool | JSONDict | list[JSONDict]:
        chat_id = data.get("chat_id")
        if chat_id is not None and endpoint in MESSAGE_ENDPOINTS:
            await self._limits.admit(_group(chat_id))
        return await callback(*args, **kwargs)


# The calls that put a message in a chat or change one: what Telegram's flood limits count
# (about 30 messages a second, 20 a minute in a group). A chat action, a reaction, a deletion or
# a question about a member is no message: it neither waits for room nor takes any, so twenty
# new clips at once do not queue their videos behind twenty "sending video…" actions.
MESSAGE_ENDPOINTS = frozenset(
    {
        "sendMessage",
        "sendVideo",
        "sendAudio",
        "sendPhoto",
        "sendMediaGroup",
        "sendDocument",
        "sendAnimation",
        "sendVoice",
        "sendSticker",
        "copyMessage",
        "forwardMessage",
        "editMessageText",
        "editMessageMedia",
        "editMessageCaption",
    }
)


def _group(chat_id: object) -> str | None:
    """Groups and channels have negative ids (or an @username); private chats positive ones."""
    with contextlib.suppress(ValueError, TypeError):
        chat_id = int(str(chat_id))
    if isinstance(chat_id, int):
        return str(chat_id) if chat_id < 0 else None
    return str(chat_id)
