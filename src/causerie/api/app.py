"""The node's ASGI application: the API, the pages, and the LL-HLS origin beside them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from .. import __version__
from ..bus import Bus, LocalBus
from ..bus.redis import RedisBus
from ..config import Config
from ..counting import LocalPresence, Presence
from ..counting.redis_presence import RedisPresence
from ..counting.redis_stats import RedisStats
from ..counting.stats import LocalStats
from ..counting.waiting import LocalLines, RedisLines, WaitingRoom
from ..domain import NotFound, SpaceState
from ..domain.waiting_room import TicketSigner
from ..media.broadcasts import Broadcasts
from ..media.ingest import Speakers
from ..media.ownership import RedisOwnership, SoleOwner
from ..redis_ratelimit import RedisRateLimits
from ..secret_file import load_or_create_secrets
from ..store import SqliteStore, Store
from ..store.redis import RedisStore, shared_secrets
from ..tokens import TokenSigner
from . import audience, events, levels, pages, replay, spaces, stage, whip
from .audience import Activity, Limits
from .calendar import router as calendar_router
from .dash import DashOrigin
from .errors import install_error_handlers
from .forward import Forwarder
from .hls import HlsOrigin
from .joins import FastJoins
from .limits import (
    Admission,
    BodyLimit,
    Receive,
    Scope,
    Send,
    header_limit_error,
    send_json_error,
)
from .metrics import Metrics, labels
from .services import Services
from .stats import publish_stats
from .stats import router as stats_router

log = logging.getLogger(__name__)

DESCRIPTION = """\
Live audio spaces for very large audiences. Speakers publish over WebRTC; listeners fetch
Low-Latency HLS from `/hls/{space_id}/index.m3u8`. Tokens are sent as `Authorization: Bearer`.
Errors are JSON: `{"error": code, "message": text}`.
"""


def shared_state(config: Config) -> tuple[Store, Bus, Presence, list[bytes]]:
    """Where the state the nodes share lives; the only place that knows which it is.

    With `redis_url`: Redis, for several nodes (spaces, questions, events, listener counts and
    the signing secret). Without: the embedded default, SQLite and in-process counters in the
    data directory, for one node.
    """
    if config.redis_url:
        url = config.redis_url
        secrets = shared_secrets(url, config.data_dir)
        presence = RedisPresence(url, interval=config.heartbeat_interval)
        return RedisStore(url), RedisBus(url), presence, secrets
    store = SqliteStore(config.data_dir / "causerie.sqlite3")
    presence = LocalPresence(config.heartbeat_interval)
    return store, LocalBus(), presence, load_or_create_secrets(config.data_dir)


def build_services(config: Config) -> Services:
    """The node's parts; shared state as `shared_state` chooses (SQLite or Redis)."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    metrics = Metrics()
    broadcasts = Broadcasts(recordings_dir=config.data_dir / "recordings")
    store, bus, presence, secrets = shared_state(config)
    svc = Services(
        config=config,
        store=store,
        signer=TokenSigner(secrets),
        presence=presence,
        # Embedded: saved in the data directory, so it survives a restart. With Redis: shared.
        stats=RedisStats(config.redis_url, presence, interval=presence.interval)
        if isinstance(presence, RedisPresence)
        else LocalStats(path=config.data_dir / "stats.sqlite3"),
        broadcasts=broadcasts,
        bus=bus,
        # With Redis, rate limits are the deployment's, not each node's (N nodes: not N times).
        activity=Activity(
            Limits(RedisRateLimits(config.redis_url)) if config.redis_url else Limits()
        ),
        metrics=metrics,
        speakers=Speakers(
            broadcasts,
            ice_servers=config.rtc_ice_servers,
            host_addresses=config.rtc_host_addresses,
        ),
    )
    lines = RedisLines(config.redis_url) if config.redis_url else LocalLines()
    svc.waiting_room = WaitingRoom(
        lines, TicketSigner(secrets), presence, presence_window=2 * config.heartbeat_interval
    )
    # After every change of a space: mutes reach the mixer, demoted speakers lose their session.
    svc.stage_listeners.append(svc.speakers.stage_changed)
    # Whose media runs where: with Redis, one owner per space (a lease) and forwarding.
    if config.redis_url:
        svc.ownership = RedisOwnership(config.redis_url, broadcasts, config.node_url)
        svc.forwarder = Forwarder(svc.ownership, _space_state(svc))
    else:
        svc.ownership = SoleOwner(broadcasts, config.node_url)
    return svc


def _space_state(svc: Services) -> Callable[[str], Awaitable[str | None]]:
    async def state(space_id: str) -> str | None:
        try:
            return (await svc.cached_space(space_id)).state.value
        except NotFound:
            return None

    return state


class StoreSpaces:
    """The live spaces, as media/ownership.py asks for them."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def live(self) -> list[tuple[str, bool]]:
        spaces = await self.store.list_spaces([SpaceState.LIVE], limit=10_000)
        return [(space.id, space.recording) for space in spaces]

    async def recorded(self, space_id: str) -> bool:
        try:
            return (await self.store.get_space(space_id)).recording
        except NotFound:
            return False


async def resume_live_spaces(svc: Services) -> asyncio.Task[None] | None:
    """After a restart, put the spaces that were live back on the air.

    Embedded: all of them, here, now. With Redis: a supervisor task that keeps this node's share
    of them on the air (claims, renews, fails over: media/ownership.py); returned to be cancelled.
    """
    assert svc.ownership is not None
    spaces = StoreSpaces(svc.store)
    if not svc.ownership.shared:
        await svc.ownership.supervise(spaces)
        return None
    return asyncio.create_task(svc.ownership.supervise(spaces), name="media-ownership")


def create_api(svc: Services) -> FastAPI:
    """The control plane (JSON API) and the pages."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        supervisor = await resume_live_spaces(svc)
        counts = asyncio.create_task(events.publish_counts(svc), name="publish-counts")
        numbers = asyncio.create_task(publish_stats(svc), name="publish-stats")
        activity = asyncio.create_task(audience.publish_activity(svc), name="publish-activity")
        speaking = asyncio.create_task(levels.publish_speaking(svc), name="publish-speaking")
        recording = asyncio.create_task(
            events.publish_recording_problems(svc), name="publish-recording-problems"
        )
        stage = None
        if svc.ownership is not None and svc.ownership.shared:  # stage changes made elsewhere
            stage = asyncio.create_task(whip.sync_sessions(svc), name="sync-sessions")
        saving = None
        if isinstance(svc.stats, LocalStats):
            saving = asyncio.create_task(svc.stats.keep_saved(), name="save-stats")
        elif isinstance(svc.stats, RedisStats):
            saving = asyncio.create_task(svc.stats.keep_shared(), name="share-stats")
        try:
            yield
        finally:
            counts.cancel()
            numbers.cancel()
            activity.cancel()
            speaking.cancel()
            recording.cancel()
            if stage is not None:
                stage.cancel()
            if saving is not None:
                saving.cancel()
            if isinstance(svc.stats, LocalStats):
                svc.stats.save()
            elif isinstance(svc.stats, RedisStats):
                await svc.stats.close()  # shares what is left
            await svc.bus.close()
            if svc.activity.limits.shared is not None:
                await svc.activity.limits.shared.close()
            await svc.speakers.close_all()
            if supervisor is not None:
                supervisor.cancel()
                await asyncio.gather(supervisor, return_exceptions=True)
            await svc.broadcasts.stop_all()
            if svc.ownership is not None:
                await svc.ownership.close()  # another node takes our spaces at its next tick
            if svc.forwarder is not None:
                await svc.forwarder.aclose()
            close_presence = getattr(svc.presence, "close", None)  # sends batched heartbeats
            if close_presence is not None:
                await close_presence()
            if svc.waiting_room is not None:
                await svc.waiting_room.close()
            await svc.store.close()

    api = FastAPI(
        title="causerie",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/api/docs",
        redoc_url=None,
    )
    api.state.services = svc
    install_error_handlers(api)
    # Before spaces: /api/spaces/{id}.ics would otherwise match /api/spaces/{space_id}.
    api.include_router(calendar_router)
    api.include_router(stats_router)
    api.include_router(spaces.router)
    api.include_router(events.router)
    api.include_router(whip.router)
    api.include_router(stage.router)
    api.include_router(audience.router)
    api.include_router(levels.router)
    api.include_router(replay.router)
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
            svc.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8"
        )

    return api


def _declare_metrics(svc: Services, admission: Admission) -> None:
    m = svc.metrics
    m.counter("causerie_joins_total", "Listener tokens issued")
    m.counter("causerie_join_waits_total", "Joins of a full space answered with a place in line")
    m.counter("causerie_heartbeats_total", "Listener heartbeats received")
    m.counter("causerie_spaces_created_total", "Spaces created")
    m.counter("causerie_spaces_started_total", "Spaces started")
    m.counter("causerie_event_streams_total", "Live event streams opened")
    m.counter("causerie_hls_requests_total", "Requests to the LL-HLS origin, by kind and status")
    m.counter("causerie_dash_requests_total", "Requests to the LL-DASH origin, by kind and status")
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
    m.gauge(
        "causerie_requests_refused",
        "Control-plane requests refused with 503 (overload)",
        lambda: float(admission.refused),
    )
    m.gauge(
        "causerie_requests_refused_for_lag",
        "Of those, refused because the event loop ran late",
        lambda: float(admission.refused_for_lag),
    )
    m.gauge(
        "causerie_event_loop_lag_seconds",
        "How late the event loop runs, on average lately (the ticker behind admission control)",
        admission.lag.average,
    )


class Node:
    """The whole node as one ASGI app: `/hls/` straight to the origin, the rest guarded."""

    def __init__(self, svc: Services) -> None:
        self.services = svc
        self.api = create_api(svc)
        # Joins and heartbeats take a fast path (joins.py), still behind the same guards.
        self.admission = Admission(
            FastJoins(self.api, svc), svc.config.max_inflight, max_lag=svc.config.max_lag
        )
        self.api.state.admission = self.admission  # its refusals are in the audience numbers
        self.control = BodyLimit(self.admission, svc.config.max_body_bytes)
        if svc.config.trusted_proxies:
            # The client's address (per-IP limits) from X-Forwarded-For, believed from these
            # peers only: the rightmost address they did not add themselves.
            self.control = ProxyHeadersMiddleware(self.control, list(svc.config.trusted_proxies))
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
        _declare_metrics(svc, self.admission)
        svc.metrics.gauge(
            "causerie_dash_streams_open",
            "LL-DASH segments being streamed to listeners or edges now",
            lambda: float(self.dash.streams_open),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (too_large := header_limit_error(scope)):
            await send_json_error(send, 431, "too_large", too_large)
            return
        if scope["type"] == "http" and scope["path"].startswith("/hls/"):
            await self.hls(scope, receive, send)
        elif scope["type"] == "http" and (
            scope["path"].startswith("/dash/") or scope["path"] == "/time"
        ):
            await self.dash(scope, receive, send)  # media: never refused for control-plane load
        elif scope["type"] == "lifespan":
            try:
                await self.api(scope, receive, send)
            finally:
                self.admission.lag.stop()
        else:
            await self.control(scope, receive, send)


def create_app(config: Config) -> Node:
    """The ASGI application for one node, built from its configuration."""
    return Node(build_services(config))
