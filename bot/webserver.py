"""The process's own HTTP server: /healthz, /metrics, and routes other parts add (the webhook).

Access logs are off: a load balancer probing /healthz every few seconds and Telegram posting
updates would fill the log with lines that tell the operator nothing.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.metrics import Metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Health:
    """One check's verdict; `detail` says what is wrong (or, when ok, anything useful)."""

    name: str
    ok: bool
    detail: str = ""


HealthCheck = Callable[[], Awaitable[Health]]
"""An async callable judging one dependency. One that raises or hangs counts as failing, under
its function's `__name__`, so name the function after what it checks."""


class OpsServer:
    """Serves health, metrics and added routes on (host, port); port 0 picks a free one."""

    def __init__(
        self,
        host: str,
        port: int,
        metrics: Metrics,
        checks: Iterable[HealthCheck] = (),
        *,
        check_timeout: float = 2.0,
        shutdown_timeout: float = 5.0,
    ) -> None:
        self._host = host
        self._port = port
        self._metrics = metrics
        self._checks = list(checks)
        self._check_timeout = check_timeout
        self._shutdown_timeout = shutdown_timeout
        self._failing: set[str] = set()
        self._app = web.Application()
        self._app.router.add_get("/healthz", self._healthz)
        self._app.router.add_get("/metrics", self._serve_metrics)
        self._runner: web.AppRunner | None = None
        self._bound_port: int | None = None
        self._started = False

    def add_route(self, method: str, path: str, handler: Handler) -> None:
        """Serve `handler` at `path` too; only before `start()` (aiohttp freezes the router)."""
        self._refuse_after_start("add a route")
        self._app.router.add_route(method, path, handler)

    def add_check(self, check: HealthCheck) -> None:
        self._checks.append(check)

    @property
    def port(self) -> int:
        """The bound port (the real one when constructed with 0); only while started."""
        if self._bound_port is None:
            raise RuntimeError("OpsServer is not running")
        return self._bound_port

    async def start(self) -> None:
        self._refuse_after_start("start again")
        self._started = True
        runner = web.AppRunner(self._app, access_log=None, shutdown_timeout=self._shutdown_timeout)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._bound_port = int(runner.addresses[0][1])
        log.info("Serving /healthz and /metrics on %s:%d", self._host, self._bound_port)

    async def stop(self) -> None:
        """Close the socket and wait (up to `shutdown_timeout`) for requests in flight."""
        runner, self._runner = self._runner, None
        self._bound_port = None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> OpsServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def health(self) -> list[Health]:
        """Run every check at once; a check that raises or overruns `check_timeout` fails."""
        results = await asyncio.gather(*(self._run(check) for check in self._checks))
        self._log_changes(results)
        return results

    async def _run(self, check: HealthCheck) -> Health:
        name = getattr(check, "__name__", None) or repr(check)
        try:
            async with asyncio.timeout(self._check_timeout):
                return await check()
        except TimeoutError:
            return Health(name, False, f"no answer within {self._check_timeout:g} s")
        except Exception as exc:
            log.debug("Health check %s raised", name, exc_info=True)
            # The type only: an exception's text may hold a URL, and URLs here can hold a token.
            return Health(name, False, f"raised {type(exc).__name__}")

    def _log_changes(self, results: list[Health]) -> None:
        """Log when a check starts or stops failing, not at every probe."""
        failing = {h.name for h in results if not h.ok}
        for h in results:
            if not h.ok and h.name not in self._failing:
                log.warning("Health check %s failing: %s", h.name, h.detail)
        for name in sorted(self._failing - failing):
            log.info("Health check %s passes again", name)
        self._failing = failing

    async def _healthz(self, request: web.Request) -> web.Response:
        failing = [h for h in await self.health() if not h.ok]
        if not failing:
            return web.Response(text="ok\n")
        body = "".join(_line(h) + "\n" for h in failing)
        return web.Response(status=503, text=body)

    async def _serve_metrics(self, request: web.Request) -> web.Response:
        return web.Response(
            body=self._metrics.render(), headers={"Content-Type": self._metrics.content_type}
        )

    def _refuse_after_start(self, what: str) -> None:
        if self._started:
            raise RuntimeError(f"cannot {what}: the OpsServer was already started")


def _line(health: Health) -> str:
    detail = " ".join(health.detail.split())
    return f"{health.name}: {detail}" if detail else health.name
