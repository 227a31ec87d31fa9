"""The public views of the node's things: a space, a question, the headline numbers.

The API answers with them and the live events carry them, so both always agree.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, overload

from ..captions.lines import CAPTIONS_FILE
from ..counting.stats import Summary
from ..domain import Space, SpaceState
from ..media.recorder import INDEX_NAME, SAFE_ID
from .schemas import SpaceView
from .services import Services


def playlist_url(space_id: str) -> str:
    """Where a space's HLS multivariant playlist is, on every node: what players are given."""
    return f"/hls/{space_id}/main.m3u8"


def media_playlist_url(space_id: str) -> str:
    """Where a space's LL-HLS media playlist is (blocking reload, parts), on every node."""
    return f"/hls/{space_id}/index.m3u8"


def events_url(space_id: str) -> str:
    """Where a space's live events start: the window in progress (api/feed.py)."""
    return f"/feed/{space_id}/now"


@overload
def moment(unix: float) -> datetime: ...
@overload
def moment(unix: float | None) -> datetime | None: ...
def moment(unix: float | None) -> datetime | None:
    """A Unix time as an aware datetime (None stays None)."""
    return None if unix is None else datetime.fromtimestamp(unix, UTC)


def unix(when: datetime | None) -> float | None:
    """An aware datetime as Unix time (None stays None)."""
    return None if when is None else when.timestamp()


def speaking_now(svc: Services, space_id: str) -> list[str]:
    """The ids of the people talking now in the space's mixer on this node, sorted."""
    pipeline = svc.broadcasts.get(space_id)
    if pipeline is None:
        return []
    return sorted(i for i, source in pipeline.mixer.inputs.items() if source.active)


def reconnecting_now(svc: Services, space_id: str) -> list[str]:
    """The ids of the speakers whose connection to this node is being re-established."""
    return svc.speakers.reconnecting(space_id)


async def space_view(space: Space, svc: Services) -> SpaceView:
    """The public view of a space, with its live listener count."""
    reconnecting = set(reconnecting_now(svc, space.id))
    return SpaceView(
        id=space.id,
        title=space.title,
        description=space.description,
        state=space.state.value,
        scheduled_start=space.scheduled_start,
        started_at=space.started_at,
        ended_at=space.ended_at,
        playlist_url=playlist_url(space.id),
        media_playlist_url=media_playlist_url(space.id),
        events_url=events_url(space.id),
        listeners_now=await svc.presence.listening_now(space.id, svc.clock()),
        host={"id": space.host_id, "name": space.host.name},
        stage=[
            {
                "id": m.user_id,
                "name": m.name,
                "role": m.role.value,
                "muted": m.muted,
                "reconnecting": m.user_id in reconnecting,
            }
            for m in space.on_stage()
        ],
        speaking=speaking_now(svc, space.id),
        requests_waiting=space.hands_waiting(svc.now()),
        recording=space.recording,
        capacity=space.capacity,
        ending_at=space.ending_at,
        **replay_links(space, svc),
        **captions_view(space, svc),
    )


def captions_view(space: Space, svc: Services) -> dict[str, Any]:
    """``captions``, ``captions_state``, ``captions_problem``, ``transcript_url`` and
    ``captioned_replay_url`` for the view of a space."""
    captions = svc.captions
    live = space.state is SpaceState.LIVE
    root = svc.broadcasts.recordings_dir
    transcribed = (
        space.state is SpaceState.ENDED
        and root is not None
        and SAFE_ID.fullmatch(space.id) is not None
        and (root / space.id / CAPTIONS_FILE).is_file()
        and (root / space.id / INDEX_NAME).is_file()
    )
    return {
        "captions": space.captions,
        "captions_state": (captions.state(space) if captions else "unavailable") if live else None,
        "captions_problem": captions.problem if captions else "this server has no captions",
        "transcript_url": f"/replay/{space.id}/transcript.vtt" if transcribed else None,
        "captioned_replay_url": f"/replay/{space.id}/main.m3u8" if transcribed else None,
    }


def replay_url(space_id: str) -> str:
    """Where a recorded space's replay (VOD) playlist is."""
    return f"/replay/{space_id}/index.m3u8"


def download_url(space_id: str) -> str:
    """Where a recorded space downloads as one file."""
    return f"/replay/{space_id}.m4a"


def replay_links(space: Space, svc: Services) -> dict[str, str | None]:
    """``replay_url``, ``download_url`` and ``recording_error`` for the view of a space.

    The URLs are set once the space has ended and something was recorded (and not taken
    down by an operator); the error is the
    recorder's, while this node runs (or recently ran) the space.
    """
    root = svc.broadcasts.recordings_dir
    recorded = (
        space.state is SpaceState.ENDED
        and space.replay_taken_down_at is None
        and root is not None
        and SAFE_ID.fullmatch(space.id) is not None
        and (root / space.id / INDEX_NAME).is_file()
    )
    recorder = svc.broadcasts.recorder(space.id)
    return {
        "replay_url": replay_url(space.id) if recorded else None,
        "download_url": download_url(space.id) if recorded else None,
        "recording_error": recorder.recording_error if recorder is not None else None,
    }


async def summarize(svc: Services, space: Space) -> Summary:
    """The numbers of `space` now, over its program (from going live to the end).

    "Listening now" is the node's presence count, the one the space page shows: with shared
    presence (Redis) it covers every node, where the rest of the numbers are this node's.
    """
    now = svc.clock()
    summary = await svc.stats.summary(space.id, now, unix(space.started_at), unix(space.ended_at))
    listening = await svc.presence.listening_now(space.id, now)
    return replace(summary, listening_now=listening)


def pushed_numbers(summary: Summary) -> dict[str, Any]:
    """What a `stats` event carries: the headline numbers, not the series."""
    return {
        "listening_now": summary.listening_now,
        "peak": summary.peak,
        "peak_at": moment(summary.peak_at).isoformat() if summary.peak_at else None,
        "average_minute_audience": None
        if summary.average_minute_audience is None
        else round(summary.average_minute_audience, 2),
        "unique_listeners": summary.unique_listeners,
        "minutes": len(summary.minutes),
        "joins": summary.joins,
        "join_attempts": summary.join_attempts,
    }
