"""What the stand-ins share: each runs from ``async with`` to its end, serving on 127.0.0.1 at a
free port (so tests can run in parallel)."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import ssl
from types import TracebackType
from typing import Self

from aiohttp import web


class StandIn(abc.ABC):
    """Started on entering ``async with``, stopped on leaving it (also when the test failed)."""

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


async def listen(
    app: web.Application,
    *,
    shutdown_timeout: float,
    handler_cancellation: bool = False,
    ssl_context: ssl.SSLContext | None = None,
) -> tuple[web.AppRunner, int]:
    """Serve ``app`` on 127.0.0.1 at a free port, without an access log: its runner (for
    ``cleanup()``) and the port."""
    runner = web.AppRunner(
        app,
        access_log=None,
        handler_cancellation=handler_cancellation,
        shutdown_timeout=shutdown_timeout,
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, site.port


async def hold_until_gone(request: web.Request, stopping: asyncio.Event) -> None:
    """Send nothing more until the client gives up (closes) or the stand-in stops (`stopping`),
    then cut the connection: a server gone silent."""
    transport = request.transport
    while transport is not None and not transport.is_closing():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), 0.05)
        if stopping.is_set():
            break
    if transport is not None:
        transport.abort()
