"""LL-DASH through real edges in front of a real `causerie demo` node, on 127.0.0.1.

Varnish streams a segment the origin is still making to every listener that asks for it, with
one origin request per segment; nginx (which cannot: ticket 237) passes segments through,
streamed, and caches the rest.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass

import httpx
import pytest

from tests.api.test_dash import Received, fetch
from tests.edge.conftest import require
from tests.edge.servers import counter, run_edge
from tests.harness.causerie_process import CauserieProcess
from tests.harness.edges import RunningEdge

SEGMENTS = {"kind": "segment", "status": "200"}


@dataclass
class Template:
    """What a listener needs from the live manifest to ask for segments when they are due."""

    run: str
    period_start: float
    start_number: int
    duration: float
    offset: float

    def next_due(self, now: float) -> int:
        """The next segment to become available after `now`."""
        elapsed = now - self.period_start + self.offset - self.duration
        return self.start_number + int(elapsed // self.duration) + 1

    def due(self, number: int) -> float:
        """When segment `number` becomes available (Unix time): 23009-1 §5.3.9.5.3."""
        index = number - self.start_number
        return self.period_start + (index + 1) * self.duration - self.offset


def template_of(mpd: str) -> Template:
    segment_template = re.search(r"<SegmentTemplate [^>]*>", mpd)[0]
    return Template(
        run=re.search(r'<Period id="([^"]+)"', mpd)[1],
        period_start=float(re.search(r'<Period id="[^"]+" start="PT([0-9.]+)S"', mpd)[1]),
        start_number=int(re.search(r'startNumber="(\d+)"', segment_template)[1]),
        duration=int(re.search(r'duration="(\d+)"', segment_template)[1]) / 48000,
        offset=float(re.search(r'availabilityTimeOffset="([0-9.]+)"', segment_template)[1]),
    )


async def crowd(
    edge: RunningEdge, origin: CauserieProcess, listeners: int, segments: int
) -> list[tuple[int, list[Received], bytes]]:
    """`listeners` ask for each of the next `segments` segments through the edge, all at the
    moment it becomes available: each segment's answers, and its complete bytes (from the
    origin, afterwards)."""
    async with httpx.AsyncClient(timeout=10) as client:
        manifest = await client.get(f"{edge.url}/dash/{origin.space_id}/manifest.mpd")
        assert manifest.status_code == 200, manifest.text
        template = template_of(manifest.text)
        number = template.next_due(time.time())
        results = []
        for n in range(number, number + segments):
            await asyncio.sleep(max(0.0, template.due(n) - time.time()))
            path = f"/dash/{origin.space_id}/{template.run}/{n}.m4s"
            answers = await asyncio.gather(*(fetch(edge.url, path) for _ in range(listeners)))
            complete = await client.get(origin.url + path)
            assert complete.status_code == 200
            assert "content-length" in complete.headers  # complete by now
            results.append((n, answers, complete.content))
    return results


async def test_varnish_streams_a_segment_in_progress_to_all_with_one_origin_request(
    origin: CauserieProcess, tmp_path
) -> None:
    require("varnish")
    listeners, segments = 200, 2
    with run_edge("varnish", [origin.url], tmp_path / "varnish", listeners=listeners) as edge:
        before = counter(origin, "causerie_dash_requests_total", **SEGMENTS)
        results = await crowd(edge, origin, listeners, segments)
        requests = counter(origin, "causerie_dash_requests_total", **SEGMENTS) - before
    requests -= segments  # the test's own, for the complete bytes
    assert requests == segments  # exactly one per segment, whatever the audience
    for number, answers, complete in results:
        for answer in answers:
            assert answer.status == 200, number
            assert answer.body == complete
            assert answer.headers["access-control-allow-origin"] == "*"
        # Streamed while it was made: every listener had its first chunk seconds before the
        # segment was complete (its chunks came over about a segment duration).
        spread = sorted(a.chunks[-1][0] - a.chunks[0][0] for a in answers)
        assert spread[len(spread) // 10] > 2.5, spread[:5]
        assert sum("HIT" in a.headers.get("x-cache", "") for a in answers) >= listeners - 1


async def test_nginx_passes_dash_segments_through_as_they_are_made(
    origin: CauserieProcess, tmp_path
) -> None:
    require("nginx")
    listeners = 10
    with run_edge("nginx", [origin.url], tmp_path / "nginx") as edge:
        before = counter(origin, "causerie_dash_requests_total", **SEGMENTS)
        results = await crowd(edge, origin, listeners, 1)
        requests = counter(origin, "causerie_dash_requests_total", **SEGMENTS) - before - 1
    # Not cached: one origin request per listener (Varnish is the edge for LL-DASH) ...
    assert requests == listeners
    ((_, answers, complete),) = results
    for answer in answers:
        assert answer.status == 200
        assert answer.body == complete
        # ... but streamed: nobody waits for the whole segment.
        assert answer.chunks[-1][0] - answer.chunks[0][0] > 2.5


@pytest.mark.parametrize("kind", ["nginx", "varnish"])
def test_manifest_and_init_are_cached_the_clock_never(
    kind: str, origin: CauserieProcess, tmp_path
) -> None:
    require(kind)
    with (
        run_edge(kind, [origin.url], tmp_path / kind) as edge,
        httpx.Client(base_url=edge.url, timeout=10) as client,
    ):
        path = f"/dash/{origin.space_id}/manifest.mpd"
        first = client.get(path)
        assert first.status_code == 200, first.text
        assert first.headers["access-control-allow-origin"] == "*"
        again = client.get(path)
        assert again.headers["x-cache"] == "HIT" and again.content == first.content
        run = template_of(first.text).run
        init = f"/dash/{origin.space_id}/{run}/init.mp4"
        assert client.get(init).status_code == 200
        assert client.get(init).headers["x-cache"] == "HIT"
        clocks = [client.get("/time") for _ in range(2)]
        assert all(
            c.status_code == 200 and c.headers["cache-control"] == "no-store" for c in clocks
        )
        assert all(c.headers.get("x-cache") not in ("HIT", "STALE") for c in clocks)
        # A segment that is not there is not remembered as missing.
        missing = client.get(f"/dash/{origin.space_id}/{run}/1.m4s")
        assert missing.status_code == 404
        again = client.get(f"/dash/{origin.space_id}/{run}/1.m4s")
        assert again.status_code == 404 and again.headers.get("x-cache") != "HIT"
