"""The node's ASGI application: the API, the pages, and the LL-HLS origin beside them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse

from .. import __version__
from ..bus import Bus, LocalBus
from ..bus.redis import RedisBus
from ..config import Config
from ..counting import LocalPresence, Presence
from ..counting.redis_presence import RedisPresence
from ..counting.stats import LocalStats
from ..domain import SpaceState
from ..media.broadcasts import Broadcasts
from ..media.ingest import Speakers
from ..secret_file import load_or_create_secrets
from ..store import SqliteStore, Store
from ..store.redis import RedisStore, shared_secrets
from ..tokens import TokenSigner
from . import audience, events, levels, pages, replay, spaces, stage, whip
from .audience import Activity
from .calendar import router as calendar_router
from .errors import install_error_handlers
from .hls import HlsOrigin
from .limits import Admission, BodyLimit, Receive, Scope, Send
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
        return RedisStore(url), RedisBus(url), RedisPresence(url), secrets
    store = SqliteStore(config.data_dir / "causerie.sqlite3")
    return store, LocalBus(), LocalPresence(), load_or_create_secrets(config.data_dir)


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
        stats=LocalStats(),
        broadcasts=broadcasts,
        bus=bus,
        activity=Activity(),
        metrics=metrics,
        speakers=Speakers(
            broadcasts,
            ice_servers=config.rtc_ice_servers,
            host_addresses=config.rtc_host_addresses,
        ),
    )
    # After every change of a space: mutes reach the mixer, demoted speakers lose their session.
    svc.stage_listeners.append(svc.speakers.stage_changed)
    return svc


async def resume_live_spaces(svc: Services) -> None:
    """After a restart, put the spaces that were live back on the air."""
    for space in await svc.store.list_spaces([SpaceState.LIVE], limit=10_000):
        # A new run: its recording is appended to the space's, after a discontinuity.
        await svc.broadcasts.start(space.id, record=space.recording)
        log.info("resumed live space %s", space.id)


def create_api(svc: Services) -> FastAPI:
    """The control plane (JSON API) and the pages."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await resume_live_spaces(svc)
        counts = asyncio.create_task(events.publish_counts(svc), name="publish-counts")
        numbers = asyncio.create_task(publish_stats(svc), name="publish-stats")
        activity = asyncio.create_task(audience.publish_activity(svc), name="publish-activity")
        speaking = asyncio.create_task(levels.publish_speaking(svc), name="publish-speaking")
        try:
            yield
        finally:
            counts.cancel()
            numbers.cancel()
            activity.cancel()
            speaking.cancel()
            await svc.bus.close()
            await svc.speakers.close_all()
            await svc.broadcasts.stop_all()
            close_presence = getattr(svc.presence, "close", None)  # sends batched heartbeats
            if close_presence is not None:
                await close_presence()
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
    m.counter("causerie_heartbeats_total", "Listener heartbeats received")
    m.counter("causerie_spaces_created_total", "Spaces created")
    m.counter("causerie_spaces_started_total", "Spaces started")
    m.counter("causerie_event_streams_total", "Live event streams opened")
    m.counter("causerie_hls_requests_total", "Requests to the LL-HLS origin, by kind and status")
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


class Node:
    """The whole node as one ASGI app: `/hls/` straight to the origin, the rest guarded."""

    def __init__(self, svc: Services) -> None:
        self.services = svc
        self.api = create_api(svc)
        self.admission = Admission(self.api, svc.config.max_inflight)
        self.api.state.admission = self.admission  # its refusals are in the audience numbers
        self.control = BodyLimit(self.admission, svc.config.max_body_bytes)
        self.hls = HlsOrigin(
            svc.broadcasts,
            on_request=lambda kind, status: svc.metrics.inc(
                "causerie_hls_requests_total", kind=kind, status=str(status)
            ),
        )
        _declare_metrics(svc, self.admission)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/hls/"):
            await self.hls(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self.api(scope, receive, send)
        else:
            await self.control(scope, receive, send)


def create_app(config: Config) -> Node:
    """The ASGI application for one node, built from its configuration."""
    return Node(build_services(config))
