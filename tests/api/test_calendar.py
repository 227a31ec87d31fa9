"""A space as an iCalendar event: RFC 5545 text rules, checked by reading it back with the
`icalendar` package, and the route beside `/api/spaces/{id}`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from causerie.api.calendar import duration, escape_text, fold, space_calendar
from causerie.domain import Space
from tests.conftest import account

icalendar = pytest.importorskip("icalendar")

TRICKY_TITLES = [
    "Launch night, live; with guests",
    "Back\\slash, semi;colon",
    "Émissions 🎙️🔥 spéciales — ünïcødé",
    "שלום עולם: מרחב חי",  # Hebrew (RTL)
    "مرحبا بالعالم، بث مباشر",  # Arabic (RTL), with an Arabic comma
    "👩🏽‍💻" * 30,  # long, and every character several octets
]


def parse(text: str):
    calendar = icalendar.Calendar.from_ical(text.encode())
    (event,) = calendar.walk("VEVENT")
    return calendar, event


def check_lines(raw: bytes) -> None:
    """CRLF everywhere, no line over 75 octets, every physical line valid UTF-8 by itself."""
    assert raw.endswith(b"\r\n")
    assert b"\n" not in raw.replace(b"\r\n", b"")
    for line in raw.split(b"\r\n")[:-1]:
        assert len(line) <= 75, line
        line.decode()  # a fold never cuts a character


def make_space(**changes) -> Space:
    space = Space.create(
        space_id="abc123",
        host_id="u1",
        host_name="Hana",
        title="placeholder",
        now=datetime(2026, 11, 1, tzinfo=UTC),
        scheduled_start=datetime(2026, 11, 21, 18, 0, tzinfo=UTC),
    )
    for key, value in changes.items():
        setattr(space, key, value)
    return space


# -- the text rules, directly -------------------------------------------------------------------


def test_escaping() -> None:
    assert escape_text("a,b;c\\d") == "a\\,b\\;c\\\\d"
    assert escape_text("one\ntwo\r\nthree\rfour") == "one\\ntwo\\nthree\\nfour"
    assert escape_text("tab\tkept, bell\x07 dropped") == "tab\tkept\\, bell dropped"


@pytest.mark.parametrize("text", ["x" * 200, "é" * 120, "🎙️" * 50, "a" + "€" * 80, "ab" * 37])
def test_folding(text: str) -> None:
    folded = fold(f"SUMMARY:{text}")
    check_lines(folded.encode() + b"\r\n")
    assert folded.replace("\r\n ", "") == f"SUMMARY:{text}"


def test_short_lines_are_not_folded() -> None:
    line = "S:" + "x" * 73
    assert len(line.encode()) == 75 and fold(line) == line
    assert fold(line + "x") == line + "\r\n x"


def test_durations() -> None:
    assert duration(timedelta(hours=1)) == "PT1H"
    assert duration(timedelta(hours=1, minutes=30)) == "PT1H30M"
    assert duration(timedelta(hours=2, seconds=5)) == "PT2H0M5S"
    assert duration(timedelta(minutes=45, seconds=10)) == "PT45M10S"
    assert duration(timedelta(seconds=9)) == "PT9S"
    assert duration(timedelta(days=1, hours=2)) == "PT26H"


@pytest.mark.parametrize("title", [*TRICKY_TITLES, "Line one\nline two", "x\\n not a newline"])
def test_round_trip_of_titles(title: str) -> None:
    description = "Ask us anything, anytime; really.\n\nSecond paragraph\\ " + "d" * 200
    space = make_space(title=title, description=description)
    text = space_calendar(space, "http://example.test/s/abc123", datetime.now(UTC))
    check_lines(text.encode())
    _, event = parse(text)
    assert str(event["SUMMARY"]) == title.replace("\r\n", "\n")
    assert str(event["DESCRIPTION"]).startswith(description)
    assert str(event["DESCRIPTION"]).endswith("Listen: http://example.test/s/abc123")


# -- through HTTP -------------------------------------------------------------------------------


async def create(client, node, **body) -> dict:
    response = await client.post(
        "/api/spaces",
        json={"title": "Launch night"} | body,
        headers=account(node.data_dir, user="u-host"),
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize("title", TRICKY_TITLES)
async def test_ics_of_a_scheduled_space(client, node, title: str) -> None:
    description = (
        "We talk about releases, roadmaps; and backslashes \\ too.\n"
        "Second line: שלום, مرحبا, 🎙️.\n\n" + "Long paragraph. " * 13
    ).strip()
    assert len(description) > 200
    space = await create(
        client, node, title=title, description=description, scheduled_start="2026-11-21T18:00:00Z"
    )
    response = await client.get(f"/api/spaces/{space['id']}.ics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/calendar; charset=utf-8"
    assert response.headers["content-disposition"].startswith("attachment")
    check_lines(response.content)

    calendar, event = parse(response.text)
    assert str(calendar["VERSION"]) == "2.0" and calendar["PRODID"]
    assert str(event["UID"]) == f"{space['id']}@causerie"
    assert str(event["SUMMARY"]) == title
    assert str(event["DESCRIPTION"]).startswith(description)
    page = f"{node.app.services.config.site_url}/s/{space['id']}"  # configured, never the Host
    assert str(event["URL"]) == page
    assert page in str(event["DESCRIPTION"])
    assert event.decoded("DTSTART") == datetime(2026, 11, 21, 18, 0, tzinfo=UTC)
    assert event.decoded("DURATION") == timedelta(hours=1)
    assert isinstance(event.decoded("DTSTAMP"), datetime)
    assert str(event["STATUS"]) == "CONFIRMED"


async def test_ics_of_a_space_that_went_live_and_ended(client, node) -> None:
    space = await create(client, node)  # no scheduled start: the real start is used
    host = account(node.data_dir, user="u-host")
    no_time = await client.get(f"/api/spaces/{space['id']}.ics")
    assert no_time.status_code == 409 and no_time.json()["error"] == "conflict"
    assert (await client.post(f"/api/spaces/{space['id']}/start", headers=host)).status_code == 200
    started = (await client.get(f"/api/spaces/{space['id']}")).json()["started_at"]
    assert (await client.post(f"/api/spaces/{space['id']}/end", headers=host)).status_code == 200
    _, event = parse((await client.get(f"/api/spaces/{space['id']}.ics")).text)
    assert event.decoded("DTSTART") == datetime.fromisoformat(started).replace(microsecond=0)
    assert event.decoded("DURATION") <= timedelta(minutes=1)  # it lasted a moment, not an hour


async def test_cancelled_space(client, node) -> None:
    space = await create(client, node, scheduled_start="2026-11-21T18:00:00Z")
    host = account(node.data_dir, user="u-host")
    assert (await client.post(f"/api/spaces/{space['id']}/end", headers=host)).status_code == 200
    _, event = parse((await client.get(f"/api/spaces/{space['id']}.ics")).text)
    assert str(event["STATUS"]) == "CANCELLED"


async def test_unknown_and_bad_ids_are_404(client, node) -> None:
    for path in (
        "/api/spaces/nope.ics",
        "/api/spaces/no%20pe.ics",
        "/api/spaces/a.b.ics",
        "/api/spaces/..ics",
    ):
        response = await client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "not_found"
    # An id longer than any id is refused like on the other space routes: JSON, never a 500.
    for path in ("/api/spaces/" + "x" * 70 + ".ics", "/api/spaces/" + "x" * 70):
        response = await client.get(path)
        assert response.status_code == 422, path
        assert response.json()["error"] == "invalid"


async def test_the_route_does_not_clash_with_the_details(client, node) -> None:
    space = await create(client, node, scheduled_start="2026-11-21T18:00:00Z")
    details = await client.get(f"/api/spaces/{space['id']}")
    assert details.status_code == 200 and details.json()["id"] == space["id"]
    ics = await client.get(f"/api/spaces/{space['id']}.ics")
    assert ics.status_code == 200 and ics.text.startswith("BEGIN:VCALENDAR\r\n")
    schema = (await client.get("/openapi.json")).json()
    assert "/api/spaces/{space_id}.ics" in schema["paths"]
    assert "/api/spaces/{space_id}/stats" in schema["paths"]
