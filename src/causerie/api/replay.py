"""Replays of recorded spaces: an HLS VOD playlist, a one-file download, and clips.

    GET       /replay/{space}/index.m3u8        the replay, once the space has ended (HLS VOD)
    GET       /replay/{space}/{run}/init.mp4    a run's init section (immutable)
    GET       /replay/{space}/{run}/{msn}.m4s   a recorded segment (immutable)
    GET, HEAD /replay/{space}.m4a               the whole conversation as one M4A (Range works)
    POST      /api/spaces/{space}/clips         cut a clip of at most 30 s (anyone, even live)
    GET, HEAD /clips/{clip}.m4a                 a clip

Everything is read from what the recorder wrote (media/recorder.py); the M4A files are made on
first request by copying AAC packets (media/clips.py) and kept on disk. Making them is the only
real work here, so it is bounded: at most ``MAX_JOBS`` at once per node (503 + Retry-After
beyond), and a file already made, or being made, is never made again.

Clips take disk, and anyone may ask for one, so a new clip (an existing one costs nothing and
is answered at once) must pass, in this order: the clip rate limits per address and per space
(429 + Retry-After, ratelimit/writes.py), then the clips' disk bounds per space and per node
and the free space kept for recordings (507, media/clip_budget.py). SECURITY.md has the figures.

A recording removed by the node's retention (media/retention.py: kept `--keep-recordings`
days, within `--recordings-max-gb`) answers 410 Gone everywhere here, with a sentence saying
when and why, instead of a 404 that would read as a broken link. So does one an operator took
down after a report (`Space.replay_taken_down_at`, shared by every node through the store): at
once, on every node, before the nodes' retention passes remove its files.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import unicodedata
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ..counting.stats import client_key
from ..domain import Conflict, Invalid, NotFound, Space, SpaceState
from ..media.clip_budget import CLIPS_DIR, ClipBudget, OverBudget
from ..media.clips import Cut, EmptyCut, cut
from ..media.recorder import SAFE_ID, Recording
from ..media.retention import takedown_message, tombstone
from ..node.schemas import Error
from ..node.services import Services
from .dependencies import ServicesDep
from .errors import ApiError

__all__ = ["MAX_CLIP_SECONDS", "ClipRequest", "Jobs", "clip_range", "router"]

log = logging.getLogger(__name__)

MAX_CLIP_SECONDS = 30
MAX_JOBS = 3
"""M4A files (downloads, clips) being made at once on one node."""
RETRY_AFTER = "2"

PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
MEDIA_TYPE = "audio/mp4"
IMMUTABLE = "public, max-age=31536000, immutable"
# An ended space's replay does not change any more; an hour keeps a mistake from living long.
REPLAY_CACHE = "public, max-age=3600"
REPLAY_PLAYLIST = "no-cache"

_MEDIA_NAME = re.compile(r"init\.mp4|[0-9]{1,12}\.m4s")
_CLIP_ID = re.compile(r"(?P<space>[A-Za-z0-9_-]{1,32})\.(?P<start>[0-9]{1,9})-(?P<end>[0-9]{1,9})")
# A request may name the very end of the recording a little past it (rounded lengths).
_END_SLACK_MS = 50

router = APIRouter(
    tags=["replay"],
    responses={
        status: {"model": Error} for status in (400, 404, 409, 410, 413, 422, 429, 503, 507)
    },
)


class Jobs:
    """The M4A files being made on this node: at most ``limit`` at once, each made once."""

    def __init__(self, limit: int = MAX_JOBS) -> None:
        self.limit = limit
        self._running: dict[Path, asyncio.Future[Cut]] = {}

    async def make(self, destination: Path, work: Callable[[], Cut]) -> None:
        """Run ``work`` (which writes ``destination``) in a thread, unless it is already done.

        Requests for a file being made wait for that same job. Beyond ``limit`` jobs, 503; a
        disk error while writing is a 503 too (the server's trouble, not the request's).
        """
        running = self._running.get(destination)
        if running is None:
            if destination.is_file():
                return
            if len(self._running) >= self.limit:
                raise ApiError(
                    503,
                    "too many audio files are being made right now; please retry shortly",
                    {"Retry-After": RETRY_AFTER},
                )
            running = asyncio.ensure_future(asyncio.to_thread(work))
            self._running[destination] = running
            running.add_done_callback(lambda job: self._finished(destination, job))
        try:
            # Shielded: a client that goes away must not cancel a job others may be waiting for.
            await asyncio.shield(running)
        except OSError as exc:
            log.error("could not write %s: %s", destination, exc)
            raise ApiError(
                503, "the server could not write the audio file; please retry later"
            ) from None

    def _finished(self, destination: Path, job: asyncio.Future[Cut]) -> None:
        self._running.pop(destination, None)
        if not job.cancelled():
            job.exception()  # retrieved here, so a job nobody awaits any more logs no warning


async def jobs(request: Request) -> Jobs:
    """The node's jobs (kept on the app: one set per node, also with several in one process)."""
    state = request.app.state
    if not hasattr(state, "replay_jobs"):
        state.replay_jobs = Jobs()
    return state.replay_jobs


JobsDep = Annotated[Jobs, Depends(jobs)]


async def budget(svc: ServicesDep) -> ClipBudget | None:
    """The node's clip budget (None without recordings)."""
    return svc.clip_budget


BudgetDep = Annotated[ClipBudget | None, Depends(budget)]


async def _admit(check: Callable[[], None]) -> None:
    """Run a `ClipBudget` check (it touches the disk) in a thread: 507 if it refuses."""
    try:
        await asyncio.to_thread(check)
    except OverBudget as exc:
        raise ApiError(507, str(exc)) from None


# Details of a space


# Reading recordings


def _check_id(space_id: str) -> None:
    if not SAFE_ID.fullmatch(space_id):
        raise NotFound("no such space")


async def _unless_removed(svc: Services, space_id: str) -> None:
    """410 Gone if the node's retention removed the space's recording (`space_id` checked)."""
    root = svc.broadcasts.recordings_dir
    if root is None:
        return
    stone = await asyncio.to_thread(tombstone, root, space_id)
    if stone is not None:
        raise ApiError(410, stone.message)


def _unless_taken_down(space: Space) -> None:
    """410 Gone if an operator took the space's recording down."""
    if space.replay_taken_down_at is not None:
        raise ApiError(410, takedown_message(space.replay_taken_down_at))


async def _check_space(svc: Services, space_id: str) -> None:
    """404 for an unknown space, 410 for a recording taken down (`space_id` checked)."""
    _unless_taken_down(await svc.cached_space(space_id))


async def _recording(svc: Services, space_id: str) -> Recording:
    """What is recorded of the space so far (maybe nothing); 404 for an unknown space, 410 for
    one taken down."""
    _check_id(space_id)
    await _check_space(svc, space_id)
    root = svc.broadcasts.recordings_dir
    if root is None:
        return Recording(Path(), [])
    return await asyncio.to_thread(Recording.load, root, space_id)


async def _ended_recording(svc: Services, space_id: str) -> tuple[Space, Recording]:
    """The complete recording of an ended space: 409 before the end, 404 if nothing was kept."""
    _check_id(space_id)
    space = await svc.cached_space(space_id)
    _unless_taken_down(space)
    if space.state is not SpaceState.ENDED:
        raise Conflict(f"the space is {space.state.value}; its replay is ready once it has ended")
    recorder = svc.broadcasts.recorder(space_id)
    if recorder is not None and not recorder.closed:
        raise ApiError(
            409, "the recording is being finished; please retry shortly", {"Retry-After": "1"}
        )
    recording = await _recording(svc, space_id)
    if not recording:
        await _unless_removed(svc, space_id)
        raise NotFound("nothing of this space was recorded")
    return space, recording


def _media_headers(cache: str) -> dict[str, str]:
    # Players on other origins (web players) may fetch replays, as they fetch the live stream.
    return {"Cache-Control": cache, "Access-Control-Allow-Origin": "*"}


@router.get("/replay/{space_id}/index.m3u8", summary="The replay (HLS VOD playlist)")
async def replay_playlist(space_id: str, request: Request, svc: ServicesDep) -> Response:
    """The whole recording as an HLS on-demand playlist, once the space has ended.

    Each fetch is a replay play (counted apart from live listening, once per device and day),
    so the playlist is `no-cache`: edges revalidate it and the origin sees every play. The
    media it lists is immutable and stays cached.
    """
    _, recording = await _ended_recording(svc, space_id)
    ip = request.client.host if request.client else "unknown"
    device = client_key(ip, request.headers.get("user-agent", ""))
    await svc.stats.record_replay_listen(space_id, device, svc.clock())
    return Response(
        recording.playlist(), media_type=PLAYLIST_TYPE, headers=_media_headers(REPLAY_PLAYLIST)
    )


@router.get(
    "/replay/{space_id}/{run_id}/{name}",
    summary="A recorded init section or segment",
    response_class=FileResponse,
)
@router.head("/replay/{space_id}/{run_id}/{name}", include_in_schema=False)
async def replay_media(space_id: str, run_id: str, name: str, svc: ServicesDep) -> FileResponse:
    """Recorded media, named by the replay playlist; immutable."""
    root = svc.broadcasts.recordings_dir
    # Every part of the path is checked against a strict pattern before it touches the disk.
    if (
        root is None
        or not SAFE_ID.fullmatch(space_id)
        or not SAFE_ID.fullmatch(run_id)
        or not _MEDIA_NAME.fullmatch(name)
    ):
        raise NotFound("there is no such recorded media")
    await _check_space(svc, space_id)  # immutable, but not once taken down
    path = root / space_id / run_id / name
    if not await asyncio.to_thread(path.is_file):
        await _unless_removed(svc, space_id)
        raise NotFound("there is no such recorded media")
    return FileResponse(path, media_type=MEDIA_TYPE, headers=_media_headers(IMMUTABLE))


@router.get(
    "/replay/{space_id}.m4a",
    summary="Download the whole conversation",
    response_class=FileResponse,
)
@router.head("/replay/{space_id}.m4a", include_in_schema=False)
async def replay_download(
    space_id: str, svc: ServicesDep, work: JobsDep, clip_budget: BudgetDep
) -> FileResponse:
    """The recording as one ordinary M4A file (made on first request, then kept)."""
    space, recording = await _ended_recording(svc, space_id)
    path = recording.directory / "replay.m4a"
    if clip_budget is not None and not await asyncio.to_thread(path.is_file):
        await _admit(clip_budget.require_free_disk)  # never at the recordings' expense
    try:
        await work.make(path, lambda: cut(recording, path))
    except EmptyCut:  # only if the recorded files went missing from the disk
        raise NotFound("the recorded audio of this space is gone") from None
    headers = _media_headers(REPLAY_CACHE)
    headers["Content-Disposition"] = f'attachment; filename="{safe_filename(space.title)}.m4a"'
    return FileResponse(path, media_type=MEDIA_TYPE, headers=headers)


def safe_filename(title: str) -> str:
    """The title as a file name that needs no quoting anywhere: ASCII letters, digits, -_. ."""
    # Accents are dropped rather than the letters that carry them ("é" -> "e").
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    name = re.sub(r"[^A-Za-z0-9._-]+", " ", ascii_title).strip(" .")
    name = re.sub(r" +", " ", name)[:80].strip()
    return name or "causerie"


# Clips


class ClipRequest(BaseModel):
    """A range of the recording, in seconds from its start; both ends optional."""

    model_config = ConfigDict(extra="forbid")

    start: Annotated[float, Field(strict=True, allow_inf_nan=False)] | None = Field(
        None, description="Seconds from the start of the recording; default: end - 30 s."
    )
    end: Annotated[float, Field(strict=True, allow_inf_nan=False)] | None = Field(
        None, description="Seconds from the start of the recording; default: its end."
    )


class ClipView(BaseModel):
    url: str = Field(description="Where the clip is (an M4A file).")
    start: float
    end: float
    duration: float


def clip_range(start: float | None, end: float | None, length: Fraction) -> tuple[int, int]:
    """The clip's (start, end) in milliseconds, with the defaults applied; ``Invalid`` if bad.

    Defaults: without ``end``, ``start`` + 30 s or the end of the recording, whichever is first;
    without ``start``, ``end`` - 30 s or 0. With neither, the last ``min(30, length)`` seconds.
    """
    length_ms = math.floor(length * 1000)
    for name, value in (("start", start), ("end", end)):
        if value is not None and value < 0:
            raise Invalid(f"{name} must be 0 or more seconds, not {value}")
    if start is not None and start * 1000 >= length_ms:
        raise Invalid(f"start is beyond the end of the recording ({length_ms / 1000} s long)")
    if end is not None and end * 1000 > length_ms + _END_SLACK_MS:
        raise Invalid(f"end is beyond the end of the recording ({length_ms / 1000} s long)")
    if start is not None and end is not None and end <= start:
        raise Invalid(f"start must be before end (got start {start} s, end {end} s)")
    limit_ms = MAX_CLIP_SECONDS * 1000
    if end is None:
        end_ms = length_ms if start is None else min(round(start * 1000) + limit_ms, length_ms)
    else:
        end_ms = min(round(end * 1000), length_ms)
    start_ms = max(0, end_ms - limit_ms) if start is None else round(start * 1000)
    if end_ms - start_ms > limit_ms:
        raise Invalid(
            f"a clip is at most {MAX_CLIP_SECONDS} s long; this one would be "
            f"{(end_ms - start_ms) / 1000} s"
        )
    if end_ms <= start_ms:
        raise Invalid("the clip would be empty: start must be before end")
    return start_ms, end_ms


@router.post(
    "/api/spaces/{space_id}/clips",
    status_code=201,
    response_model=ClipView,
    summary="Cut a clip",
)
async def make_clip(
    space_id: str,
    request: Request,
    svc: ServicesDep,
    work: JobsDep,
    clip_budget: BudgetDep,
    body: Annotated[ClipRequest | None, Body()] = None,
) -> JSONResponse:
    """Anyone: cut up to 30 s of the recording (of a live space: of what is recorded so far).

    Offsets are seconds from the start of the recording; without them, the last 30 s (or the
    whole recording if it is shorter). Precision: one AAC frame (21.3 ms). The same range of the
    same space gives the same clip, cut once, and asking for it again costs nothing.

    A new clip is rate-limited per address and per space (429 + Retry-After), and refused with
    507 when the space's clips, or all clips, take their share of disk, or the disk is short of
    the space kept for recordings.
    """
    body = body or ClipRequest()
    recording = await _recording(svc, space_id)
    if not recording:
        await _unless_removed(svc, space_id)
        space = await svc.cached_space(space_id)
        if space.state is SpaceState.SCHEDULED:
            raise Conflict("the space has not started yet: nothing is recorded")
        if not space.recording:
            raise Conflict("this space is not recorded")
        raise Conflict("nothing of this space has been recorded yet")
    start_ms, end_ms = clip_range(body.start, body.end, recording.duration)
    clip_id = f"{space_id}.{start_ms}-{end_ms}"
    path = recording.directory / CLIPS_DIR / f"{clip_id}.m4a"

    def work_clip() -> Cut:
        made = cut(recording, path, Fraction(start_ms, 1000), Fraction(end_ms, 1000))
        if clip_budget is not None:
            clip_budget.add(space_id, path.stat().st_size)
        return made

    if not await asyncio.to_thread(path.is_file):  # an existing clip is free to share again
        ip = request.client.host if request.client else "unknown"
        await svc.limits.check_clip(space_id, ip, svc.clock())
        if clip_budget is not None:
            await _admit(lambda: clip_budget.admit(space_id))
    try:
        await work.make(path, work_clip)
    except EmptyCut as exc:  # only if segment files went missing from the disk
        raise Conflict(str(exc)) from None
    url = f"/clips/{clip_id}.m4a"
    view = ClipView(
        url=url, start=start_ms / 1000, end=end_ms / 1000, duration=(end_ms - start_ms) / 1000
    )
    return JSONResponse(view.model_dump(), status_code=201, headers={"Location": url})


@router.get(
    "/clips/{clip_id}.m4a",
    summary="A clip",
    response_class=FileResponse,
)
@router.head("/clips/{clip_id}.m4a", include_in_schema=False)
async def get_clip(clip_id: str, svc: ServicesDep) -> FileResponse:
    """A clip made by ``POST /api/spaces/{id}/clips``; immutable."""
    match = _CLIP_ID.fullmatch(clip_id)
    root = svc.broadcasts.recordings_dir
    if match is None or root is None:
        raise NotFound("there is no such clip")
    try:
        await _check_space(svc, match["space"])
    except NotFound:
        raise NotFound("there is no such clip") from None
    path = root / match["space"] / CLIPS_DIR / f"{clip_id}.m4a"
    if not await asyncio.to_thread(path.is_file):
        await _unless_removed(svc, match["space"])
        raise NotFound("there is no such clip")
    headers = _media_headers(IMMUTABLE)
    headers["Content-Disposition"] = f'inline; filename="{clip_id}.m4a"'
    return FileResponse(path, media_type=MEDIA_TYPE, headers=headers)
