"""Builds a node from its configuration: the one place that picks local or Redis.

Without `redis_url` (the embedded default, one node): SQLite and in-process events, counters,
lines and rate limits, in the data directory. With it (several nodes): every shared thing in
Redis through the node's one pair of Redis clients, media ownership by lease, forwarding to
the owner. Nothing else in the project asks which it is.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from ..accounts import Accounts, RedisAccounts, SqliteAccounts
from ..bus import Bus, LocalBus
from ..bus.redis import RedisBus
from ..captions.search import TranscriptIndex
from ..captions.service import Captions, CaptionsSettings
from ..cluster.forward import Forwarder
from ..cluster.nodes import LocalNodes, Nodes, RedisNodes
from ..cluster.ownership import Ownership, RedisOwnership, SoleOwner
from ..cluster.redis_client import RedisClients, warn_if_one_failover_stops_writes
from ..cluster.redis_health import RedisHealth
from ..counting import LocalPresence, Presence
from ..counting.audience_stats import AudienceStats
from ..counting.local_stats import LocalStats
from ..counting.redis_presence import RedisPresence
from ..counting.redis_stats import RedisStats
from ..domain import NotFound
from ..media.broadcasts import Broadcasts
from ..media.clip_budget import ClipBudget
from ..media.retention import RetentionStatus
from ..media.speakers import Speakers
from ..ratelimit import LocalRateLimits, RateLimits, RedisRateLimits, WriteLimits
from ..security.secrets import load_secrets
from ..security.tickets import TicketSigner
from ..security.tokens import TokenSigner
from ..store import ModerationStore, SqliteModeration, SqliteStore, Store
from ..store.redis import RedisStore
from ..store.redis_moderation import RedisModeration
from ..waiting import Lines, LocalLines, RedisLines, WaitingRoom
from .config import Config
from .data_dir import (
    RECORDINGS_DIR,
    STATS_FILE,
    STORE_FILE,
    TRANSCRIPTS_FILE,
    DataDirLock,
    lock_for_node,
)
from .feed import Feeds
from .metrics import Metrics
from .services import Services


@dataclass
class Shared:
    """What the nodes of a deployment share (or, embedded, what this one node keeps)."""

    store: Store
    moderation: ModerationStore
    bus: Bus
    presence: Presence
    stats: AudienceStats
    lines: Lines
    rate_limits: RateLimits
    accounts: Accounts
    nodes: Nodes
    secrets: list[bytes]
    redis: RedisClients | None = None
    """The Redis clients everything above uses (None: embedded)."""
    lock: DataDirLock | None = None
    """The node's shared lock on its data directory (data_dir.py), held until it stops."""


def shared_state(config: Config) -> Shared:
    """Where the state the nodes share lives: Redis with `redis_url`, else the data directory."""
    target = config.redis_target
    secrets = load_secrets(config.data_dir, target)
    if target is not None:
        warn_if_one_failover_stops_writes(target)
        redis = RedisClients(target)
        presence = RedisPresence(client=redis.text, interval=config.heartbeat_interval)
        return Shared(
            # Spaces and questions: acknowledged once replicas hold them (with Sentinel).
            store=RedisStore(client=redis.text, replication=redis.replication),
            moderation=RedisModeration(client=redis.text, replication=redis.replication),
            bus=RedisBus(client=redis.text),
            presence=presence,
            stats=RedisStats(client=redis.binary, presence=presence, interval=presence.interval),
            lines=RedisLines(client=redis.text),
            # The deployment's limits, not each node's (N nodes must not mean N times the rates).
            rate_limits=RedisRateLimits(client=redis.text),
            # A revocation counts once a replica holds it (with Sentinel): a failover never
            # brings a revoked account back.
            accounts=RedisAccounts(client=redis.text, replication=redis.replication),
            nodes=RedisNodes(client=redis.text),
            secrets=secrets,
            redis=redis,
        )
    return Shared(
        store=SqliteStore(config.data_dir / STORE_FILE),
        # The same file as the spaces (backups copy both at once), a connection of its own.
        moderation=SqliteModeration(config.data_dir / STORE_FILE),
        bus=LocalBus(),
        presence=LocalPresence(config.heartbeat_interval),
        # Saved in the data directory, so the numbers survive a restart.
        stats=LocalStats(path=config.data_dir / STATS_FILE),
        lines=LocalLines(),
        rate_limits=LocalRateLimits(),
        # In the store's file, so that `causerie backup` copies the accounts too.
        accounts=SqliteAccounts(config.data_dir / STORE_FILE),
        nodes=LocalNodes(),
        secrets=secrets,
    )


def accounts_store(data_dir: Path, redis_url: str | None) -> Accounts:
    """The accounts alone, where the nodes keep them (for `causerie invite` and `revoke`)."""
    if redis_url is not None:
        return RedisAccounts(redis_url)
    data_dir.mkdir(parents=True, exist_ok=True)
    return SqliteAccounts(data_dir / STORE_FILE)


def build_services(config: Config) -> tuple[Services, Shared]:
    """The node's parts, wired together; with what they share, for closing at the end."""
    config.data_dir.mkdir(parents=True, exist_ok=True)
    lock = lock_for_node(config.data_dir)  # before anything is opened: no restore under way
    shared = shared_state(config)
    shared.lock = lock
    recordings = config.data_dir / RECORDINGS_DIR
    broadcasts = Broadcasts(recordings_dir=recordings)
    ownership: Ownership
    if shared.redis is not None:
        # Whose media runs where: one owner per space (a lease), the others forward to it.
        ownership = RedisOwnership(
            None,
            broadcasts,
            config.node_url,
            client=shared.redis.text,
            replication=shared.redis.replication,
        )
    else:
        ownership = SoleOwner(broadcasts, config.node_url)
    svc = Services(
        config=config,
        store=shared.store,
        signer=TokenSigner(shared.secrets),
        presence=shared.presence,
        broadcasts=broadcasts,
        bus=shared.bus,
        limits=WriteLimits(shared.rate_limits),
        metrics=Metrics(),
        speakers=Speakers(
            broadcasts,
            ice_servers=config.rtc_ice_servers,
            host_addresses=config.rtc_host_addresses,
        ),
        stats=shared.stats,
        ownership=ownership,
        waiting_room=WaitingRoom(
            shared.lines,
            TicketSigner(shared.secrets),
            shared.presence,
            presence_window=2 * config.heartbeat_interval,
        ),
        # An in-process bus starts empty with the node: what it cannot know, its feed says.
        moderation=shared.moderation,
        feeds=Feeds(shared.bus, time.time, history_since=None if shared.redis else time.time()),
        accounts=shared.accounts,
        nodes=shared.nodes,
        clip_budget=ClipBudget(
            recordings,
            per_space=config.clip_bytes_per_space,
            total=config.clip_bytes_total,
            min_free=config.min_free_disk_bytes,
        ),
        recordings=RetentionStatus(
            keep_seconds=config.keep_recordings_seconds, max_bytes=config.recordings_max_bytes
        ),
    )
    if ownership.shared:
        svc.forwarder = Forwarder(ownership, _space_state(svc))
    if shared.redis is not None:
        svc.redis_health = RedisHealth(shared.redis.text)
    svc.transcripts = TranscriptIndex(config.data_dir / TRANSCRIPTS_FILE)
    svc.captions = Captions(
        CaptionsSettings(model=config.captions_model, max_spaces=config.captions_max),
        broadcasts,
        shared.bus,
        shared.store.get_space,
        svc.transcripts,
    )
    # After every change of a space: mutes reach the mixer, demoted speakers lose their session.
    svc.stage_listeners.append(svc.speakers.stage_changed)
    return svc, shared


def _space_state(svc: Services) -> Callable[[str], Awaitable[str | None]]:
    async def state(space_id: str) -> str | None:
        try:
            return (await svc.cached_space(space_id)).state.value
        except NotFound:
            return None

    return state
