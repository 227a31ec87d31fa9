"""The live pipelines running on this node, one per live space.

An ended space keeps its pipeline (its playlist now carries EXT-X-ENDLIST) for a while, so
players that are still following it learn that it ended instead of getting errors.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from .mixer import Mixer
from .pipeline import LivePipeline

log = logging.getLogger(__name__)

ENDED_KEPT_SECONDS = 120.0

Closer = Callable[[], Awaitable[None]]


class Broadcasts:
    """Starts, finds and stops the pipelines of the spaces this node is on the air for."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._live: dict[str, LivePipeline] = {}
        self._ended: dict[str, tuple[float, LivePipeline]] = {}
        self._attached: dict[str, list[Closer]] = {}
        self._lock = asyncio.Lock()

    def get(self, space_id: str) -> LivePipeline | None:
        """The pipeline serving `space_id`, live or recently ended."""
        pipeline = self._live.get(space_id)
        if pipeline is not None:
            return pipeline
        ended = self._ended.get(space_id)
        if ended is None:
            return None
        if time.monotonic() - ended[0] > ENDED_KEPT_SECONDS:
            del self._ended[space_id]
            return None
        return ended[1]

    def live_ids(self) -> list[str]:
        return list(self._live)

    async def start(self, space_id: str) -> LivePipeline:
        """Put a space on the air (idempotent)."""
        async with self._lock:
            pipeline = self._live.get(space_id)
            if pipeline is None:
                pipeline = LivePipeline(space_id, mixer=Mixer(), clock=self.clock)
                pipeline.start()
                self._live[space_id] = pipeline
                self._ended.pop(space_id, None)
                log.info("space %s is on the air (run %s)", space_id, pipeline.packager.run_id)
            return pipeline

    def attach(self, space_id: str, closer: Closer) -> None:
        """Run `closer` when the space goes off the air (e.g. to stop a demo speaker)."""
        self._attached.setdefault(space_id, []).append(closer)

    async def stop(self, space_id: str) -> None:
        """Take a space off the air: its playlist ends, its speakers are let go."""
        async with self._lock:
            pipeline = self._live.pop(space_id, None)
            closers = self._attached.pop(space_id, [])
        for closer in closers:
            try:
                await closer()
            except Exception:
                log.exception("while detaching from space %s", space_id)
        if pipeline is not None:
            await pipeline.stop()
            self._ended[space_id] = (time.monotonic(), pipeline)
            log.info("space %s is off the air", space_id)

    async def stop_all(self) -> None:
        for space_id in list(self._live):
            await self.stop(space_id)
