"""The live pipelines running on this node, one per live space.

An ended space keeps its pipeline (its playlist now carries EXT-X-ENDLIST) for a while, so
players that are still following it learn that it ended instead of getting errors.

With a ``recordings_dir``, each pipeline of a space that records gets a ``Recorder`` (recorder.py)
writing its segments there as they are made.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypedDict

from .mixer import Mixer
from .packager import first_msn_at
from .pipeline import LivePipeline
from .recorder import Recorder
from .timing import MediaTiming

log = logging.getLogger(__name__)

ENDED_KEPT_SECONDS = 120.0
SEGMENT_SECONDS = 10 * 9 * 1024 / 48000
"""LivePipeline's segments: 9 parts of 10 AAC frames at 48 kHz (1.92 s)."""

Closer = Callable[[], Awaitable[None]]


class Continuation(TypedDict, total=False):
    """Where a new run of a space's stream starts (`LivePipeline`'s keyword arguments)."""

    first_msn: int
    discontinuity_sequence: int


class Broadcasts:
    """Starts, finds and stops the pipelines of the spaces this node is on the air for."""

    def __init__(
        self, clock: Callable[[], float] = time.time, recordings_dir: Path | None = None
    ) -> None:
        self.clock = clock
        self.recordings_dir = recordings_dir
        """Where recordings go (DATA/recordings); None: nothing is recorded."""
        self.timing = MediaTiming()
        """How on time every pipeline of this node ran (the node's metrics read it)."""
        self._recorders: dict[str, Recorder] = {}
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
            self._recorders.pop(space_id, None)
            return None
        return ended[1]

    def live_ids(self) -> list[str]:
        return list(self._live)

    def recorder(self, space_id: str) -> Recorder | None:
        """The recorder of the space's pipeline (live or recently ended), if it records."""
        pipeline = self.get(space_id)
        recorder = self._recorders.get(space_id)
        if pipeline is None or recorder is None or recorder.run_id != pipeline.run_id:
            return None
        return recorder

    def ended_ids(self) -> list[str]:
        """The spaces whose pipeline ended here recently (their playlists say so)."""
        return list(self._ended)

    async def start(
        self,
        space_id: str,
        record: bool = True,
        *,
        run_number: int = 0,
        after_msn: int | None = None,
    ) -> LivePipeline:
        """Put a space on the air (idempotent); ``record``: keep its audio for replay.

        A run that continues one made elsewhere (another node, before a failover) passes
        ``run_number`` (its discontinuity sequence: the runs before it) and ``after_msn`` (the
        last media sequence number used before, if known): see media/ownership.py.
        """
        async with self._lock:
            pipeline = self._live.get(space_id)
            if pipeline is None:
                numbers = self._continuation(space_id)
                if run_number > numbers.get("discontinuity_sequence", 0):
                    numbers["discontinuity_sequence"] = run_number
                if after_msn is not None:
                    numbers["first_msn"] = max(
                        numbers.get("first_msn", 0),
                        after_msn + 1,
                        first_msn_at(self.clock(), SEGMENT_SECONDS),
                    )
                pipeline = LivePipeline(
                    space_id, mixer=Mixer(), clock=self.clock, timing=self.timing, **numbers
                )
                if record and self.recordings_dir is not None:
                    self._recorders[space_id] = Recorder.attach(pipeline, self.recordings_dir)
                pipeline.start()
                self._live[space_id] = pipeline
                self._ended.pop(space_id, None)
                log.info("space %s is on the air (run %s)", space_id, pipeline.packager.run_id)
            return pipeline

    def _continuation(self, space_id: str) -> Continuation:
        """Numbers that keep a restarted stream monotonic after a run ended on this node.

        Media sequence numbers come from the wall clock, so they normally keep increasing; a
        restart within one segment of the previous run's end would reuse a number, so the new
        run starts after the last one the previous run used.
        """
        ended = self._ended.get(space_id)
        if ended is None:
            return {}
        previous = ended[1].packager
        last = previous.last_part()
        if last is None:
            return {}
        segment_seconds = previous.segment_duration
        return {
            "first_msn": max(last[0] + 1, first_msn_at(self.clock(), float(segment_seconds))),
            "discontinuity_sequence": previous.discontinuity_sequence + 1,
        }

    def attach(self, space_id: str, closer: Closer) -> None:
        """Run `closer` when the space goes off the air (e.g. to stop a demo speaker)."""
        self._attached.setdefault(space_id, []).append(closer)

    async def stop(self, space_id: str, keep: bool = True) -> None:
        """Take a space off the air: its playlist ends, its speakers are let go.

        ``keep=False``: forget the pipeline at once instead of serving its ended playlist for a
        while (this node lost the space to another one, whose stream goes on).
        """
        async with self._lock:
            pipeline = self._live.pop(space_id, None)
            closers = self._attached.pop(space_id, [])
        for closer in closers:
            try:
                await closer()
            except Exception:
                log.exception("while detaching from space %s", space_id)
        if pipeline is not None:
            await pipeline.stop()  # flushes the last segment, to the recorder too
            recorder = self._recorders.get(space_id)
            if recorder is not None and recorder.run_id == pipeline.run_id:
                recorder.close()
            if keep:
                self._ended[space_id] = (time.monotonic(), pipeline)
            else:
                self._ended.pop(space_id, None)
                self._recorders.pop(space_id, None)
            log.info("space %s is off the air", space_id)

    async def stop_all(self) -> None:
        for space_id in list(self._live):
            await self.stop(space_id)
