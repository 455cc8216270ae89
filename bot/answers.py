"""What was answered: every answer a replier sends is noted in the journal as it goes out, so
neither a restart nor another worker answers a link twice, and shutdown knows whom it may
still tell "restarting"."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from bot.model import Album, Audio, CachedMedia, Manner, Media, Origin, Reason, VideoRequest
from bot.ports import Replier
from bot.progress import Progress
from bot.retry import Unconfirmed

log = logging.getLogger(__name__)

_T = TypeVar("_T")

# Noting an answer in a journal that is out of reach (Redis restarting) is tried for this long.
NOTE_DEADLINE_S = 30.0
NOTE_FIRST_PAUSE_S = 0.1
NOTE_MAX_PAUSE_S = 2.0


async def noted(note: Callable[[Origin], Awaitable[None]], origin: Origin) -> None:
    """Write an answer down, waiting out a Redis restart: an answer sent but not noted would be
    sent again by the next run of its job."""
    pause = NOTE_FIRST_PAUSE_S
    async with asyncio.timeout(NOTE_DEADLINE_S):
        while True:
            try:
                await note(origin)
                return
            except Exception as err:
                log.warning("could not note an answer (%r): again in %.1f s", err, pause)
            await asyncio.sleep(pause)
            pause = min(NOTE_MAX_PAUSE_S, pause * 2)


class AnswerWatch:
    """Sees every answer sent, so shutdown tells "restarting" only where nothing may be left
    unsaid twice: `on_answered` hears of each link answered (links are answered in order)."""

    def __init__(self, on_answered: Callable[[Origin], Awaitable[None]]) -> None:
        self._on_answered = on_answered
        self._answered: dict[Origin, int] = {}
        self._cut_off: set[Origin] = set()

    def watch(self, replier: Replier) -> Replier:
        return _WatchedReplier(replier, self)

    async def answered(self, origin: Origin) -> None:
        self._answered[origin] = self._answered.get(origin, 0) + 1
        try:
            await noted(self._on_answered, origin)
        except Exception as err:
            # The answer is out: failing to note it must not make the service answer again.
            log.warning("could not note an answer in the journal: %r", err)

    def cut_off(self, origin: Origin) -> None:
        self._cut_off.add(origin)

    def settle(self, request: VideoRequest) -> bool:
        """Forget the request; True when it needs no notice: every link was answered, or an
        answer was cut off mid-send (the platform may have it)."""
        origin = request.origin
        cut_off = origin in self._cut_off
        self._cut_off.discard(origin)
        answered = self._answered.pop(origin, 0)
        return cut_off or answered >= len(request.links)


class _WatchedReplier:
    """A Replier that reports each answer sent or unconfirmed, and the origin of one cancelled
    mid-call.

    The service answers each link with exactly one successful call of those after `working`.
    """

    def __init__(self, replier: Replier, watch: AnswerWatch) -> None:
        self._replier = replier
        self._watch = watch

    async def working(self, origin: Origin) -> None:
        await self._replier.working(origin)

    async def status(self, origin: Origin, progress: Progress, manner: Manner) -> None:
        # Not an answer: a status says nothing of whether the link was answered.
        await self._replier.status(origin, progress, manner)

    async def clear_status(self, origin: Origin, *, earlier: bool = False) -> None:
        await self._replier.clear_status(origin, earlier=earlier)

    async def deliver(self, origin: Origin, media: Media, manner: Manner) -> str | None:
        return await self._answer(origin, self._replier.deliver(origin, media, manner))

    async def resend(self, origin: Origin, cached: CachedMedia, manner: Manner) -> None:
        await self._answer(origin, self._replier.resend(origin, cached, manner))

    async def deliver_audio(self, origin: Origin, audio: Audio, manner: Manner) -> str | None:
        return await self._answer(origin, self._replier.deliver_audio(origin, audio, manner))

    async def resend_audio(self, origin: Origin, cached: CachedMedia, manner: Manner) -> None:
        await self._answer(origin, self._replier.resend_audio(origin, cached, manner))

    async def deliver_album(self, origin: Origin, album: Album, manner: Manner) -> None:
        await self._answer(origin, self._replier.deliver_album(origin, album, manner))

    async def fail(self, origin: Origin, reason: Reason, manner: Manner) -> None:
        await self._answer(origin, self._replier.fail(origin, reason, manner))

    async def _answer(self, origin: Origin, sending: Awaitable[_T]) -> _T:
        try:
            sent = await sending
        except asyncio.CancelledError:
            self._watch.cut_off(origin)
            raise
        except Unconfirmed:
            # It may have arrived, and the service takes it as the link's answer (bot.retry):
            # a restart must not send it again.
            await self._watch.answered(origin)
            raise
        await self._watch.answered(origin)
        return sent
