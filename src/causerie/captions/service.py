"""The node's captions: a recognizer per captioned live space, kept in step with the spaces.

`Captions.step()` runs every second (node/loops.py): every live space on this node whose host
wants captions gets a worker (worker.py), up to `max_spaces` at once (`--captions-max`; the
others wait for a free place); a worker whose space ended, or whose host turned captions off,
is finished: its last utterance is decoded and delivered, then its process ends. Doing this
from one loop, from the stored state, makes a host who toggles quickly cost at most one
worker, and works the same when the toggle went through another node.

Each caption line goes out with the space's other live events (a `caption` event: the feed
every listener reads, the hosts' event stream) and, for a recorded space, into its recording
directory (`captions.jsonl`). Once an ended space's worker is finished, its transcript goes
into the search index.

The model is checked when the node starts: resolved at once (a missing model is a clear error
in the log right away), then loaded once in a throwaway process (a damaged one is too). Until
that succeeds nothing is captioned; if it fails, the node serves audio as always, without
captions, and says why (`problem`, in the space details and the log).
"""

from __future__ import annotations

import asyncio
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from ..bus import Bus
from ..domain import NotFound, Space, SpaceState
from ..media.broadcasts import Broadcasts
from ..media.recorder import Recording, space_directory
from . import recognizer
from .lines import CAPTIONS_FILE, CaptionLine, parse_lines
from .model import DEFAULT_MODEL, ModelError, ResolvedModel, resolve_model
from .search import TranscriptIndex
from .transcript import Span, place
from .webvtt import Cue
from .worker import SpaceCaptions, WorkerStats

__all__ = ["Captions", "CaptionsSettings", "transcript_cues"]

log = logging.getLogger(__name__)

PROBE_TIMEOUT = 120.0
RESTART_AFTER = 10.0
"""Seconds before a space whose recognizer failed gets a new one."""


@dataclass(frozen=True)
class CaptionsSettings:
    """`--captions-model`, `--captions-max` and how each recognizer decodes."""

    model: str = DEFAULT_MODEL
    max_spaces: int = 2
    """Spaces captioned at once on one node (0: captions off): tiny.en takes about a quarter
    of a core per speaking space."""
    threads: int = 2
    beam_size: int = 5

    def __post_init__(self) -> None:
        if self.max_spaces < 0:
            raise ValueError("captions_max (--captions-max) is 0 (no captions) or more")
        if not 1 <= self.threads <= 16 or not 1 <= self.beam_size <= 10:
            raise ValueError("captions threads are 1..16, beam size 1..10")


def transcript_cues(root: Path, space_id: str) -> list[Cue]:
    """The transcript of a recorded space, on its replay's timeline (reads the disk)."""
    directory = space_directory(root, space_id)
    try:
        text = (directory / CAPTIONS_FILE).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    recording = Recording.load(root, space_id)
    spans = [
        Span(s.program_date_time, float(s.offset), float(s.duration)) for s in recording.segments
    ]
    return place(parse_lines(text), spans)


class Captions:
    """Runs the captions of this node's live spaces (see the module docstring)."""

    def __init__(
        self,
        settings: CaptionsSettings,
        broadcasts: Broadcasts,
        bus: Bus,
        space_of: Callable[[str], Awaitable[Space]],
        index: TranscriptIndex | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.broadcasts = broadcasts
        self.bus = bus
        self.space_of = space_of
        self.index = index
        self.clock = clock
        self.model: ResolvedModel | None = None
        self.ready = False
        self.problem: str | None = None
        """Why this node cannot caption (None: it can, or is still checking)."""
        self.workers: dict[str, SpaceCaptions] = {}
        self.finishing: dict[str, asyncio.Task[None]] = {}
        self._failed_at: dict[str, float] = {}
        self._probe: asyncio.Task[None] | None = None
        self._published: set[asyncio.Task[object]] = set()
        self._stepping = asyncio.Lock()  # the loop and a host's switch may step at once
        self._retired = WorkerStats()  # what the workers that ended did (counters only grow)

    # Start and stop

    def start(self) -> None:
        """Resolve the model now, and load it once in the background (on the event loop)."""
        if self.settings.max_spaces == 0:
            self.problem = "captions are turned off on this server (--captions-max 0)"
            return
        try:
            self.model = resolve_model(self.settings.model)
        except ModelError as exc:
            self._unavailable(str(exc))
            return
        self._probe = asyncio.create_task(self._check(self.model), name="captions-probe")

    async def _check(self, model: ResolvedModel) -> None:
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe(duplex=False)
        process = context.Process(
            target=recognizer.main,
            args=(child, model),
            kwargs={"probe": True, "threads": 1},
            name="captions-probe",
            daemon=True,
        )
        await asyncio.to_thread(process.start)
        child.close()
        try:
            answer = await asyncio.wait_for(asyncio.to_thread(_receive, parent), PROBE_TIMEOUT)
        except TimeoutError:
            answer = ("failed", f"loading the model took more than {PROBE_TIMEOUT:.0f} s")
        finally:
            parent.close()
            await asyncio.to_thread(process.join, 5)  # it exits by itself once it answered
            if process.is_alive():
                process.kill()
                await asyncio.to_thread(process.join, 5)
        if answer[0] == "ready":
            self.ready = True
            log.info("captions: model %s ready (%s)", model.name, model.directory)
        else:
            self._unavailable(f"captions model {model.name!r} could not be loaded: {answer[1]}")

    def _unavailable(self, why: str) -> None:
        self.problem = why
        log.error("%s. The server goes on without captions.", why)

    async def close(self) -> None:
        """Finish every worker (their last lines are delivered), awaiting each."""
        if self._probe is not None:
            self._probe.cancel()
            await asyncio.gather(self._probe, return_exceptions=True)
        for space_id in list(self.workers):
            self._retire(space_id)
        await asyncio.gather(*self.finishing.values(), return_exceptions=True)
        await asyncio.gather(*self._published, return_exceptions=True)

    # What a page is told

    def state(self, space: Space) -> str:
        """`on`, `off` (the host's choice), `waiting` (no free place on the node yet, or
        still loading) or `unavailable` (see `problem`)."""
        if not space.captions:
            return "off"
        if self.problem is not None:
            return "unavailable"
        return "on" if space.id in self.workers else "waiting"

    def totals(self) -> WorkerStats:
        """What every worker of this node did since it started (for /metrics)."""
        total = WorkerStats(
            self._retired.frames_in,
            self._retired.frames_dropped,
            self._retired.lines,
            self._retired.decode_seconds,
        )
        for worker in self.workers.values():
            total.frames_in += worker.stats.frames_in
            total.frames_dropped += worker.stats.frames_dropped
            total.lines += worker.stats.lines
            total.decode_seconds += worker.stats.decode_seconds
        return total

    def busy(self, space_id: str) -> bool:
        """Whether the space's captions are still being finished (its transcript may grow)."""
        return space_id in self.workers or space_id in self.finishing

    # Keeping in step

    async def step(self) -> None:
        """Bring the workers in line with the live spaces and their hosts' choices."""
        async with self._stepping:
            await self._step()

    async def _step(self) -> None:
        live = set(self.broadcasts.live_ids())
        wanted: list[str] = []
        for space_id in sorted(live | set(self.workers)):
            try:
                space = await self.space_of(space_id)
            except NotFound:
                space = None
            if (
                space is not None
                and space_id in live
                and space.state is SpaceState.LIVE
                and space.captions
            ):
                wanted.append(space_id)
        for space_id, worker in list(self.workers.items()):
            if space_id not in wanted or worker.done.is_set():
                if worker.failed is not None:
                    self._failed_at[space_id] = self.clock()
                self._retire(space_id)
        if not self.ready or self.model is None:
            return
        for space_id in wanted:
            running = self.workers.get(space_id)
            if running is None:
                if len(self.workers) >= self.settings.max_spaces:
                    continue
                if self.clock() - self._failed_at.get(space_id, -1e9) < RESTART_AFTER:
                    continue
                if space_id in self.finishing:
                    continue  # the previous one is still delivering its last lines
                running = await self._start(space_id, self.model)
            pipeline = self.broadcasts.get(space_id)
            if pipeline is not None and pipeline.on_program != running.feed:
                pipeline.on_program = running.feed  # a new run (a restart) gets it too

    async def _start(self, space_id: str, model: ResolvedModel) -> SpaceCaptions:
        worker = SpaceCaptions(
            space_id,
            model,
            lambda line: self._line(space_id, line),
            threads=self.settings.threads,
            beam_size=self.settings.beam_size,
            clock=self.clock,
        )
        self.workers[space_id] = worker
        try:
            await worker.start()
        except OSError:
            log.exception("space %s: the recognizer could not be started", space_id)
            worker.failed = "the recognizer could not be started"
            worker.done.set()  # retired at the next step, tried again later
        log.info("space %s: captions on", space_id)
        return worker

    def _retire(self, space_id: str) -> None:
        worker = self.workers.pop(space_id)
        pipeline = self.broadcasts.get(space_id)
        if pipeline is not None and pipeline.on_program == worker.feed:
            pipeline.on_program = None
        task = asyncio.create_task(self._finish(space_id, worker), name=f"captions-end-{space_id}")
        self.finishing[space_id] = task
        task.add_done_callback(lambda _: self.finishing.pop(space_id, None))

    async def _finish(self, space_id: str, worker: SpaceCaptions) -> None:
        try:
            await worker.stop()
            done = worker.stats
            self._retired.frames_in += done.frames_in
            self._retired.frames_dropped += done.frames_dropped
            self._retired.lines += done.lines
            self._retired.decode_seconds += done.decode_seconds
            log.info("space %s: captions off", space_id)
            await self._index(space_id)
        except Exception:
            log.exception("space %s: finishing the captions failed", space_id)

    async def _index(self, space_id: str) -> None:
        root = self.broadcasts.recordings_dir
        if self.index is None or root is None:
            return
        try:
            space = await self.space_of(space_id)
        except NotFound:
            return
        if space.state is not SpaceState.ENDED:
            return  # turned off while live: indexed when the space ends, if at all
        cues = await asyncio.to_thread(transcript_cues, root, space_id)
        ended = space.ended_at.timestamp() if space.ended_at else None
        await asyncio.to_thread(self.index.add, space_id, space.title, ended, cues)

    # A line

    def _line(self, space_id: str, line: CaptionLine) -> None:
        data = line.to_dict()
        recorder = self.broadcasts.recorder(space_id)
        if recorder is not None:
            try:
                _append(recorder.directory / CAPTIONS_FILE, json.dumps(data) + "\n")
            except OSError as exc:
                log.warning("space %s: could not keep a caption line: %s", space_id, exc)
        task = asyncio.create_task(self.bus.publish(space_id, "caption", data))
        self._published.add(task)
        task.add_done_callback(self._published.discard)


def _receive(conn: Connection) -> tuple[str, object]:
    try:
        answer: tuple[str, object] = conn.recv()
        return answer
    except EOFError:
        return ("failed", "the process ended before it answered")


def _append(path: Path, line: str) -> None:
    # One write on an O_APPEND descriptor: a whole line, or (a crash) a torn last line, which
    # parse_lines skips.
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)
