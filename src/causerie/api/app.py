"""The node's ASGI application: the API, the pages, and the LL-HLS origin beside them.

The request path (docs/architecture.md has the picture):

    header limits ─► /hls/…  ─► HlsOrigin (media: never refused for control-plane load)
                  ├► /dash/…, /time ─► DashOrigin (media: chunked CMAF segments, the MPD)
                  ├► /feed/… ─► FeedOrigin (the audience's live events, in windows)
                  └► the rest ─► PublicCors ─► ProxyHeaders (trusted edges only) ─► BodyLimit
                                 ─► Admission ─► FastJoins (joins, heartbeats) ─► FastAPI (routes)

Joins and heartbeats, the requests of a storm, are answered before all of this by the HTTP
protocol itself (join_lane.py), with the same guards in the same order and the same answers.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from .. import __version__
from ..asgi import ASGIApp, Receive, Scope, Send, send_error
from ..captions.service import Captions
from ..cluster.redis_health import RedisHealth
from ..domain import NotFound
from ..media.timing import MediaTiming
from ..node.metrics import HistogramReading, Metrics, labels
from ..node.services import Services
from . import (
    admin,
    audience,
    calendar,
    captions,
    embed,
    events,
    invites,
    levels,
    pages,
    replay,
    reports,
    settings,
    spaces,
    stage,
    stats,
    transparency,
    whip,
)
from .admission import Admission, BodyLimit, header_limit_error
from .cors import PublicCors
from .dash import DashOrigin
from .errors import install_error_handlers
from .feed import FeedOrigin
from .hls import HlsOrigin
from .join_lane import JoinLane
from .joins import FastJoins
from .metrics_access import check_metrics_access

DESCRIPTION = """\
Live audio spaces for very large audiences. Speakers publish over WebRTC; listeners fetch
Low-Latency HLS from `/hls/{space_id}/index.m3u8`. Tokens are sent as `Authorization: Bearer`.
Errors are JSON: `{"error": code, "message": text}`. Sites embed a space's player with an
`<iframe>` of `/embed/{space_id}`, whose code `/oembed` gives (docs/embed.md); what players and
embeds read carries `Access-Control-Allow-Origin: *`.
"""


class Lifecycle(Protocol):
    """What runs beside the requests (node/lifecycle.py): started after the server is up,
    stopped before it goes away."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def create_api(svc: Services, lifecycle: Lifecycle) -> FastAPI:
    """The control plane (JSON API) and the pages."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await lifecycle.start()
        try:
            yield
        finally:
            await lifecycle.stop()

    api = FastAPI(
        title="causerie",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # /api/docs is pages.api_docs: Swagger UI from the package, not FastAPI's page,
        # which loads it from a public CDN without integrity checks.
        docs_url=None,
        redoc_url=None,
        # Starlette would answer `/api/spaces/` with a redirect to an absolute URL built from
        # the request's Host header, which the client chooses: a 404 instead (SECURITY.md).
        redirect_slashes=False,
    )
    api.state.services = svc
    install_error_handlers(api)
    # Before spaces: /api/spaces/{id}.ics would otherwise match /api/spaces/{space_id}.
    api.include_router(calendar.router)
    api.include_router(stats.router)
    api.include_router(spaces.router)
    api.include_router(events.router)
    api.include_router(whip.router)
    api.include_router(stage.router)
    api.include_router(audience.router)
    api.include_router(levels.router)
    api.include_router(replay.router)
    api.include_router(reports.router)
    api.include_router(transparency.router)
    api.state.transparency = transparency.Figures()
    api.include_router(captions.router)
    api.include_router(settings.router)
    api.include_router(embed.router)
    api.include_router(admin.router)
    api.include_router(invites.router)
    api.include_router(pages.router)
    api.mount("/static", pages.static_files(), name="static")

    @api.get("/healthz", summary="Liveness", tags=["operations"])
    async def healthz() -> dict[str, object]:
        return {"status": "ok", "version": __version__, "live": len(svc.broadcasts.live_ids())}

    @api.get(
        "/metrics",
        summary="Prometheus metrics",
        tags=["operations"],
        response_class=PlainTextResponse,
    )
    async def metrics(request: Request) -> PlainTextResponse:
        """The node's numbers (Prometheus text): to this machine directly, or with the
        metrics token (`--metrics-token`); see SECURITY.md."""
        check_metrics_access(request, svc.config.metrics_token)
        now = svc.clock()
        listeners = {
            labels(space=space_id): float(await svc.presence.listening_now(space_id, now))
            for space_id in svc.broadcasts.live_ids()
        }
        svc.metrics.gauge(
            "causerie_listeners_now",
            "Listeners seen in the last heartbeat window",
            lambda: listeners,
        )
        return PlainTextResponse(
            svc.metrics.render(),
            media_type="text/plain; version=0.0.4; charset=utf-8",
            headers={"Cache-Control": "no-store"},
        )

    return api


def _declare_metrics(svc: Services, admission: Admission) -> None:
    m = svc.metrics
    m.counter("causerie_joins_total", "Listener tokens issued")
    m.counter("causerie_join_waits_total", "Joins of a full space answered with a place in line")
    m.counter("causerie_heartbeats_total", "Listener heartbeats received")
    m.counter("causerie_spaces_created_total", "Spaces created")
    m.counter("causerie_spaces_started_total", "Spaces started")
    m.counter(
        "causerie_spaces_ended_idle_total",
        "Live spaces ended by the node, nobody having been on the microphone (--end-idle-after)",
    )
    m.counter("causerie_event_streams_total", "Live event streams opened")
    m.counter("causerie_hls_requests_total", "Requests to the LL-HLS origin, by kind and status")
    m.counter("causerie_dash_requests_total", "Requests to the LL-DASH origin, by kind and status")
    m.counter("causerie_feed_requests_total", "Requests for event windows, by kind and status")
    m.gauge(
        "causerie_event_streams_open",
        "Live event streams (SSE) open on this node",
        lambda: float(svc.event_streams),
    )
    m.gauge(
        "causerie_live_spaces",
        "Spaces on the air on this node",
        lambda: float(len(svc.broadcasts.live_ids())),
    )
    m.gauge(
        "causerie_requests_in_flight",
        "Control-plane requests being handled",
        lambda: float(admission.in_flight),
    )
    m.counter(
        "causerie_requests_refused_total",
        "Control-plane requests refused with 503 (overload)",
        lambda: float(admission.refused),
    )
    m.counter(
        "causerie_requests_refused_for_lag_total",
        "Of those, refused because the event loop ran late",
        lambda: float(admission.refused_for_lag),
    )
    m.counter(
        "causerie_joins_refused_total",
        "Joins refused with 503 (overload); admitted ones are causerie_joins_total",
        lambda: float(admission.refused_joins),
    )
    m.gauge(
        "causerie_event_loop_lag_seconds",
        "How late the event loop runs, on average lately (the ticker behind admission control)",
        admission.lag.average,
    )
    _declare_media_metrics(m, svc.broadcasts.timing)
    _declare_recording_metrics(m, svc)
    if svc.captions is not None:
        _declare_captions_metrics(m, svc.captions)
    if svc.redis_health is not None:
        _declare_redis_metrics(m, svc.redis_health)


def _declare_recording_metrics(m: Metrics, svc: Services) -> None:
    status = svc.recordings
    root = svc.broadcasts.recordings_dir

    def disk_free() -> float:
        where = root if root is not None and root.is_dir() else svc.config.data_dir
        return float(shutil.disk_usage(where).free)

    m.gauge(
        "causerie_recordings_bytes",
        "Disk the recordings on this node take (measured every 5 min)",
        lambda: float(status.bytes),
    )
    m.gauge(
        "causerie_recordings_live_bytes",
        "Of those, what live recordings (never removed) take",
        lambda: float(status.live_bytes),
    )
    m.gauge("causerie_recordings", "Recordings kept on this node", lambda: status.recordings)
    m.gauge(
        "causerie_recordings_max_bytes",
        "The recordings' disk budget (--recordings-max-gb); 0: none",
        lambda: float(status.max_bytes),
    )
    m.gauge(
        "causerie_recordings_over_budget",
        "1 while the live recordings alone take more than the budget",
        lambda: 1.0 if status.over_budget else 0.0,
    )
    m.counter(
        "causerie_recordings_removed_total",
        "Recordings removed, by reason: age (--keep-recordings) or budget",
        lambda: {labels(reason=reason): float(n) for reason, n in status.removed.items()},
    )

    def incomplete() -> float:
        recorders = (svc.broadcasts.recorder(space_id) for space_id in svc.broadcasts.live_ids())
        return float(sum(1 for r in recorders if r is not None and r.recording_error))

    m.gauge(
        "causerie_recordings_incomplete",
        "Live recordings on this node that could not write everything (a full disk, say)",
        incomplete,
    )
    m.gauge(
        "causerie_recordings_disk_free_bytes",
        "Free space on the recordings' file system",
        disk_free,
    )


def _declare_redis_metrics(m: Metrics, health: RedisHealth) -> None:
    m.gauge(
        "causerie_redis_up",
        "1 if the last PING to Redis (every 5 s) was answered, else 0",
        lambda: 1.0 if health.up else 0.0,
    )
    m.gauge(
        "causerie_redis_ping_seconds",
        "Round trip of the last answered PING to Redis, retries included",
        lambda: health.round_trip if health.round_trip is not None else float("nan"),
    )
    m.counter(
        "causerie_redis_ping_failures_total",
        "PINGs to Redis that failed (after the client's retries)",
        lambda: float(health.failures),
    )


def _declare_media_metrics(m: Metrics, timing: MediaTiming) -> None:
    m.histogram(
        "causerie_media_loop_lateness_seconds",
        "How late each 20 ms tick of the media loops ran after its deadline",
        lambda: HistogramReading(timing.bounds, timing.lateness_counts, timing.lateness_sum),
    )
    m.counter("causerie_parts_total", "LL-HLS parts made", lambda: float(timing.parts))
    m.counter(
        "causerie_parts_late_total",
        "Parts ready more than one part duration after their audio ended",
        lambda: float(timing.parts_late),
    )
    m.counter(
        "causerie_media_frames_skipped_total",
        "20 ms frames of audio dropped after the media loop stalled for over a second",
        lambda: float(timing.frames_skipped),
    )


def _declare_captions_metrics(m: Metrics, captions: Captions) -> None:
    m.gauge(
        "causerie_captions_available",
        "1 if this node can caption (its model loaded), else 0",
        lambda: 1.0 if captions.ready and captions.problem is None else 0.0,
    )
    m.gauge(
        "causerie_captions_spaces",
        "Live spaces captioned now",
        lambda: float(len(captions.workers)),
    )
    m.counter(
        "causerie_captions_lines_total",
        "Caption lines made",
        lambda: float(captions.totals().lines),
    )
    m.counter(
        "causerie_captions_decode_seconds_total",
        "CPU seconds the recognizers spent decoding",
        lambda: captions.totals().decode_seconds,
    )
    m.counter(
        "causerie_captions_frames_dropped_total",
        "20 ms frames of program audio dropped because a recognizer was behind",
        lambda: float(captions.totals().frames_dropped),
    )


class Node:
    """The whole node as one ASGI app: `/hls/` straight to the origin, the rest guarded."""

    def __init__(self, svc: Services, lifecycle: Lifecycle) -> None:
        self.services = svc
        self.lifecycle = lifecycle
        self.api = create_api(svc, lifecycle)
        # Joins and heartbeats take a fast path (joins.py), still behind the same guards.
        self.admission = Admission(
            FastJoins(self.api, svc), svc.config.max_inflight, max_lag=svc.config.max_lag
        )
        self.api.state.admission = self.admission  # its refusals are in the audience numbers
        # The node's status report (the admin console) shows how busy request handling is.
        svc.load.event_loop_lag = self.admission.lag.average
        svc.load.requests_in_flight = lambda: self.admission.in_flight
        self.control: ASGIApp = BodyLimit(self.admission, svc.config.max_body_bytes)
        # The same, answered inside the HTTP protocol without ASGI (cli.build_server).
        self.lane = JoinLane(svc, self.admission, svc.config.max_body_bytes)
        if svc.config.trusted_proxies:
            # The client's address (per-IP limits) from X-Forwarded-For, believed from these
            # peers only: the rightmost address they did not add themselves. (uvicorn types ASGI
            # apps with TypedDict scopes, Starlette and this node with mappings: one interface.)
            trusted = list(svc.config.trusted_proxies)
            self.control = ProxyHeadersMiddleware(self.control, trusted)  # type: ignore[arg-type,assignment]
        # Outermost: refusals (503, 413) of what the embeddable player asks carry CORS too.
        self.control = PublicCors(self.control)
        self.hls = HlsOrigin(
            svc.broadcasts,
            on_request=lambda kind, status: svc.metrics.inc(
                "causerie_hls_requests_total", kind=kind, status=str(status)
            ),
            forwarder=svc.forwarder,
        )
        self.dash = DashOrigin(
            svc.broadcasts,
            on_request=lambda kind, status: svc.metrics.inc(
                "causerie_dash_requests_total", kind=kind, status=str(status)
            ),
            forwarder=svc.forwarder,
        )
        self.feed = FeedOrigin(
            svc.feeds,
            created=self._space_created,
            on_request=lambda kind, status: svc.metrics.inc(
                "causerie_feed_requests_total", kind=kind, status=str(status)
            ),
        )
        _declare_metrics(svc, self.admission)
        svc.metrics.gauge(
            "causerie_dash_streams_open",
            "LL-DASH segments being streamed to listeners or edges now",
            lambda: float(self.dash.streams_open),
        )

    async def _space_created(self, space_id: str) -> float | None:
        try:
            space = await self.services.cached_space(space_id)
        except NotFound:
            return None
        return space.created_at.timestamp()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (too_large := header_limit_error(scope)):
            await send_error(send, 431, too_large)
            return
        if scope["type"] == "http" and scope["path"].startswith("/hls/"):
            await self.hls(scope, receive, send)
        elif scope["type"] == "http" and (
            scope["path"].startswith("/dash/") or scope["path"] == "/time"
        ):
            await self.dash(scope, receive, send)  # media: never refused for control-plane load
        elif scope["type"] == "http" and scope["path"].startswith("/feed/"):
            await self.feed(scope, receive, send)
        elif scope["type"] == "lifespan":
            try:
                await self.api(scope, receive, send)
            finally:
                self.admission.lag.stop()
        else:
            await self.control(scope, receive, send)
