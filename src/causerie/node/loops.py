"""The node's background loops: what it publishes on its own, and what it keeps in step.

Each is a small class with a `step()` run every few seconds by `periodic.Periodic`; they only
ever publish aggregates (one event per space per interval, whatever the audience). `loops()`
lists them for a node, with their intervals.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from ..cluster.nodes import REPORT_INTERVAL
from ..domain import Conflict, NotFound, Space, SpaceState
from ..domain.housekeeping import IdleAction, IdleVerdict, IdleWatch
from ..media import retention
from ..media.retention import OnDisk, Tombstone
from ..store import update_space
from .activity import PUBLISH_INTERVAL
from .bans import REFRESH_INTERVAL as BANS_INTERVAL
from .load import CpuMeter
from .periodic import Periodic
from .services import Services
from .status import node_report
from .views import (
    moment,
    pushed_numbers,
    reconnecting_now,
    space_view,
    speaking_now,
    summarize,
    unix,
)

log = logging.getLogger(__name__)

COUNTS_INTERVAL = 2.0
STATS_INTERVAL = 5.0
SPEAKING_INTERVAL = 0.25
RECORDING_CHECK_INTERVAL = 2.0
STAGE_SYNC_INTERVAL = 1.0
RUNS_INTERVAL = 1.0
REDIS_CHECK_INTERVAL = 5.0
CAPTIONS_INTERVAL = 1.0
"""Seconds between two looks at which spaces want captions (a host's toggle, a start, an end)."""
IDLE_CHECK_INTERVAL = 10.0
"""Seconds between two looks at who is on the microphone (less for a short --end-idle-after)."""
RETENTION_INTERVAL = 300.0
"""Seconds between two passes over the recordings (a pass walks every file: kept rare)."""
RETENTION_DELAY = 10.0
"""Seconds after start-up before the first pass (so /metrics soon shows the disk used)."""


class ListenerCounts:
    """Publishes each live space's listener count when it changed."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.last: dict[str, int] = {}

    async def step(self) -> None:
        now = self.svc.clock()
        live = self.svc.broadcasts.live_ids()
        for space_id in live:
            count = await self.svc.presence.listening_now(space_id, now)
            if self.last.get(space_id) != count:
                self.last[space_id] = count
                await self.svc.bus.publish(space_id, "listeners", {"listeners_now": count})
        for gone in set(self.last) - set(live):
            del self.last[gone]


class AudienceNumbers:
    """Publishes a `stats` event for each live space whose headline numbers changed."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.last: dict[str, dict[str, Any]] = {}

    async def step(self) -> None:
        live = set(self.svc.broadcasts.live_ids())
        for space_id in live:
            space = await self.svc.cached_space(space_id)
            if space.state is not SpaceState.LIVE:
                continue
            numbers = pushed_numbers(await summarize(self.svc, space))
            if self.last.get(space_id) != numbers:
                self.last[space_id] = numbers
                await self.svc.bus.publish(space_id, "stats", numbers)
        for gone in set(self.last) - live:
            del self.last[gone]


class WhoIsSpeaking:
    """Publishes a `speaking` event for a live space whenever its set of talkers changes."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.last: dict[str, list[str]] = {}

    async def step(self) -> None:
        live = self.svc.broadcasts.live_ids()
        for space_id in live:
            now = speaking_now(self.svc, space_id)
            if self.last.get(space_id, []) != now:
                self.last[space_id] = now
                await self.svc.bus.publish(space_id, "speaking", {"speaking": now})
        for gone in set(self.last) - set(live):
            del self.last[gone]


class WhoIsReconnecting:
    """Publishes the space (a `space` event) when the set of its speakers whose connection
    is being re-established changes: every page marks them within about 1.5 s."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.last: dict[str, list[str]] = {}

    async def step(self) -> None:
        live = self.svc.broadcasts.live_ids()
        for space_id in live:
            now = reconnecting_now(self.svc, space_id)
            if self.last.get(space_id, []) != now:
                self.last[space_id] = now
                space = await self.svc.cached_space(space_id)
                data = (await space_view(space, self.svc)).model_dump(mode="json")
                await self.svc.bus.publish(space_id, "space", data)
        for gone in set(self.last) - set(live):
            del self.last[gone]


class Runs:
    """Publishes a `run` event when a space's stream starts a new run on this node.

    A failover (or a restart) starts a new run, whose LL-DASH Period has new URLs; the listener
    pages' dash.js would learn of it from its next manifest update, up to a minute later, or
    from a 404. The event tells them at once (they reload the manifest).
    """

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.last: dict[str, str] = {}

    async def step(self) -> None:
        live = self.svc.broadcasts.live_ids()
        for space_id in live:
            pipeline = self.svc.broadcasts.get(space_id)
            if pipeline is not None and self.last.get(space_id) != pipeline.run_id:
                self.last[space_id] = pipeline.run_id
                await self.svc.bus.publish(space_id, "run", {"run": pipeline.run_id})
        for gone in set(self.last) - set(live):
            del self.last[gone]


class RecordingProblems:
    """When the recording of a live space on this node starts failing (a full disk, say),
    publishes the space again: its `recording_error` reaches the host's studio at once."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.reported: set[str] = set()  # the spaces whose current run's problem was published

    async def step(self) -> None:
        live = self.svc.broadcasts.live_ids()
        for space_id in live:
            recorder = self.svc.broadcasts.recorder(space_id)
            failing = recorder is not None and recorder.recording_error is not None
            if not failing:
                self.reported.discard(space_id)
            elif space_id not in self.reported:
                self.reported.add(space_id)
                space = await self.svc.cached_space(space_id)
                data = (await space_view(space, self.svc)).model_dump(mode="json")
                await self.svc.bus.publish(space_id, "space", data)
        self.reported.intersection_update(live)


class StageSync:
    """Applies the stored stage of each live space to its speakers' sessions on this node.

    With several nodes, a removal, a move to the audience or a mute may go through a node other
    than the one holding the speaker's session (the space's owner): this is how the owner learns
    of it, within one interval.
    """

    def __init__(self, svc: Services) -> None:
        self.svc = svc

    async def step(self) -> None:
        for space_id in self.svc.broadcasts.live_ids():
            if not self.svc.speakers.sessions(space_id):
                continue
            try:
                self.svc.speakers.sync(await self.svc.store.get_space(space_id))
            except Exception:
                log.exception("space %s: applying the stage to its sessions failed", space_id)


class IdleSpaces:
    """Ends the live spaces of this node nobody has been on the microphone in for
    `--end-idle-after`, announcing it on the space a few minutes before (the host's studio
    shows it); domain/housekeeping.py decides. Someone speaking is a mixer input: a WebRTC
    speaker's session, or the demo's voices. Runs on the node that runs the space's media
    (the only one that knows who is connected)."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.watch = IdleWatch(svc.config.end_idle_after)

    async def step(self) -> None:
        svc = self.svc
        live = svc.broadcasts.live_ids()
        self.watch.keep_only(live)
        for space_id in live:
            pipeline = svc.broadcasts.get(space_id)
            if pipeline is None:
                continue
            try:
                space = await svc.cached_space(space_id)
            except NotFound:
                continue
            if space.state is not SpaceState.LIVE:
                continue
            now = svc.clock()
            verdict = self.watch.observe(
                space_id,
                speakers=bool(pipeline.mixer.inputs),
                announced=unix(space.ending_at),
                now=now,
            )
            await self._apply(space_id, verdict, now)

    async def _apply(self, space_id: str, verdict: IdleVerdict, now: float) -> None:
        if verdict.action is IdleAction.ANNOUNCE and verdict.ends_at is not None:
            at = moment(verdict.ends_at)
            await self._change(space_id, lambda space: space.announce_idle_end(at))
            log.info("space %s: nobody on the microphone, it ends at %s", space_id, at)
        elif verdict.action is IdleAction.CANCEL:
            await self._change(space_id, Space.cancel_idle_end)
        elif verdict.action is IdleAction.END:
            ended = await self._change(space_id, lambda space: space.end_idle(moment(now)))
            if ended is not None:
                await self.svc.ownership.end(space_id)
                self.svc.metrics.inc("causerie_spaces_ended_idle_total")
                log.info("space %s ended: nobody was on the microphone", space_id)

    async def _change(self, space_id: str, change: Callable[[Space], object]) -> Space | None:
        """Apply a change and tell the pages (a `space` event); None if the space moved on
        meanwhile (ended by its host, say)."""
        svc = self.svc
        try:
            space, _ = await update_space(svc.store, space_id, change)
        except (Conflict, NotFound):
            return None
        svc.remember(space)
        await svc.stage_changed(space)
        view = await space_view(space, svc)
        await svc.bus.publish(space_id, "space", view.model_dump(mode="json"))
        return space


async def remove_recording(svc: Services, space_id: str, reason: str, at: datetime) -> int:
    """Remove a space's recording from this node's disk, leaving its tombstone (so its replay
    answers 410 Gone with the reason's sentence); the bytes freed. Audit entries and reports
    are in the store and never touched here."""
    root = svc.broadcasts.recordings_dir
    if root is None:
        return 0
    message = retention.removal_message(reason, at, svc.recordings.keep_seconds)
    stone = Tombstone(at, reason, message)
    freed = await asyncio.to_thread(retention.remove, root, space_id, stone)
    svc.recordings.removed[reason] = svc.recordings.removed.get(reason, 0) + 1
    if svc.clip_budget is not None:
        svc.clip_budget.forget(space_id)
    if svc.transcripts is not None:  # its transcript went with it: no longer found
        await asyncio.to_thread(svc.transcripts.remove, space_id)
    log.info("space %s: recording removed (%s), %.1f MiB freed", space_id, reason, freed / 2**20)
    return freed


class RecordingRetention:
    """Removes the recordings on this node's disk that an operator took down, then those kept
    long enough, then, while the rest take more than the budget, those that ended first
    (media/retention.py decides).

    A recording may be removed only if its space has ended (read from the store: with several
    nodes, one that went live again elsewhere is not this node's to judge) and this node is
    not still finishing it. Each pass updates `svc.recordings` for /metrics.
    """

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self._warned_over_budget = False

    async def step(self) -> None:
        svc = self.svc
        root = svc.broadcasts.recordings_dir
        if root is None:
            return
        status = svc.recordings
        found = await asyncio.to_thread(retention.measure, root)
        now = svc.clock()
        removed_at = datetime.fromtimestamp(now, UTC)
        ended_at: dict[str, float] = {}
        taken_down: set[str] = set()
        for recording in found:
            if recording.removed or not self._finished(recording.space_id):
                continue
            try:
                space: Space | None = await svc.store.get_space(recording.space_id)
            except NotFound:
                space = None  # a recording of a space the store does not know
            if space is not None and space.replay_taken_down_at is not None:
                taken_down.add(recording.space_id)
            elif (end := self._ended_at(recording, space)) is not None:
                ended_at[recording.space_id] = end
        for space_id in sorted(taken_down):
            await remove_recording(svc, space_id, retention.TAKEDOWN, removed_at)
        kept = [r for r in found if r.space_id not in taken_down]
        plan = retention.plan(
            kept,
            ended_at=ended_at,
            now=now,
            keep_seconds=status.keep_seconds,
            max_bytes=status.max_bytes,
        )
        for removal in plan.removals:
            await remove_recording(svc, removal.space_id, removal.reason, removed_at)
        for leftover in (r for r in found if r.removed and r.bytes):
            # A removal interrupted (a crash): its tombstone is there, finish it.
            stone_left = await asyncio.to_thread(retention.tombstone, root, leftover.space_id)
            if stone_left is not None:
                await asyncio.to_thread(retention.remove, root, leftover.space_id, stone_left)
        status.bytes = plan.kept_bytes
        status.recordings = sum(1 for r in kept if not r.removed) - len(plan.removals)
        status.live_bytes = plan.live_bytes
        status.over_budget = plan.over_budget
        if plan.over_budget and not self._warned_over_budget:
            log.warning(
                "recordings take %.1f GiB, over the budget of %.1f GiB (--recordings-max-gb), "
                "and the live ones alone take %.1f GiB: nothing more can be removed until they "
                "end. Live recordings are never cut short; raise the budget or free disk.",
                plan.kept_bytes / 2**30,
                status.max_bytes / 2**30,
                plan.live_bytes / 2**30,
            )
        self._warned_over_budget = plan.over_budget

    def _finished(self, space_id: str) -> bool:
        """Whether this node is done with the recording (not live here, not being finished)."""
        if space_id in self.svc.broadcasts.live_ids():
            return False
        recorder = self.svc.broadcasts.recorder(space_id)
        return recorder is None or recorder.closed

    @staticmethod
    def _ended_at(recording: OnDisk, space: Space | None) -> float | None:
        """When the recording's space ended (Unix time), or None if it may not be removed."""
        if space is None:
            return recording.last_written
        if space.state is not SpaceState.ENDED:
            return None
        return space.ended_at.timestamp() if space.ended_at else recording.last_written


class NodeStatus:
    """Publishes this node's status report, for the admin console's nodes view (any node shows
    every node's: cluster/nodes.py)."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.cpu = CpuMeter()

    async def step(self) -> None:
        report = await node_report(self.svc, self.cpu.read())
        await self.svc.nodes.publish(self.svc.config.node_url, report)


def loops(svc: Services) -> list[Periodic]:
    """The background loops a node runs, not started yet."""

    async def publish_activity() -> None:
        await svc.activity.publish(svc.store, svc.bus)

    async def refresh_bans() -> None:
        svc.bans.replace(await svc.moderation.banned())

    running = [
        Periodic("publish-activity", PUBLISH_INTERVAL, publish_activity),
        Periodic("refresh-bans", BANS_INTERVAL, refresh_bans),
        Periodic("publish-counts", COUNTS_INTERVAL, ListenerCounts(svc).step),
        Periodic("publish-stats", STATS_INTERVAL, AudienceNumbers(svc).step),
        Periodic("publish-speaking", SPEAKING_INTERVAL, WhoIsSpeaking(svc).step),
        Periodic("publish-reconnecting", SPEAKING_INTERVAL, WhoIsReconnecting(svc).step),
        Periodic("publish-runs", RUNS_INTERVAL, Runs(svc).step),
        # At once, so that a node shows in every console as soon as it is up.
        Periodic("publish-node-status", REPORT_INTERVAL, NodeStatus(svc).step, delay=0.1),
        Periodic(
            "publish-recording-problems", RECORDING_CHECK_INTERVAL, RecordingProblems(svc).step
        ),
    ]
    if svc.captions is not None:
        running.append(Periodic("captions", CAPTIONS_INTERVAL, svc.captions.step))
    if svc.config.end_idle_after > 0:
        # A twentieth of the wait, so that a short one (a test, a demo) is kept to the second.
        every = min(IDLE_CHECK_INTERVAL, max(0.5, svc.config.end_idle_after / 20))
        running.append(Periodic("end-idle-spaces", every, IdleSpaces(svc).step))
    if svc.broadcasts.recordings_dir is not None:
        running.append(
            Periodic(
                "keep-recordings",
                RETENTION_INTERVAL,
                RecordingRetention(svc).step,
                delay=RETENTION_DELAY,
            )
        )
    if svc.ownership.shared:  # stage changes can be made through other nodes
        running.append(Periodic("sync-sessions", STAGE_SYNC_INTERVAL, StageSync(svc).step))
    if svc.redis_health is not None:
        health = svc.redis_health

        async def watch_redis() -> None:
            await health.check()

        running.append(Periodic("watch-redis", REDIS_CHECK_INTERVAL, watch_redis))
    return running
