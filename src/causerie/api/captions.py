"""Captions and transcripts: the host's switch, the replay's transcript, search.

    PUT  /api/spaces/{space}/captions          {"enabled": bool}: host or co-host, before the end
    GET  /replay/{space}/transcript.vtt        the transcript as WebVTT (replay timeline)
    GET  /replay/{space}/transcript.txt        … as plain text, one line per cue
    GET  /replay/{space}/transcript.json       … as JSON cues (what the replay page shows)
    GET  /replay/{space}/main.m3u8             the replay as a multivariant playlist, with the
                                               transcript as its subtitles (EXT-X-MEDIA)
    GET  /replay/{space}/subtitles.m3u8        the subtitles' media playlist (one WebVTT file)
    GET  /api/search?q=                        transcripts of ended spaces holding every word

Live caption lines are not served here: they go out as `caption` events with the space's other
live events (the feed, the hosts' event stream), each with the program time it belongs to.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ..captions.query import MAX_QUERY, BadQuery
from ..captions.search import SearchResult
from ..captions.service import transcript_cues
from ..captions.webvtt import Cue, format_timestamp, render_text, render_webvtt
from ..domain import Conflict, NotFound, SpaceState
from ..media.playlist import AAC_LC, VERSION, render_multivariant
from ..media.recorder import Recording
from ..node.schemas import SpaceView
from ..node.services import Services
from ..node.views import space_view
from .dependencies import ERRORS, ServicesDep, SpaceId
from .errors import ApiError
from .spaces import change_space

__all__ = ["router"]

router = APIRouter(responses=ERRORS)

VTT_TYPE = "text/vtt; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"
TRANSCRIPT_CACHE = "public, max-age=3600"
SEARCH_CACHE = "public, max-age=30"
BANDWIDTH = 72_000
"""The replay's peak bit rate, for its multivariant playlist (64 kbit/s AAC and headers)."""


class CaptionsSwitch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(strict=True, description="Caption the space (live and transcript).")


@router.put(
    "/api/spaces/{space_id}/captions",
    response_model=SpaceView,
    summary="Turn captions on or off",
    tags=["captions"],
)
async def set_captions(
    space_id: SpaceId, body: CaptionsSwitch, request: Request, svc: ServicesDep
) -> SpaceView:
    """Host or co-host, before the end: live captions (and the replay's transcript) on or off.
    The change reaches the recognizer within a second; what was captioned so far is kept."""
    space, _ = await change_space(
        request, svc, space_id, lambda s, actor: s.set_captions(actor, body.enabled)
    )
    if svc.captions is not None:
        await svc.captions.step()  # at once rather than at the next tick
    return await space_view(space, svc)


# The transcript of an ended space


async def _cues(svc: Services, space_id: str) -> tuple[list[Cue], Path]:
    """The transcript's cues; 409 until the space has ended and its captions are finished,
    404 if it was not captioned or recorded."""
    space = await svc.cached_space(space_id)
    if space.state is not SpaceState.ENDED:
        raise Conflict(f"the space is {space.state.value}; its transcript is made at the end")
    if svc.captions is not None and svc.captions.busy(space_id):
        raise ApiError(
            409, "the transcript is being finished; please retry shortly", {"Retry-After": "1"}
        )
    root = svc.broadcasts.recordings_dir
    if root is None:
        raise NotFound("this server keeps no recordings, so no transcripts")
    cues = await asyncio.to_thread(transcript_cues, root, space_id)
    if not cues:
        raise NotFound("this space has no transcript (it was not captioned, or nobody spoke)")
    return cues, root


def _headers(cache: str) -> dict[str, str]:
    # Players on other origins (a newsroom's page) fetch transcripts as they fetch the media.
    return {"Cache-Control": cache, "Access-Control-Allow-Origin": "*"}


def _timestamp_map(root: Path, space_id: str) -> str:
    """`X-TIMESTAMP-MAP` for the replay (RFC 8216 section 3.5): the cues' time 0 is the first
    recorded segment's decode time (its `tfdt`, 48 kHz), on the 90 kHz MPEG-2 clock."""
    recording = Recording.load(root, space_id)
    decode_time = 0
    if recording:
        head = recording.segment_path(recording.segments[0]).read_bytes()[:512]
        at = head.find(b"tfdt")
        if at >= 0 and head[at + 4] == 1:
            decode_time = int.from_bytes(head[at + 8 : at + 16], "big")
        elif at >= 0:
            decode_time = int.from_bytes(head[at + 8 : at + 12], "big")
    return f"MPEGTS:{(decode_time * 90000 // 48000) % 2**33},LOCAL:00:00:00.000"


@router.get("/replay/{space_id}/transcript.vtt", tags=["captions"], summary="Transcript (WebVTT)")
async def transcript_vtt(space_id: SpaceId, svc: ServicesDep) -> Response:
    cues, root = await _cues(svc, space_id)
    mapping = await asyncio.to_thread(_timestamp_map, root, space_id)
    return Response(
        render_webvtt(cues, mapping), media_type=VTT_TYPE, headers=_headers(TRANSCRIPT_CACHE)
    )


@router.get("/replay/{space_id}/transcript.txt", tags=["captions"], summary="Transcript (text)")
async def transcript_text(space_id: SpaceId, svc: ServicesDep) -> Response:
    cues, _ = await _cues(svc, space_id)
    headers = _headers(TRANSCRIPT_CACHE)
    headers["Content-Disposition"] = f'inline; filename="{space_id}.txt"'
    return Response(render_text(cues), media_type=TEXT_TYPE, headers=headers)


class CueView(BaseModel):
    start: float = Field(description="Seconds from the start of the replay.")
    end: float
    text: str


class TranscriptView(BaseModel):
    cues: list[CueView]


@router.get(
    "/replay/{space_id}/transcript.json",
    tags=["captions"],
    summary="Transcript (JSON)",
    response_model=TranscriptView,
)
async def transcript_json(
    space_id: SpaceId, svc: ServicesDep, response: Response
) -> TranscriptView:
    cues, _ = await _cues(svc, space_id)
    response.headers.update(_headers(TRANSCRIPT_CACHE))
    return TranscriptView(
        cues=[CueView(start=round(c.start, 3), end=round(c.end, 3), text=c.text) for c in cues]
    )


@router.get("/replay/{space_id}/main.m3u8", tags=["captions"], summary="Replay with subtitles")
async def replay_multivariant(space_id: SpaceId, svc: ServicesDep) -> Response:
    """The replay's multivariant playlist: the audio (index.m3u8) and, as its SUBTITLES group,
    the transcript (RFC 8216bis section 4.4.6.1: EXT-X-MEDIA TYPE=SUBTITLES; the variant names
    the group in its SUBTITLES attribute, section 4.4.6.2)."""
    await _cues(svc, space_id)
    variant = render_multivariant(
        "index.m3u8", bandwidth=BANDWIDTH, average_bandwidth=BANDWIDTH - 4000
    )
    media = (
        '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English (transcript)",'
        'LANGUAGE="en",DEFAULT=YES,AUTOSELECT=YES,URI="subtitles.m3u8"'
    )
    lines = variant.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("#EXT-X-STREAM-INF"))
    lines.insert(at, media)
    lines[at + 1] = lines[at + 1].replace(
        f'CODECS="{AAC_LC}"', f'CODECS="{AAC_LC}",SUBTITLES="subs"'
    )
    return Response(
        "\n".join(lines) + "\n", media_type=PLAYLIST_TYPE, headers=_headers(TRANSCRIPT_CACHE)
    )


@router.get("/replay/{space_id}/subtitles.m3u8", tags=["captions"], summary="Subtitles playlist")
async def subtitles_playlist(space_id: SpaceId, svc: ServicesDep) -> Response:
    """One WebVTT segment as long as the replay (a VOD subtitles rendition)."""
    await _cues(svc, space_id)
    root = svc.broadcasts.recordings_dir
    assert root is not None
    recording = await asyncio.to_thread(Recording.load, root, space_id)
    seconds = float(recording.duration)
    body = (
        "#EXTM3U\n"
        f"#EXT-X-VERSION:{VERSION}\n"
        f"#EXT-X-TARGETDURATION:{max(1, int(seconds + 0.999))}\n"
        "#EXT-X-PLAYLIST-TYPE:VOD\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n"
        f"#EXTINF:{seconds:.3f},\n"
        "transcript.vtt\n"
        "#EXT-X-ENDLIST\n"
    )
    return Response(body, media_type=PLAYLIST_TYPE, headers=_headers(TRANSCRIPT_CACHE))


# Search


class HitView(BaseModel):
    start: float = Field(description="Seconds from the start of the replay.")
    at: str = Field(description="The same, as HH:MM:SS.mmm.")
    text: str


class ResultView(BaseModel):
    space_id: str
    title: str
    ended_at: float | None = Field(description="When the space ended (Unix seconds).")
    url: str = Field(description="The space's page, at the first matching line.")
    lines: list[HitView]


class SearchView(BaseModel):
    query: str
    results: list[ResultView]


def _result(result: SearchResult) -> ResultView:
    first = result.lines[0].start if result.lines else 0.0
    return ResultView(
        space_id=result.space_id,
        title=result.title,
        ended_at=result.ended_at,
        url=f"/s/{result.space_id}?t={int(first)}",
        lines=[
            HitView(start=round(h.start, 3), at=format_timestamp(h.start), text=h.text)
            for h in result.lines
        ],
    )


@router.get("/api/search", response_model=SearchView, tags=["captions"], summary="Search")
async def search(
    svc: ServicesDep,
    response: Response,
    q: Annotated[str, Query(description=f"Words to find (at most {MAX_QUERY} characters).")] = "",
) -> SearchView:
    """The ended spaces whose transcripts hold every word of `q` (the last one also as a
    prefix), best first, each with its matching lines and their times in the replay. Words
    only: quotes, `*`, `NEAR` and the like are taken as text, never as search syntax."""
    if svc.transcripts is None:
        raise NotFound("this server keeps no transcripts")
    try:
        results = await asyncio.to_thread(svc.transcripts.search, q)
    except BadQuery as exc:
        raise ApiError(400, str(exc)) from None
    response.headers["Cache-Control"] = SEARCH_CACHE
    return SearchView(query=q, results=[_result(r) for r in results])
