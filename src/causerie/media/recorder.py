"""Recording of live spaces: every complete segment goes to disk as it is made.

The recorder hangs off the live pipeline's ``on_segment`` hook and keeps, byte for byte, the
Media Segments the origin served. Nothing is built at the end of a space: the replay playlist,
the one-file download and clips are all made later from what is on disk. Layout, under the
node's ``DATA/recordings`` directory::

    {space_id}/index.jsonl          one JSON line per recorded segment, in recording order:
                                    {"run_id", "msn", "duration", "program_date_time"}
    {space_id}/{run_id}/init.mp4    the run's Media Initialization Section (EXT-X-MAP)
    {space_id}/{run_id}/{msn}.m4s   the run's Media Segments
    {space_id}/replay.m4a           the whole conversation as one file (made on demand, clips.py)
    {space_id}/clips/{clip}.m4a     clips (made on demand, clips.py)

A space that restarts (a node restart, a failover) gets a new encoder run, with its own run id
and directory; its segments are appended to the same index, and the replay joins the runs with
``#EXT-X-DISCONTINUITY`` (RFC 8216 section 4.3.2.3: the timestamps restart with each run).

Crash safety: a segment file is written completely before its index line is appended, and each
index line is appended with one ``write()`` on an ``O_APPEND`` descriptor, so the index never
names a segment that is not on disk. Both writes reach the kernel before ``record()`` returns,
so a ``kill -9`` loses at most the segment in progress; ``fsync`` is only called when a run ends
(power loss may cost the last seconds the kernel had not written yet), to keep slow disk flushes
off the media loop. A reader skips a torn last line.

Disk errors (full disk, permissions) never stop the live stream: the recorder logs the first
one, exposes it as ``recording_error``, and tries again with every following segment.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from causerie.media.packager import SegmentRef
from causerie.media.playlist import Segment, render_vod

if TYPE_CHECKING:
    from causerie.media.pipeline import LivePipeline

__all__ = ["INDEX_NAME", "RecordedSegment", "Recorder", "Recording", "space_directory"]

log = logging.getLogger(__name__)

INDEX_NAME = "index.jsonl"
SAFE_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
"""Space and run ids: also the names of directories, so nothing else is accepted."""


def space_directory(root: Path, space_id: str) -> Path:
    """The directory holding the recording of ``space_id`` under ``root`` (DATA/recordings)."""
    if not SAFE_ID.fullmatch(space_id):
        raise ValueError(f"not a space id: {space_id!r}")
    return root / space_id


class Recorder:
    """Writes the segments of one encoder run of one space to disk (see the module docstring).

    Make one per pipeline with :meth:`attach`; call :meth:`close` once the pipeline has stopped
    (``LivePipeline.stop()`` flushes the final, possibly short, segment through the hook first).
    """

    def __init__(self, root: Path, space_id: str, run_id: str, init: bytes) -> None:
        if not SAFE_ID.fullmatch(run_id):
            raise ValueError(f"not a run id: {run_id!r}")
        self.space_id = space_id
        self.run_id = run_id
        self.directory = space_directory(root, space_id)
        self.segments_recorded = 0
        self.segments_lost = 0
        self.closed = False
        self._init = init
        self._init_written = False
        self._first_error: str | None = None
        self._failing = False  # in a streak of failures (logged at its start)
        self._try_init()

    @classmethod
    def attach(cls, pipeline: LivePipeline, root: Path) -> Recorder:
        """Record ``pipeline`` into ``root``, chaining any ``on_segment`` hook already set."""
        recorder = cls(root, pipeline.space_id, pipeline.packager.run_id, pipeline.packager.init)
        previous = pipeline.on_segment

        def on_segment(segment: SegmentRef, data: bytes) -> None:
            recorder.record(segment, data)  # never raises for disk errors
            if previous is not None:
                previous(segment, data)

        pipeline.on_segment = on_segment
        return recorder

    @property
    def run_directory(self) -> Path:
        return self.directory / self.run_id

    @property
    def recording_error(self) -> str | None:
        """What went wrong with the recording, for people; None while all is well."""
        if self._first_error is None:
            return None
        return f"{self._first_error} ({self.segments_lost} segment(s) not recorded)"

    def record(self, segment: SegmentRef, data: bytes) -> None:
        """Write one complete segment, then its index line. Disk errors are kept, not raised."""
        if self.closed:
            return
        line = {
            "run_id": self.run_id,
            "msn": segment.msn,
            "duration": float(segment.duration),
            "program_date_time": segment.program_date_time,
        }
        try:
            if not self._init_written:
                self._write_init()
            self._write_file(self.run_directory / f"{segment.msn}.m4s", data)
            # Only once the segment is on disk: the index never names a missing segment.
            self._append_line(self.directory / INDEX_NAME, json.dumps(line) + "\n")
        except OSError as exc:
            self._failed(f"segment {segment.msn}", exc)
            return
        if self._failing:
            self._failing = False
            log.warning("space %s: recording resumed at segment %d", self.space_id, segment.msn)
        self.segments_recorded += 1

    def close(self) -> None:
        """The run has ended: flush the index to stable storage (best effort)."""
        if self.closed:
            return
        self.closed = True
        try:
            fd = os.open(self.directory / INDEX_NAME, os.O_RDONLY)
        except OSError:
            return  # nothing recorded, or the directory is gone: nothing to flush
        try:
            os.fsync(fd)
        except OSError as exc:
            log.warning("space %s: could not flush the recording index: %s", self.space_id, exc)
        finally:
            os.close(fd)

    # Writing (one method per kind of write, so tests can make them fail)

    def _try_init(self) -> None:
        try:
            self._write_init()
        except OSError as exc:
            self._failed("the init section", exc)

    def _write_init(self) -> None:
        self.run_directory.mkdir(parents=True, exist_ok=True)
        self._write_file(self.run_directory / "init.mp4", self._init)
        self._init_written = True

    def _write_file(self, path: Path, data: bytes) -> None:
        with open(path, "wb") as file:
            file.write(data)

    def _append_line(self, path: Path, line: str) -> None:
        data = line.encode()
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # One write: the whole line, or (after a crash or a full disk) a torn tail, which
            # the reader recognises even when the next line is glued to it.
            if os.write(fd, data) < len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        finally:
            os.close(fd)

    def _failed(self, what: str, exc: OSError) -> None:
        if what.startswith("segment"):
            self.segments_lost += 1
        if self._failing:
            return  # the streak was reported at its start: one line, not one per segment
        self._failing = True
        reason = exc.strerror or str(exc)
        if self._first_error is None:
            self._first_error = f"recording failed at {what}: {reason}"
        log.error(
            "space %s: recording into %s failed at %s: %s. The live stream goes on; "
            "the recorder retries with every segment.",
            self.space_id,
            self.directory,
            what,
            reason,
        )


@dataclass(frozen=True, slots=True)
class RecordedSegment:
    """One segment of a recording, as listed in the index.

    ``offset`` is where it starts in the recording, in seconds, with all segments back to back;
    ``discontinuity`` is set on the first segment after a change of run or a lost segment.
    """

    run_id: str
    msn: int
    duration: Fraction
    program_date_time: float
    offset: Fraction
    discontinuity: bool

    @property
    def end(self) -> Fraction:
        return self.offset + self.duration

    @property
    def uri(self) -> str:
        """The segment's URI relative to the replay playlist (and its path in the directory)."""
        return f"{self.run_id}/{self.msn}.m4s"


class Recording:
    """What is on disk for one space, read from its index: the segments, in recording order."""

    def __init__(self, directory: Path, segments: list[RecordedSegment]) -> None:
        self.directory = directory
        self.segments = segments

    @classmethod
    def load(cls, root: Path, space_id: str) -> Recording:
        """Read the index of ``space_id`` (an empty recording if there is none)."""
        directory = space_directory(root, space_id)
        try:
            text = (directory / INDEX_NAME).read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            text = ""
        segments: list[RecordedSegment] = []
        offset = Fraction(0)
        previous: tuple[str, int] | None = None
        for run_id, msn, duration, date in _parse_index(text):
            if previous is not None and previous[0] == run_id and msn <= previous[1]:
                continue  # never written so, but a replayed line must not break the timeline
            # RFC 8216 section 4.3.2.3: a new run restarts its timestamps, and a lost segment
            # leaves a jump in them; either needs EXT-X-DISCONTINUITY before the next segment.
            discontinuity = previous is not None and previous != (run_id, msn - 1)
            segments.append(RecordedSegment(run_id, msn, duration, date, offset, discontinuity))
            offset += duration
            previous = (run_id, msn)
        return cls(directory, segments)

    @property
    def duration(self) -> Fraction:
        """Seconds of audio recorded (all segments back to back)."""
        return self.segments[-1].end if self.segments else Fraction(0)

    def __bool__(self) -> bool:
        return bool(self.segments)

    def init_path(self, run_id: str) -> Path:
        return self.directory / run_id / "init.mp4"

    def segment_path(self, segment: RecordedSegment) -> Path:
        return self.directory / segment.run_id / f"{segment.msn}.m4s"

    def pieces(self) -> list[list[RecordedSegment]]:
        """The segments split where a discontinuity is: each piece plays as one fMP4 stream."""
        pieces: list[list[RecordedSegment]] = []
        for segment in self.segments:
            if not pieces or segment.discontinuity:
                pieces.append([])
            pieces[-1].append(segment)
        return pieces

    def playlist(self) -> str:
        """The replay: an HLS VOD playlist of every recorded segment (RFC 8216 section 6.2.1).

        EXT-X-PLAYLIST-TYPE:VOD and EXT-X-ENDLIST come from ``render_vod``; each run gets its
        own EXT-X-MAP right after its EXT-X-DISCONTINUITY, since a Media Initialization Section
        applies to every segment up to the next EXT-X-MAP (section 4.3.2.5).
        """
        if not self.segments:
            raise ValueError("nothing was recorded")
        text = render_vod(
            map_uri=f"{self.segments[0].run_id}/init.mp4",
            segments=[
                Segment(
                    uri=s.uri,
                    duration=s.duration,
                    program_date_time=s.program_date_time,
                    discontinuity=s.discontinuity,
                )
                for s in self.segments
            ],
        )
        lines: list[str] = []
        upcoming = iter(self.segments)  # the segment the next URI line names
        map_run = self.segments[0].run_id
        following = next(upcoming)
        for line in text.splitlines():
            lines.append(line)
            if line == "#EXT-X-DISCONTINUITY" and following.run_id != map_run:
                map_run = following.run_id
                lines.append(f'#EXT-X-MAP:URI="{map_run}/init.mp4"')
            elif line and not line.startswith("#"):
                following = next(upcoming, following)
        return "\n".join(lines) + "\n"


def _parse_index(text: str) -> Iterator[tuple[str, int, Fraction, float]]:
    """The well-formed lines of an index: (run_id, msn, duration, program_date_time)."""
    for line in text.splitlines():
        # A line appended after a torn one is glued to it: keep the last entry of the line.
        line = line[line.rfind('{"run_id"') :] if line.count('{"run_id"') > 1 else line
        try:
            entry = json.loads(line)
            run_id, msn = entry["run_id"], entry["msn"]
            duration = Fraction(entry["duration"]).limit_denominator(1_000_000)
            date = float(entry["program_date_time"])
        except (ValueError, TypeError, KeyError):
            continue  # a torn last line after a crash, or garbage: skip it
        if (
            isinstance(run_id, str)
            and SAFE_ID.fullmatch(run_id)
            and isinstance(msn, int)
            and msn >= 0
            and duration > 0
        ):
            yield run_id, msn, duration, date
