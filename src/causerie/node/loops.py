"""The node's background loops: what it publishes on its own, and what it keeps in step.

Each is a small class with a `step()` run every few seconds by `periodic.Periodic`; they only
ever publish aggregates (one event per space per interval, whatever the audience). `loops()`
lists them for a node, with their intervals.
"""

from __future__ import annotations

import logging
from typing import Any

from ..domain import SpaceState
from .activity import PUBLISH_INTERVAL
from .periodic import Periodic
from .services import Services
from .views import pushed_numbers, reconnecting_now, space_view, speaking_now, summarize

log = logging.getLogger(__name__)

COUNTS_INTERVAL = 2.0
STATS_INTERVAL = 5.0
SPEAKING_INTERVAL = 0.25
RECORDING_CHECK_INTERVAL = 2.0
STAGE_SYNC_INTERVAL = 1.0
RUNS_INTERVAL = 1.0


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


def loops(svc: Services) -> list[Periodic]:
    """The background loops a node runs, not started yet."""

    async def publish_activity() -> None:
        await svc.activity.publish(svc.store, svc.bus)

    running = [
        Periodic("publish-activity", PUBLISH_INTERVAL, publish_activity),
        Periodic("publish-counts", COUNTS_INTERVAL, ListenerCounts(svc).step),
        Periodic("publish-stats", STATS_INTERVAL, AudienceNumbers(svc).step),
        Periodic("publish-speaking", SPEAKING_INTERVAL, WhoIsSpeaking(svc).step),
        Periodic("publish-reconnecting", SPEAKING_INTERVAL, WhoIsReconnecting(svc).step),
        Periodic("publish-runs", RUNS_INTERVAL, Runs(svc).step),
        Periodic(
            "publish-recording-problems", RECORDING_CHECK_INTERVAL, RecordingProblems(svc).step
        ),
    ]
    if svc.ownership.shared:  # stage changes can be made through other nodes
        running.append(Periodic("sync-sessions", STAGE_SYNC_INTERVAL, StageSync(svc).step))
    return running
