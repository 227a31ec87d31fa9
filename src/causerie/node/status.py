"""This node's status report: what the admin console's nodes view shows about it.

Made every few seconds by the `publish-node-status` loop and published through
`cluster/nodes.py` (to Redis, with several nodes), so that any node can show every node. The
load figures come from the admission control, which the HTTP side hands over at start-up
(`NodeLoad`): node/ never reaches into api/.
"""

from __future__ import annotations

import shutil

from .. import __version__
from ..cluster.nodes import Report
from ..cluster.redis_health import RedisHealth
from .services import Services


def _redis(health: RedisHealth) -> dict[str, object]:
    # Until the first PING (5 s after start) nobody knows: null, not "unreachable".
    checked = health.round_trip is not None or health.failures > 0
    return {"reachable": health.up if checked else None, "ping_seconds": health.round_trip}


async def node_report(svc: Services, cpu: float) -> Report:
    """This node's report now: version, load, the spaces it runs, Redis, the recordings' disk."""
    now = svc.clock()
    live = sorted(svc.broadcasts.live_ids())
    listeners = 0
    for space_id in live:
        listeners += await svc.presence.listening_now(space_id, now)
    health = svc.redis_health
    status = svc.recordings
    root = svc.broadcasts.recordings_dir
    where = root if root is not None and root.is_dir() else svc.config.data_dir
    return {
        "url": svc.config.node_url,
        "version": __version__,
        "started_at": svc.started_at,
        "seen_at": now,
        "cpu": round(cpu, 3),
        "event_loop_lag_seconds": round(svc.load.event_loop_lag(), 4),
        "requests_in_flight": svc.load.requests_in_flight(),
        "event_streams_open": svc.event_streams,
        "live_spaces": live,
        "listeners_now": listeners,
        "redis": None if health is None else _redis(health),
        "recordings": {
            "bytes": status.bytes,
            "live_bytes": status.live_bytes,
            "count": status.recordings,
            "max_bytes": status.max_bytes,
            "keep_days": status.keep_seconds / 86400,
            "over_budget": status.over_budget,
            "removed": dict(status.removed),
            "disk_free_bytes": shutil.disk_usage(where).free,
        },
    }
