"""The audience's live events through a real Varnish: 200 listeners follow a live space's event
windows, the origin sees about one request per window, and every listener gets the same events.
(nginx passes /feed/ through uncached by design: its cache lock would hold listeners until a
window completes; docs/edges.md.)"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.edge.conftest import require
from tests.edge.servers import counter, run_edge
from tests.harness.causerie_process import CauserieProcess
from tests.harness.edges import RunningEdge

LISTENERS = 200
FOLLOW_SECONDS = 20.0  # crosses at least one window boundary (15 s windows)


@pytest.fixture(scope="module")
def varnish(
    origin: CauserieProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningEdge]:
    require("varnish")
    with run_edge("varnish", [origin.url], tmp_path_factory.mktemp("varnish-feed")) as running:
        yield running


async def follow(
    http: httpx.AsyncClient, space_id: str, until: float, broken: list[str] | None = None
) -> list[int]:
    """What a listener page does: the window in progress, then each next one, until `until`;
    with `broken`, a window whose connection broke is asked again, as web/static/feed.js does,
    and listed there."""
    url = (await http.get(f"/feed/{space_id}/now")).json()["url"]
    ids: list[int] = []
    while time.monotonic() < until:
        nxt = None
        try:
            async with http.stream("GET", url) as response:
                assert response.status_code == 200, url
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    item = json.loads(line)
                    if item["type"] == "end":
                        nxt = item["next"]
                    elif not ids or item["id"] > ids[-1]:
                        ids.append(item["id"])
        except httpx.TransportError as exc:
            if broken is None:
                raise
            broken.append(f"{url}: {exc!r}")
            continue
        assert nxt is not None, f"{url} ended without its end line"
        url = f"/feed/{space_id}/{nxt}.ndjson"
    return ids


@pytest.mark.slow
async def test_event_windows_cost_the_origin_one_request_per_window(
    varnish: RunningEdge, origin: CauserieProcess
) -> None:
    labels = {"kind": "window", "status": "200"}
    before = counter(origin, "causerie_feed_requests_total", **labels)
    limits = httpx.Limits(max_connections=LISTENERS + 10, max_keepalive_connections=LISTENERS)
    until = time.monotonic() + FOLLOW_SECONDS
    broken: list[str] = []
    async with httpx.AsyncClient(base_url=varnish.url, timeout=30, limits=limits) as http:
        heard = await asyncio.gather(
            *(follow(http, origin.space_id, until, broken) for _ in range(LISTENERS))
        )
    origin_requests = counter(origin, "causerie_feed_requests_total", **labels) - before
    windows = FOLLOW_SECONDS / 15 + 2
    report = (
        f"{LISTENERS} listeners, origin window requests {origin_requests:.0f}, "
        f"windows asked again after a broken connection {len(broken)} {broken[:3]}"
    )
    print(report)
    # The demo space's speakers take turns (`speaking` events): everyone heard the same ones.
    assert len(heard[0]) >= 3, report
    # Everyone heard the same events, in order, none missed; a listener whose last window
    # ended a moment after `until` (the end lines reach 200 readers over some milliseconds)
    # read one window more than another, so the shorter lists are the start of the longest.
    longest = max(heard, key=len)
    assert all(ids == longest[: len(ids)] for ids in heard), report
    assert min(len(ids) for ids in heard) >= 3, report
    assert origin_requests <= windows, report
    assert len(broken) <= LISTENERS // 50, report  # a keep-alive race now and then, no more


def test_a_complete_window_is_a_cache_hit(varnish: RunningEdge, origin: CauserieProcess) -> None:
    now = httpx.get(f"{varnish.url}/feed/{origin.space_id}/now", timeout=10).json()["window"]
    url = f"{varnish.url}/feed/{origin.space_id}/{now - 1}.ndjson"
    first = httpx.get(url, timeout=10)
    second = httpx.get(url, timeout=10)
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    # Varnish names two transactions in X-Varnish for a hit (this one and the one that fetched).
    assert len(second.headers["x-varnish"].split()) == 2
