"""A node's start-up and shutdown, each a numbered recipe (as uvicorn writes its own).

Start-up
 1. put the spaces that were live back on the air (embedded: all of them, here, now; with
    Redis: a supervisor task claims this node's share, renews, fails over: cluster/ownership.py);
 2. start keeping the audience numbers (saved to disk, or shared through Redis);
 3. check the captions model (in the background: the node serves meanwhile, and without
    captions if it fails);
 4. start the background loops (loops.py; with Sentinel, also following the primary).

Shutdown (the server has stopped accepting requests and closed its connections before)
 1. stop the background loops, awaiting each;
 2. stop the ownership supervisor, awaiting it;
 3. close the speakers' sessions;
 4. stop the pipelines (the playlists get EXT-X-ENDLIST, the recordings are finished), then
    finish the captions (their last lines are kept);
 5. let go of the spaces' leases, so another node takes them at its next tick;
 6. close the forwarder's connections;
 7. save or share the numbers, send the batched heartbeats, close the waiting room, the rate
    limits, the event windows and the bus;
 8. close the store and the accounts, then the Redis clients everything above used;
 9. let go of the data directory's lock (node/data_dir.py).
Each step runs even if an earlier one failed; failures are logged, and the count said.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from ..domain import NotFound, SpaceState
from ..store import Store
from .factory import Shared
from .loops import loops
from .periodic import Periodic
from .services import Services

log = logging.getLogger(__name__)

SHUTDOWN_STEP_SECONDS = 10.0
"""The longest one shutdown step may take: a step stuck on a dead peer (Redis, a recognizer)
is given up, named in the log, and the rest of the shutdown goes on."""

FOLLOW_PRIMARY_INTERVAL = 1.0
"""Seconds between two questions to the sentinels: which server is the primary now?"""


class StoreSpaces:
    """The live spaces, as cluster/ownership.py asks for them."""

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


class Lifecycle:
    """Starts and stops what a node runs besides answering requests."""

    def __init__(self, svc: Services, shared: Shared) -> None:
        self.svc = svc
        self.shared = shared
        self.loops: list[Periodic] = []
        self._supervisor: asyncio.Task[None] | None = None

    async def start(self) -> None:
        svc = self.svc
        # 1. the spaces that were live
        spaces = StoreSpaces(svc.store)
        if svc.ownership.shared:
            self._supervisor = asyncio.create_task(
                svc.ownership.supervise(spaces), name="media-ownership"
            )
        else:
            await svc.ownership.supervise(spaces)
        # 2. the audience numbers
        svc.stats.start()
        # 3. the bans, before the first request (then refreshed by a loop)
        svc.bans.replace(await svc.moderation.banned())
        # 4. the captions model
        if svc.captions is not None:
            svc.captions.start()
        # 5. the background loops
        self.loops = loops(svc)
        redis = self.shared.redis
        if redis is not None and redis.target.sentinel:
            self.loops.append(
                Periodic("follow-primary", FOLLOW_PRIMARY_INTERVAL, redis.follow_primary)
            )
        for loop in self.loops:
            loop.start()

    async def stop(self) -> None:
        svc, shared = self.svc, self.shared
        steps: list[tuple[str, Callable[[], Awaitable[object]]]] = [
            ("stop the background loops", self._stop_loops),
            ("stop the ownership supervisor", self._stop_supervisor),
            ("close the speakers' sessions", svc.speakers.close_all),
            ("stop the pipelines", svc.broadcasts.stop_all),
            ("finish the captions", self._close_captions),
            ("let go of the leases", svc.ownership.close),
            ("close the forwarder", self._close_forwarder),
            ("save the audience numbers", svc.stats.close),
            ("send the batched heartbeats", svc.presence.close),
            ("close the waiting room", svc.waiting_room.close),
            ("close the rate limits", svc.limits.close),
            ("stop following the spaces' events", svc.feeds.close),
            ("close the bus", svc.bus.close),
            ("close the store", svc.store.close),
            ("close the accounts", svc.accounts.close),
            ("close the nodes' reports", svc.nodes.close),
            ("close the moderation store", svc.moderation.close),
            ("close the transcripts' index", self._close_transcripts),
        ]
        if shared.redis is not None:
            steps.append(("close the Redis clients", shared.redis.close))
        steps.append(("let go of the data directory", self._release_lock))
        failed = 0
        for what, step in steps:
            try:
                async with asyncio.timeout(SHUTDOWN_STEP_SECONDS):
                    await step()
            except TimeoutError:
                failed += 1
                log.error("shutdown: could not %s within %.0f s", what, SHUTDOWN_STEP_SECONDS)
            except Exception:
                failed += 1
                log.exception("shutdown: could not %s", what)
        if failed:
            log.warning("shutdown finished with %d failed step(s) of %d", failed, len(steps))

    async def _stop_loops(self) -> None:
        await asyncio.gather(*(loop.stop() for loop in self.loops))

    async def _stop_supervisor(self) -> None:
        task, self._supervisor = self._supervisor, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _close_captions(self) -> None:
        if self.svc.captions is not None:
            await self.svc.captions.close()

    async def _close_transcripts(self) -> None:
        if self.svc.transcripts is not None:
            self.svc.transcripts.close()

    async def _release_lock(self) -> None:
        if self.shared.lock is not None:
            self.shared.lock.release()

    async def _close_forwarder(self) -> None:
        if self.svc.forwarder is not None:
            await self.svc.forwarder.aclose()
