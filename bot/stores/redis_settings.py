"""The distributed chat settings: one Redis key per chat, read through a memory copy that every
process drops when any process changes the chat (a pub/sub message names it)."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from redis.asyncio import Redis

from bot.chat_settings import ChatSettings
from bot.stores.redis_values import text

log = logging.getLogger(__name__)


class RedisChatSettings:
    """Implements `ChatSettingsStore` across processes.

    Until its listener is subscribed (`start`), and whenever the subscription is down, nothing is
    kept in memory: every read goes to Redis, so no change is ever missed.
    """

    def __init__(self, redis: Redis, *, prefix: str = "reshare:") -> None:
        self._redis = redis
        self._prefix = f"{prefix}settings:"
        self._channel = f"{prefix}settings-changed"
        self._known: dict[str, ChatSettings] = {}
        self._listening = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Subscribe to changes; from then on reads are kept in memory."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen(), name="chat-settings-changes")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._listening.wait(), 5.0)

    async def get(self, chat: str) -> ChatSettings:
        known = self._known.get(chat)
        if known is not None and self._listening.is_set():
            return known
        value = await self._redis.get(self._prefix + chat)
        found = ChatSettings.from_json(text(value)) if value is not None else ChatSettings()
        if self._listening.is_set():
            self._known[chat] = found
        return found

    async def put(self, chat: str, settings: ChatSettings) -> None:
        if settings == ChatSettings():
            await self._redis.delete(self._prefix + chat)
        else:
            await self._redis.set(self._prefix + chat, settings.to_json())
        self._known.pop(chat, None)
        await self._redis.publish(self._channel, chat)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(BaseException):
                await self._listener
            self._listener = None

    async def _listen(self) -> None:
        """Drop a chat's copy when any process changed it; all copies while not subscribed."""
        while True:
            pubsub = self._redis.pubsub()
            try:
                await pubsub.subscribe(self._channel)
                self._known.clear()
                self._listening.set()
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        self._known.pop(text(message["data"]), None)
            except asyncio.CancelledError:
                raise
            except Exception as err:
                log.warning("chat settings: change notices lost (%r): reading Redis", err)
            finally:
                self._listening.clear()
                self._known.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(1.0)
