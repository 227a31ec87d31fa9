"""A space as an iCalendar event: `GET /api/spaces/{id}.ics` (RFC 5545).

Written by hand (it is a few lines of text) with the rules calendar programs are strict about:
CRLF line ends, TEXT values escaped (backslash, semicolon, comma, newline), content lines
folded at 75 octets without cutting a UTF-8 character, times in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter, Response

from .. import __version__
from ..domain import Conflict, Space, SpaceState
from .dependencies import ERRORS, ServicesDep, SpaceId

PRODID = f"-//causerie//causerie {__version__}//EN"
DEFAULT_DURATION = timedelta(hours=1)
LINE_OCTETS = 75

router = APIRouter(prefix="/api", responses=ERRORS, tags=["spaces"])


def escape_text(value: str) -> str:
    """A TEXT value (RFC 5545 §3.3.11): `\\`, `;`, `,` escaped, line breaks as `\\n`.

    Other control characters are not allowed in TEXT and are dropped (tabs are kept).
    """
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    out: list[str] = []
    for char in value:
        if char == "\\":
            out.append("\\\\")
        elif char in ";,":
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif (char < " " and char != "\t") or char == "\x7f":
            continue
        else:
            out.append(char)
    return "".join(out)


def fold(line: str) -> str:
    """Fold a content line (RFC 5545 §3.1): at most 75 octets a line, continuations start with
    a space, and never inside a UTF-8 multi-octet character."""
    data = line.encode()
    if len(data) <= LINE_OCTETS:
        return line
    parts: list[str] = []
    start, limit = 0, LINE_OCTETS
    while start < len(data):
        end = min(start + limit, len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a continuation octet
            end -= 1
        parts.append(data[start:end].decode())
        start, limit = end, LINE_OCTETS - 1  # the leading space counts
    return "\r\n ".join(parts)


def utc(moment: datetime) -> str:
    """A DATE-TIME in UTC form, e.g. 20261121T180000Z."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def duration(delta: timedelta) -> str:
    """A DURATION value (RFC 5545 §3.3.6), e.g. PT1H, PT1H30M, PT45M10S."""
    hours, rest = divmod(max(0, int(delta.total_seconds())), 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        text = f"{hours}H" + (f"{minutes}M" if minutes or seconds else "")
        text += f"{seconds}S" if seconds else ""
    elif minutes:
        text = f"{minutes}M" + (f"{seconds}S" if seconds else "")
    else:
        text = f"{seconds}S"
    return "PT" + text


def event_times(space: Space) -> tuple[datetime, timedelta]:
    """When the event starts (the scheduled start, else the real one) and how long it lasts
    (until the real end once ended, else an hour)."""
    start = space.scheduled_start or space.started_at
    if start is None:
        raise Conflict("the space has no start time yet, so there is nothing to put in a calendar")
    length = DEFAULT_DURATION
    if space.ended_at is not None and space.started_at is not None:
        real = space.ended_at - start
        if real > timedelta(0):
            length = real
    return start, length


def space_calendar(space: Space, page_url: str, now: datetime) -> str:
    """The iCalendar object (one VEVENT) for `space`, its page at `page_url`."""
    start, length = event_times(space)
    cancelled = space.state is SpaceState.ENDED and space.started_at is None
    description = space.description.strip()
    about = f"{description}\n\n" if description else ""
    about += f"Hosted by {space.host.name}.\nListen: {page_url}"
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        "BEGIN:VEVENT",
        f"UID:{space.id}@causerie",
        f"DTSTAMP:{utc(now)}",
        f"CREATED:{utc(space.created_at)}",
        f"SEQUENCE:{space.version}",
        f"DTSTART:{utc(start)}",
        f"DURATION:{duration(length)}",
        f"SUMMARY:{escape_text(space.title)}",
        f"DESCRIPTION:{escape_text(about)}",
        f"URL:{page_url}",
        f"STATUS:{'CANCELLED' if cancelled else 'CONFIRMED'}",
        "TRANSP:TRANSPARENT",
        "END:VEVENT",
        "END:VCALENDAR",
    ]
    return "".join(fold(line) + "\r\n" for line in lines)


@router.get(
    "/spaces/{space_id}.ics",
    summary="The space as a calendar event (iCalendar)",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}}},
)
async def space_ics(space_id: SpaceId, svc: ServicesDep) -> Response:
    """An iCalendar file with one event: the space's title, description, start time and a
    link to its page. Calendar programs import it ("Add to calendar")."""
    space = await svc.cached_space(space_id)
    # From the configuration, never from the request's Host: the file is cached by edges for
    # everyone, so a Host chosen by one client would send every later reader elsewhere.
    page_url = f"{svc.config.site_url}/s/{space.id}"
    body = space_calendar(space, page_url, svc.now())
    return Response(
        body,
        media_type="text/calendar; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{space.id}.ics"',
            "Cache-Control": f"public, max-age={max(svc.config.details_max_age, 60)}",
        },
    )
