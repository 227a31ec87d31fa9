"""An edge dies (`kill -9` of nginx, master and worker): listeners on another edge in front of
the same origin are unaffected; they get every part, without an error.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from tests.edge.conftest import require
from tests.edge.listeners import Follower
from tests.edge.servers import run_edge, run_origin
from tests.harness.edges import RunningEdge
from tests.harness.polling import wait_until
from tests.harness.processes import children

pytestmark = pytest.mark.slow

SECONDS = 8.0
KILL_AFTER = 3.0


def kill_edge(edge: RunningEdge) -> None:
    """SIGKILL the edge's processes (nginx's master and its workers), as a crash would."""
    workers = children(edge.process.pid)
    assert workers, "nginx has no worker process?"
    for pid in [edge.process.pid, *workers]:
        os.kill(pid, signal.SIGKILL)
    edge.process.wait(timeout=5)
    wait_until(lambda: not any(_alive(pid) for pid in workers), 5, "the nginx workers gone")


def _alive(pid: int) -> bool:
    """Whether `pid` still runs (a zombie waiting to be reaped does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_listeners_on_another_edge_are_unaffected(tmp_path: Path) -> None:
    require("nginx")
    with (
        run_origin(tmp_path / "origin") as origin,
        run_edge("nginx", [origin.url], tmp_path / "a") as doomed,
        run_edge("nginx", [origin.url], tmp_path / "b") as survivor,
    ):
        until = time.monotonic() + SECONDS
        on_doomed = [Follower(doomed.port, origin.playlist_path) for _ in range(3)]
        on_survivor = [Follower(survivor.port, origin.playlist_path) for _ in range(3)]
        tasks = [asyncio.create_task(f.follow(until)) for f in on_doomed + on_survivor]
        await asyncio.sleep(KILL_AFTER)
        await asyncio.to_thread(kill_edge, doomed)
        killed_at = time.monotonic()
        await asyncio.gather(*tasks)

    # The dead edge's listeners noticed (and would move to another edge, e.g. by DNS).
    assert all(f.errors > 0 for f in on_doomed)
    assert all(max(f.received.values()) < killed_at + 0.5 for f in on_doomed)
    # The other edge's listeners got every part, in order, without one error.
    for follower in on_survivor:
        parts = sorted(follower.received)
        assert follower.errors == 0, follower
        assert parts[-1][0] * 9 + parts[-1][1] - parts[0][0] * 9 - parts[0][1] == len(parts) - 1
        assert max(follower.received.values()) > killed_at + SECONDS - KILL_AFTER - 2
        assert len(parts) >= 0.8 * (SECONDS - 1) / 0.2133, len(parts)
