"""iCalendar output (api/calendar.py) for any title and description: read back by the
`icalendar` package as written, in lines of at most 75 octets that never cut a character."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from causerie.api.calendar import space_calendar
from causerie.domain import Invalid, Space

icalendar = pytest.importorskip("icalendar")

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
PAGE = "http://127.0.0.1:8080/s/abc123"
# What people type, with the characters calendar programs trip over.
typed = st.text(
    st.characters(codec="utf-8")
    | st.sampled_from(["\n", "\r", ",", ";", "\\", ":", "\u2028", "\u2029", "\u0085", "\ufe0f"]),
    max_size=400,
)


def make_space(title: str, description: str) -> Space:
    """A space as the domain makes it (so only text it accepts), or None."""
    return Space.create(
        space_id="abc123",
        host_id="u1",
        host_name="Hana",
        title=title,
        description=description,
        now=NOW,
        scheduled_start=datetime(2026, 11, 22, 18, 0, tzinfo=UTC),
    )


@given(typed, typed)
@example("Launch\u2028night", "First line\u2029second")  # Unicode line and paragraph separators
@example("é" * 140, "👩🏽‍💻" * 300)  # long, and every character several octets
def test_round_trip(title: str, description: str) -> None:
    try:
        space = make_space(title, description)
    except Invalid:
        return
    text = space_calendar(space, PAGE, NOW)
    raw = text.encode()
    assert raw.endswith(b"\r\n") and b"\n" not in raw.replace(b"\r\n", b"")
    for line in raw.split(b"\r\n")[:-1]:
        assert len(line) <= 75, line
        line.decode()  # a fold never cuts a character
    (event,) = icalendar.Calendar.from_ical(raw).walk("VEVENT")
    assert str(event["SUMMARY"]) == space.title
    about = str(event["DESCRIPTION"])
    if space.description:
        assert about.startswith(space.description.replace("\r\n", "\n").replace("\r", "\n"))
    assert about.endswith(f"Listen: {PAGE}")
    assert event["UID"] == "abc123@causerie"
