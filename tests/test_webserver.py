"""OpsServer over real HTTP on 127.0.0.1: health, metrics, added routes, and a clean stop."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics
from bot.webserver import Health, HealthCheck, OpsServer


async def queue_ok() -> Health:
    return Health("queue", True, "2 workers")


async def disk_full() -> Health:
    return Health("disk", False, "DATA_DIR has 12 MB left")


async def redis_ping() -> Health:
    raise ConnectionRefusedError("redis://user:hunter2@10.0.0.5:6379")


async def slow_upstream() -> Health:
    await asyncio.sleep(30)
    return Health("slow_upstream", True)


def served(metrics: Metrics, *checks: HealthCheck) -> OpsServer:
    return OpsServer("127.0.0.1", 0, metrics, checks, check_timeout=0.2)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5, trust_env=False) as c:
        yield c


def url(server: OpsServer, path: str) -> str:
    return f"http://127.0.0.1:{server.port}{path}"


async def test_healthz_ok_when_every_check_passes(client: httpx.AsyncClient) -> None:
    async with served(Metrics(), queue_ok) as server:
        response = await client.get(url(server, "/healthz"))
    assert response.status_code == 200
    assert response.text == "ok\n"


async def test_healthz_ok_without_checks(client: httpx.AsyncClient) -> None:
    async with served(Metrics()) as server:
        response = await client.get(url(server, "/healthz"))
    assert response.status_code == 200


async def test_healthz_names_the_failing_check(client: httpx.AsyncClient) -> None:
    async with served(Metrics(), queue_ok, disk_full) as server:
        response = await client.get(url(server, "/healthz"))
    assert response.status_code == 503
    assert response.text.splitlines() == ["disk: DATA_DIR has 12 MB left"]


async def test_a_check_that_raises_fails_without_showing_its_message(
    client: httpx.AsyncClient,
) -> None:
    async with served(Metrics(), queue_ok, redis_ping) as server:
        response = await client.get(url(server, "/healthz"))
    assert response.status_code == 503
    assert response.text.splitlines() == ["redis_ping: raised ConnectionRefusedError"]
    assert "hunter2" not in response.text


async def test_a_check_that_hangs_fails_after_the_timeout(client: httpx.AsyncClient) -> None:
    async with served(Metrics(), queue_ok, slow_upstream, disk_full) as server:
        loop = asyncio.get_running_loop()
        started = loop.time()
        response = await client.get(url(server, "/healthz"))
        took = loop.time() - started
    assert response.status_code == 503
    lines = response.text.splitlines()
    assert len(lines) == 2
    assert lines[0].startswith("slow_upstream: no answer within 0.2 s")
    assert lines[1].startswith("disk:")
    # Checks run at once: the hang costs one timeout, not one per check.
    assert took < 2


async def test_a_check_added_later_is_run(client: httpx.AsyncClient) -> None:
    async with served(Metrics(), queue_ok) as server:
        assert (await client.get(url(server, "/healthz"))).status_code == 200
        server.add_check(disk_full)
        assert (await client.get(url(server, "/healthz"))).status_code == 503


async def test_metrics_exposes_counted_values(client: httpx.AsyncClient) -> None:
    metrics = Metrics()
    async with served(metrics) as server:
        metrics.request("telegram", "video")
        metrics.request("telegram", "video")
        metrics.cache_hit("telegram")
        response = await client.get(url(server, "/metrics"))

    assert response.status_code == 200
    assert response.headers["content-type"] == Metrics.content_type
    found = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }
    requests = ("reshare_requests_total", (("outcome", "video"), ("platform", "telegram")))
    assert found[requests] == 2
    assert found[("reshare_cache_hits_total", (("platform", "telegram"),))] == 1


async def test_two_servers_serve_their_own_metrics(client: httpx.AsyncClient) -> None:
    busy, idle = Metrics(), Metrics()
    busy.joined()
    async with served(busy) as one, served(idle) as two:
        assert one.port != two.port
        one_text = (await client.get(url(one, "/metrics"))).text
        two_text = (await client.get(url(two, "/metrics"))).text
    assert "reshare_single_flight_joins_total 1.0" in one_text
    assert "reshare_single_flight_joins_total 0.0" in two_text


async def test_an_added_route_is_served(client: httpx.AsyncClient) -> None:
    received: list[bytes] = []

    async def webhook(request: web.Request) -> web.Response:
        received.append(await request.read())
        return web.json_response({"accepted": True})

    server = served(Metrics())
    server.add_route("POST", "/telegram/hook", webhook)
    async with server:
        response = await client.post(url(server, "/telegram/hook"), content=b'{"update_id":1}')
        wrong_method = await client.get(url(server, "/telegram/hook"))
    assert response.status_code == 200
    assert response.json() == {"accepted": True}
    assert received == [b'{"update_id":1}']
    assert wrong_method.status_code == 405


async def test_routes_cannot_be_added_after_start() -> None:
    async def handler(request: web.Request) -> web.Response:
        return web.Response()

    async with served(Metrics()) as server:
        with pytest.raises(RuntimeError, match="already started"):
            server.add_route("GET", "/late", handler)


def can_listen(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
            sock.listen()
        except OSError:
            return False
        return True


async def test_stop_frees_the_port_and_is_idempotent(client: httpx.AsyncClient) -> None:
    server = served(Metrics())
    await server.start()
    port = server.port
    assert (await client.get(url(server, "/healthz"))).status_code == 200
    assert not can_listen(port)

    await server.stop()
    await server.stop()

    assert can_listen(port)
    with pytest.raises(httpx.ConnectError):
        await client.get(f"http://127.0.0.1:{port}/healthz")
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.port


async def test_stop_before_start_is_harmless() -> None:
    await served(Metrics()).stop()


async def test_access_log_is_quiet(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    async with served(Metrics()) as server:
        caplog.clear()
        await client.get(url(server, "/healthz"))
        await client.get(url(server, "/metrics"))
    assert not [r for r in caplog.records if r.name.startswith("aiohttp.access")]
    assert "GET /healthz" not in caplog.text
