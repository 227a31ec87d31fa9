"""The harness itself: waits that end, stops that stop, a durable Redis that keeps its data,
and in-process nodes served the way `causerie serve` serves."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import redis

from tests.harness.in_process import run_node
from tests.harness.polling import eventually, wait_until
from tests.harness.ports import stable_port
from tests.harness.processes import start_process, stop
from tests.harness.redis_server import RedisServer


def test_wait_until_returns_the_time_it_took_and_fails_with_what_it_awaited() -> None:
    calls = []
    took = wait_until(lambda: calls.append(1) or len(calls) >= 3, 5, every=0.01)
    assert len(calls) == 3 and 0.015 <= took < 1
    with pytest.raises(AssertionError, match=r"^the door \(open\): not within 0\.05 s$"):
        wait_until(lambda: False, 0.05, lambda: "the door (open)", every=0.01)


async def test_eventually_takes_plain_and_async_conditions() -> None:
    ticks = []

    async def ticked() -> bool:
        ticks.append(1)
        return len(ticks) >= 2

    assert await eventually(ticked, 5, every=0.01) < 1
    assert await eventually(lambda: True, 0.01) < 0.01
    with pytest.raises(AssertionError, match=r"^never: not within 0\.05 s$"):
        await eventually(lambda: asyncio.sleep(0), 0.05, "never", every=0.01)  # awaits to None


def test_stop_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    code = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('up')\n"
        "time.sleep(60)\n"
    )
    log = tmp_path / "stubborn.log"
    process = start_process([sys.executable, "-c", code], log)
    wait_until(lambda: "up" in log.read_text(), 10)  # the handler is installed
    stop(process, timeout=0.3)
    assert process.returncode == -9


def test_a_durable_redis_keeps_an_acknowledged_write_across_a_kill(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, stable_port(), durable=True)
    server.start()
    try:
        with redis.Redis.from_url(server.url) as client:
            client.set("kept", "yes")
        server.kill9()
        server.start()
        with redis.Redis.from_url(server.url) as client:
            assert client.get("kept") == b"yes"
    finally:
        server.stop()
    assert server.process is not None and server.process.poll() is not None


async def test_an_in_process_node_runs_the_shipped_server(tmp_path: Path) -> None:
    async with run_node(tmp_path / "data") as node:
        config = node.server.config
        # causerie.cli.build_server: the header and body deadlines, keep-alive, proxies.
        # The join lane (api/join_lane.py) is the timed protocol with joins answered inside.
        assert config.http.__name__ == "JoinLaneProtocol"
        assert "TimedHttpToolsProtocol" in [base.__name__ for base in config.http.__mro__]
        assert config.timeout_keep_alive == 30
        assert config.proxy_headers is False
        assert config.lifespan == "on"


def test_a_stable_port_is_below_the_ephemeral_range() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert 1024 <= stable_port() < low
