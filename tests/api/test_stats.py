"""The audience numbers through HTTP, on a real node whose clock the test turns by hand."""

from __future__ import annotations

import asyncio
import csv
import io
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import account
from tests.harness.in_process import RunningNode

CHROMIUM = "/usr/bin/chromium"


class Clock:
    """A settable clock for the node (`Services.clock`)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def minute_aligned_past(minutes: int = 30) -> float:
    """A recent moment on a minute boundary (tokens are checked against the node's clock)."""
    return float((int(time.time()) // 60) * 60 - minutes * 60)


@pytest.fixture
def clock(node: RunningNode) -> Clock:
    fake = Clock(minute_aligned_past())
    node.app.services.clock = fake
    return fake


def iso(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).isoformat().replace("+00:00", "Z")


async def live_space(client: httpx.AsyncClient, node: RunningNode, title: str = "Numbers") -> str:
    host = account(node.data_dir, user="u-host")
    space = (await client.post("/api/spaces", json={"title": title}, headers=host)).json()
    started = await client.post(f"/api/spaces/{space['id']}/start", headers=host)
    assert started.status_code == 200, started.text
    return space["id"]


async def scripted_program(client: httpx.AsyncClient, node: RunningNode, clock: Clock) -> str:
    """The timeline of tests/counting/test_stats.py, through HTTP, starting at T0 = the clock.

    A joins at +1 and heartbeats every 15 s to the end; B joins at +20, heartbeats at +35,
    +50, +65, then leaves; D joins at +70 and never heartbeats; C joins at +100 and heartbeats
    to the end; the host ends the space at +180; one more join at +190 is refused (409).
    """
    t0 = clock.now
    space_id = await live_space(client, node)
    base = f"/api/spaces/{space_id}"
    events: list[tuple[float, str, str]] = []
    events += [(1.0, "join", "A")] + [(1.0 + 15 * i, "beat", "A") for i in range(1, 12)]
    events += [(20.0, "join", "B")] + [(t, "beat", "B") for t in (35.0, 50.0, 65.0)]
    events += [(70.0, "join", "D")]
    events += [(100.0, "join", "C")] + [(100.0 + 15 * i, "beat", "C") for i in range(1, 6)]
    tokens: dict[str, str] = {}
    for offset, kind, who in sorted(events):
        clock.now = t0 + offset
        if kind == "join":
            joined = await client.post(f"{base}/join")
            assert joined.status_code == 200, joined.text
            tokens[who] = joined.json()["token"]
        else:
            beat = await client.post(
                f"{base}/heartbeat", headers={"Authorization": f"Bearer {tokens[who]}"}
            )
            assert beat.status_code == 204, beat.text
    clock.now = t0 + 180
    ended = await client.post(f"{base}/end", headers=account(node.data_dir, user="u-host"))
    assert ended.status_code == 200
    clock.now = t0 + 190
    assert (await client.post(f"{base}/join")).status_code == 409
    return space_id


async def test_numbers_match_the_hand_computation(client, node, clock) -> None:
    t0 = clock.now
    space_id = await scripted_program(client, node, clock)
    clock.now = t0 + 200
    response = await client.get(f"/api/spaces/{space_id}/stats")
    assert response.status_code == 200
    assert "max-age=" in response.headers["cache-control"]
    stats = response.json()
    # Samples (see the pure test): minute 0 -> 1,2,2,2; minute 1 -> 3,3,2,2; minute 2 -> 2,2,2,2.
    assert [(m["average"], m["listening_end"], m["peak"]) for m in stats["series"]] == [
        (1.75, 2, 2),
        (2.5, 2, 3),
        (2.0, 2, 2),
    ]
    assert [m["minute"] for m in stats["series"]] == [iso(t0), iso(t0 + 60), iso(t0 + 120)]
    assert stats["average_minute_audience"] == round(6.25 / 3, 2)
    assert stats["peak"] == {"listeners": 3, "at": iso(t0 + 75)}
    assert stats["unique_listeners"] == 4
    assert stats["minutes"] == 3
    assert stats["joins"]["attempted"] == 5 and stats["joins"]["admitted"] == 4
    assert stats["joins"]["node_refused"] == 0
    assert stats["replay"] == {"plays": 0, "requests": 0}
    assert stats["heartbeats"] == 11 + 3 + 5
    assert stats["listening_now"] == 0
    assert stats["state"] == "ended"
    for key in ("listening_now", "peak", "average_minute_audience", "unique_listeners"):
        assert stats["definitions"][key]["name"] and stats["definitions"][key]["definition"]

    # The same minutes as CSV.
    response = await client.get(f"/api/spaces/{space_id}/stats.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    assert response.text.endswith("\r\n")
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert list(rows[0]) == [
        "minute",
        "listening_end",
        "average",
        "peak",
        "joins",
        "join_attempts",
        "heartbeats",
    ]
    assert [(r["minute"], float(r["average"]), int(r["peak"])) for r in rows] == [
        (iso(t0), 1.75, 2),
        (iso(t0 + 60), 2.5, 3),
        (iso(t0 + 120), 2.0, 2),
    ]
    assert [int(r["joins"]) for r in rows] == [2, 2, 0]


async def test_replay_listens_are_counted_apart(client, node, clock) -> None:
    space_id = await live_space(client, node)
    stats = node.app.services.stats
    from causerie.counting.stats import client_key

    for agent in ("Safari", "Safari", "Firefox"):
        await stats.record_replay_listen(space_id, client_key("192.0.2.7", agent), clock.now)
    clock.now += 5
    body = (await client.get(f"/api/spaces/{space_id}/stats")).json()
    assert body["replay"] == {"plays": 2, "requests": 3}
    assert body["unique_listeners"] == 0


@pytest.mark.slow
async def test_two_thousand_listeners(client, node, clock) -> None:
    """5,000 requests through HTTP: about 10 s on an idle laptop core."""
    n = 2000
    t0 = clock.now
    space_id = await live_space(client, node)
    base = f"/api/spaces/{space_id}"
    gate = asyncio.Semaphore(32)

    async def post(path: str, token: str | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with gate:
            return await client.post(path, headers=headers)

    clock.now = t0 + 5
    joins = await asyncio.gather(*(post(f"{base}/join") for _ in range(n)))
    assert all(r.status_code == 200 for r in joins)
    tokens = [r.json()["token"] for r in joins]

    async def beat(at: float, who: list[str]) -> None:
        clock.now = at
        beats = await asyncio.gather(*(post(f"{base}/heartbeat", t) for t in who))
        assert all(r.status_code == 204 for r in beats)

    await beat(t0 + 20, tokens)  # everyone, in bucket 1
    await beat(t0 + 35, tokens[: n // 2])  # in bucket 2: half; then everyone goes quiet

    clock.now = t0 + 59
    stats = (await client.get(f"{base}/stats")).json()
    assert abs(stats["unique_listeners"] - n) <= 0.02 * n
    assert abs(stats["peak"]["listeners"] - n) <= 0.02 * n
    assert stats["peak"]["at"] == iso(t0 + 15)
    # At +59 the window is buckets 2 and 3 (+30..+60): only the half that kept going.
    assert abs(stats["listening_now"] - n / 2) <= 0.02 * n / 2
    assert stats["joins"]["admitted"] == stats["joins"]["attempted"] == n
    details = (await client.get(base)).json()
    assert details["listeners_now"] == stats["listening_now"]  # the same sketches, same count

    clock.now = t0 + 61
    stats = (await client.get(f"{base}/stats")).json()
    # Samples: +15 (bucket 0: all), +30 (buckets 0-1: all), +45 (1-2: all), +60 (2-3: half).
    (minute,) = stats["series"]
    assert abs(minute["average"] - 0.875 * n) <= 0.02 * n
    assert abs(minute["listening_end"] - n / 2) <= 0.02 * n / 2
    assert abs(stats["average_minute_audience"] - 0.875 * n) <= 0.02 * n
    # Silent listeners leave "now" within two intervals of their last heartbeat (+35).
    clock.now = t0 + 60
    assert (await client.get(f"{base}/stats")).json()["listening_now"] == 0


async def test_unknown_space_is_404(client) -> None:
    for path in ("/api/spaces/nope/stats", "/api/spaces/nope/stats.csv", "/api/spaces/n.pe/stats"):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"


async def test_scheduled_space_has_no_program_yet(client, node) -> None:
    host = account(node.data_dir)
    space = (await client.post("/api/spaces", json={"title": "Soon"}, headers=host)).json()
    assert (await client.post(f"/api/spaces/{space['id']}/join")).status_code == 200
    stats = (await client.get(f"/api/spaces/{space['id']}/stats")).json()
    assert stats["state"] == "scheduled"
    assert stats["peak"] is None and stats["average_minute_audience"] is None
    assert stats["series"] == [] and stats["unique_listeners"] == 1
    csv_text = (await client.get(f"/api/spaces/{space['id']}/stats.csv")).text
    assert csv_text == "minute,listening_end,average,peak,joins,join_attempts,heartbeats\r\n"


async def test_stats_are_pushed_on_the_event_stream(client, node, clock) -> None:
    from causerie.node.loops import AudienceNumbers
    from causerie.node.periodic import Periodic

    space_id = await live_space(client, node)
    assert (await client.post(f"/api/spaces/{space_id}/join")).status_code == 200
    clock.now += 20
    svc = node.app.services
    before = await svc.bus.last_id(space_id)
    publisher = Periodic("publish-stats", 0.05, AudienceNumbers(svc).step)
    publisher.start()
    try:
        async with asyncio.timeout(5):
            async for event in svc.bus.subscribe(space_id, before):
                if event is not None and event.type == "stats":
                    assert event.data["unique_listeners"] == 1
                    assert event.data["peak"] == 1
                    break
    finally:
        await publisher.stop()


async def test_report_page_renders_in_chromium(client, node, clock, tmp_path: Path) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")
    t0 = clock.now
    space_id = await scripted_program(client, node, clock)
    clock.now = t0 + 200
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            response = await page.goto(f"{node.url}/s/{space_id}/report")
            assert response is not None and response.status == 200
            await page.locator("#numbers [data-key=average_minute_audience]").wait_for()
            assert await page.locator("#title").text_content() == "Numbers"
            number = page.locator("#numbers [data-key=average_minute_audience] .value")
            assert await number.text_content() == "2.1"
            peak = page.locator("#numbers [data-key=peak] .value")
            assert await peak.text_content() == "3"
            # The chart: inline SVG with the average line (a path) and the peak (a polyline).
            chart = page.locator("#chart-box svg")
            assert await chart.count() == 1
            assert await chart.locator("path.line-average").count() == 1
            assert await chart.locator("polyline.line-peak").count() == 1
            d = await chart.locator("path.line-average").get_attribute("d")
            assert d.count("L") == 2  # three minutes, three points
            label = await chart.get_attribute("aria-label")
            assert "at most 3" in label
            csv_href = await page.locator("#csv").get_attribute("href")
            assert csv_href == f"/api/spaces/{space_id}/stats.csv"
            await page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
            assert not errors, errors
        finally:
            await browser.close()


async def test_node_refusals_are_reported(client, node) -> None:
    space_id = await live_space(client, node)
    node.app.admission.refused = 7  # as if the gate had turned seven requests away
    stats = (await client.get(f"/api/spaces/{space_id}/stats")).json()
    assert stats["joins"]["node_refused"] == 7


async def test_report_shows_questions_and_reactions_when_the_server_has_them(client, node) -> None:
    playwright_api = pytest.importorskip("playwright.async_api")
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium not installed")
    space_id = await live_space(client, node, title="With questions")
    base = f"/api/spaces/{space_id}"
    token = (await client.post(f"{base}/join")).json()["token"]
    listener = {"Authorization": f"Bearer {token}"}
    asked = await client.post(f"{base}/questions", json={"text": "<b>Why?</b>"}, headers=listener)
    reacted = await client.post(f"{base}/reactions", json={"emoji": "👏"}, headers=listener)
    if asked.status_code == 404 or reacted.status_code == 404:
        pytest.skip("this server has no questions or reactions")
    assert asked.status_code == 201 and reacted.status_code == 202
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = await browser.new_page()
            await page.goto(f"{node.url}/s/{space_id}/report")
            # Reaction totals are stored once a second; the live report reads again every 10 s.
            await page.locator("#questions-card").wait_for(state="visible", timeout=15_000)
            item = page.locator("#questions li .question-text")
            assert await item.text_content() == "<b>Why?</b>"  # text, never HTML
            assert await page.locator("#questions b").count() == 0
            await page.locator("#reactions-card").wait_for(state="visible", timeout=15_000)
            assert await page.locator("#reactions li").first.text_content() == "👏 1"
            # Live: listening now is shown.
            assert (
                await page.locator("#numbers [data-key=listening_now] .value").text_content() == "1"
            )
        finally:
            await browser.close()
