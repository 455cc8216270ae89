"""The real redis-server that the distributed mode's tests run against (tests/redis_server.py)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError

from tests import redis_server as helper
from tests.redis_server import RedisServer


async def test_answers_ping_with_the_production_durability_settings(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    async with redis_server.client() as client:
        assert await client.ping() is True
        info = await client.info("server")
        assert info["process_id"] == redis_server.pid
        assert info["tcp_port"] == redis_server.port
        config = await client.config_get("*")
    assert config["appendonly"] == "yes"
    assert config["appendfsync"] == "everysec"
    assert config["save"] == ""
    assert config["bind"] == "127.0.0.1"
    assert config["protected-mode"] == "yes"
    assert config["daemonize"] == "no"
    assert Path(str(config["dir"])) == (tmp_path / "redis").resolve()


async def test_data_written_with_appendonly_survives_a_restart(redis_server: RedisServer) -> None:
    port, pid = redis_server.port, redis_server.pid
    async with redis_server.client() as client:
        await client.set("clip:1", "file-id-1")
        await client.xadd("jobs", {"url": "https://vm.tiktok.com/ZM123/"})
    await redis_server.restart()
    assert redis_server.port == port
    assert redis_server.pid != pid
    # No RDB snapshot is written (save ""): what came back came from the AOF.
    assert not (redis_server.directory / "dump.rdb").exists()
    assert any((redis_server.directory / "appendonlydir").iterdir())
    async with redis_server.client() as client:
        assert await client.get("clip:1") == b"file-id-1"
        assert await client.xlen("jobs") == 1


async def test_a_killed_server_refuses_clients_until_it_is_started_again(
    redis_server: RedisServer,
) -> None:
    url = redis_server.url
    async with redis.asyncio.Redis.from_url(url) as client:
        await client.set("k", "v")
        await redis_server.kill()
        assert not redis_server.running
        with pytest.raises(RedisConnectionError):
            await client.ping()
        await redis_server.start()
        assert redis_server.url == url
        # The same client reconnects to the same address, and the data came back from the AOF.
        assert await client.ping() is True
        assert await client.get("k") == b"v"


async def test_two_servers_side_by_side_get_their_own_ports(tmp_path: Path) -> None:
    async with (
        RedisServer(tmp_path / "a") as first,
        RedisServer(tmp_path / "b") as second,
    ):
        assert first.port != second.port
        async with first.client() as a, second.client() as b:
            await a.set("who", "first")
            assert await b.get("who") is None
            assert await a.get("who") == b"first"


async def test_servers_started_at_once_get_different_ports(tmp_path: Path) -> None:
    servers = [RedisServer(tmp_path / str(n)) for n in range(3)]
    try:
        await asyncio.gather(*(server.start() for server in servers))
        assert len({server.port for server in servers}) == 3
    finally:
        await asyncio.gather(*(server.stop() for server in servers))


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port that someone else listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


async def test_a_port_taken_in_the_meantime_is_skipped(
    tmp_path: Path, taken_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_free_port = helper.free_port
    offered = iter([taken_port])
    monkeypatch.setattr(helper, "free_port", lambda: next(offered, None) or real_free_port())
    async with RedisServer(tmp_path / "redis") as server:
        assert server.port != taken_port
        async with server.client() as client:
            assert await client.ping() is True
    assert "Address already in use" in server.log_path.read_text()


async def test_leaving_the_context_stops_and_reaps_the_server(tmp_path: Path) -> None:
    async with RedisServer(tmp_path / "redis") as server:
        process = server._process
        assert process is not None
        assert server.running
    assert not server.running
    assert process.returncode == 0  # a clean shutdown, not a kill
    with pytest.raises(ConnectionRefusedError):
        await asyncio.open_connection("127.0.0.1", server.port)
