"""The parts a node is made of, built once from the configuration (factory.py) and shared by
the HTTP adapters (api/), the background loops (loops.py) and the use cases (joins.py)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..accounts import Accounts
from ..bus import Bus
from ..captions.search import TranscriptIndex
from ..captions.service import Captions
from ..cluster.forward import Forwarder
from ..cluster.nodes import LocalNodes, Nodes
from ..cluster.ownership import Ownership
from ..cluster.redis_health import RedisHealth
from ..counting import Presence
from ..counting.audience_stats import AudienceStats
from ..domain import Space
from ..media.broadcasts import Broadcasts
from ..media.clip_budget import ClipBudget
from ..media.retention import RetentionStatus
from ..media.speakers import Speakers
from ..ratelimit import WriteLimits
from ..security.tokens import TokenSigner
from ..store import ModerationStore, Store
from ..waiting import WaitingRoom
from .activity import Activity
from .bans import Bans
from .config import Config
from .feed import Feeds
from .load import NodeLoad
from .metrics import Metrics

SPACE_CACHE_SECONDS = 1.0
"""How stale a space read by the hot paths (join, heartbeat, details) may be."""


@dataclass
class Services:
    """The node's store, signer, counters and media, and its clock."""

    config: Config
    store: Store
    signer: TokenSigner
    presence: Presence
    broadcasts: Broadcasts
    bus: Bus
    limits: WriteLimits
    """Rate limits on what listeners write (per node, or shared through Redis)."""
    metrics: Metrics
    speakers: Speakers
    stats: AudienceStats
    """The audience numbers (joins, heartbeats, replays); see docs/numbers.md."""
    ownership: Ownership
    """Which node runs which space's media (cluster/ownership.py)."""
    waiting_room: WaitingRoom
    """The lines of the spaces with a capacity (waiting/)."""
    feeds: Feeds
    """The live events in time windows, for listeners (through edges)."""
    accounts: Accounts
    """Invites, the accounts they made, and revoked account ids (accounts/)."""
    moderation: ModerationStore
    """Reports, the audit log and bans (shared through Redis with several nodes)."""
    bans: Bans = field(default_factory=Bans)
    """The banned accounts, refreshed from `moderation` every second (loops.py)."""
    forwarder: Forwarder | None = None
    """With several nodes: passes media and WHIP requests to the space's owner."""
    clip_budget: ClipBudget | None = None
    """The disk clips may take on this node (None: nothing is recorded)."""
    recordings: RetentionStatus = field(default_factory=RetentionStatus)
    """The disk recordings take on this node, and what retention removed (for /metrics)."""
    redis_health: RedisHealth | None = None
    """With Redis: whether this node reaches it, and how fast (for /metrics)."""
    nodes: Nodes = field(default_factory=LocalNodes)
    """Every node's last status report (cluster/nodes.py), for the admin console."""
    load: NodeLoad = field(default_factory=NodeLoad)
    """How busy request handling is (set by the HTTP side), for the status report."""
    started_at: float = field(default_factory=time.time)
    captions: Captions | None = None
    """Live captions of the spaces on this node (None: a node built without them)."""
    transcripts: TranscriptIndex | None = None
    """The search index of ended spaces' transcripts (captions/search.py)."""
    activity: Activity = field(default_factory=Activity)
    """Reactions and changed questions waiting for the next once-a-second publication."""
    clock: Callable[[], float] = time.time
    stage_listeners: list[Callable[[Space], Awaitable[None]]] = field(default_factory=list)
    """Called after every change of a space (e.g. to mute speakers or end their sessions)."""
    event_streams: int = 0
    """Live event streams open on this node now (bounded by `config.max_event_streams`)."""
    _cache: dict[str, tuple[float, Space]] = field(default_factory=dict)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), UTC)

    async def cached_space(self, space_id: str) -> Space:
        """A recent copy of the space, read from the store at most once a second.

        Joins and heartbeats only need to know that a space exists and its state; a second of
        staleness is harmless there and saves a store read per listener request.
        """
        now = time.monotonic()
        hit = self._cache.get(space_id)
        if hit and now - hit[0] < SPACE_CACHE_SECONDS:
            return hit[1]
        space = await self.store.get_space(space_id)
        if len(self._cache) > 10_000:
            self._cache.clear()
        return self._keep_newest(space, now)

    async def stage_changed(self, space: Space) -> None:
        """Apply a changed space to what runs on this node: its mixer's mutes, then listeners."""
        pipeline = self.broadcasts.get(space.id)
        if pipeline is not None:
            for input_id, source in pipeline.mixer.inputs.items():
                member = space.members.get(input_id)
                if member is not None:
                    source.muted = member.muted
        for listener in self.stage_listeners:
            await listener(space)

    def remember(self, space: Space) -> None:
        """Put a space just written into the cache, so this node reads its own writes."""
        self._keep_newest(space, time.monotonic())

    def _keep_newest(self, space: Space, now: float) -> Space:
        """Cache `space` unless a newer version is already there: a read that started before
        this node's own write may finish after it, and must not put the old version back."""
        hit = self._cache.get(space.id)
        if hit is not None and hit[1].version > space.version:
            return hit[1]
        self._cache[space.id] = (now, space)
        return space
