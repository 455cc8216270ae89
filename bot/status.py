"""The status a requester sees while a long job runs ("Downloading… 45%"): when it appears, how
often it may change, and that it goes once the answer is out. How it looks is the adapter's
(`Replier.status`)."""

from __future__ import annotations

import asyncio
import logging

from bot.model import Manner, Origin
from bot.ports import Replier
from bot.progress import Progress, shown_alike

log = logging.getLogger(__name__)

# A request answered sooner shows only the chat action.
STATUS_AFTER_S = 3.0
# At most one status call per request this often, counted from the end of the last one, so
# the platform never sees two closer together (Telegram: about one message a second per chat,
# twenty a minute per group, edits included).
STATUS_EVERY_S = 3.0
# Between calls, how often the job's progress is looked at for a change worth showing.
LOOK_EVERY_S = 0.5
# A status call under way when the answer is out is let end (for this long at most, then
# cancelled), so that removing the status never races a status message still being sent.
SETTLE_S = 10.0


class StatusLine:
    """One request's status: shown once the request has waited STATUS_AFTER_S, changed only
    when it reads differently and at most every STATUS_EVERY_S, removed by `clear`."""

    def __init__(self, replier: Replier, origin: Origin, manner: Manner) -> None:
        self._replier = replier
        self._origin = origin
        self._manner = manner
        self._loop = asyncio.get_running_loop()
        self._next_at = self._loop.time() + STATUS_AFTER_S
        self._shown: Progress | None = None

    def due_in(self) -> float:
        """Seconds until a status may be shown (0 when it may be now)."""
        return max(0.0, self._next_at - self._loop.time())

    def next_look_in(self) -> float:
        """Seconds until the progress is worth looking at again."""
        return self.due_in() or LOOK_EVERY_S

    async def show(self, progress: Progress | None) -> None:
        """Show `progress` if it is time and it reads differently from what is shown."""
        if progress is None or self.due_in() > 0 or shown_alike(progress, self._shown):
            return
        call = asyncio.ensure_future(self._replier.status(self._origin, progress, self._manner))
        try:
            await asyncio.shield(call)
            self._shown = progress
        except asyncio.CancelledError:
            await asyncio.wait([call], timeout=SETTLE_S)
            if not call.done():
                # Not let outlive `clear`: a status landing after it would stay for good.
                call.cancel()
            elif not call.cancelled():
                call.exception()  # seen: it failed after the answer, nothing to do
            raise
        except Exception as err:
            log.info("status not shown: %r", err)
        finally:
            self._next_at = self._loop.time() + STATUS_EVERY_S

    async def clear(self) -> None:
        """Remove the status (the replier knows whether there is one: it may keep state for
        the request until now); never raises."""
        try:
            await self._replier.clear_status(self._origin)
        except Exception as err:
            log.info("status not removed: %r", err)
