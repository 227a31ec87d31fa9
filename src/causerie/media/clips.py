"""Ordinary MP4 audio files (M4A) cut from a recording, by copying its AAC packets.

The recorded segments are fragmented MP4 (CMAF); people downloading a conversation or sharing a
clip want one plain ``.m4a`` that every player opens. PyAV demuxes each stretch of the recording
(one encoder run, or the part of one between two lost segments) from its init section and
segment files, and muxes the packets it wants into one non-fragmented file with the ``moov`` box
first (``movflags=+faststart``), so players start before the download ends. Nothing is
re-encoded: a cut is as precise as one AAC frame (1024 samples, 21.3 ms at 48 kHz), and the runs
follow one another with continuous timestamps.

This is blocking work (a long recording takes a while to copy): run it in a thread.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av

from causerie.media.recorder import RecordedSegment, Recording

__all__ = ["Cut", "EmptyCut", "cut"]

log = logging.getLogger(__name__)


class EmptyCut(ValueError):
    """The range holds no audio of the recording."""


@dataclass(frozen=True, slots=True)
class Cut:
    """What a cut holds: from ``start`` to ``end`` seconds of the recording, ``frames`` frames."""

    start: Fraction
    end: Fraction
    frames: int

    @property
    def duration(self) -> Fraction:
        return self.end - self.start


def cut(
    recording: Recording,
    destination: Path,
    start: Fraction = Fraction(0),
    end: Fraction | None = None,
) -> Cut:
    """Write the audio between ``start`` and ``end`` (seconds into the recording) to an M4A.

    ``end`` None means the end of the recording. A frame is kept when its middle is in the range,
    so the cut's edges are within half a frame of the range's. The file appears at
    ``destination`` complete or not at all (written beside it, then renamed).
    Raises ``EmptyCut`` if no frame is in the range.
    """
    destination.parent.mkdir(parents=True, exist_ok=True)
    partial = destination.with_name(f".{destination.name}.{secrets.token_hex(4)}.part")
    try:
        result = _mux(recording, partial, start, end)
        os.replace(partial, destination)
    finally:
        partial.unlink(missing_ok=True)
    return result


def _mux(recording: Recording, path: Path, start: Fraction, end: Fraction | None) -> Cut:
    first: Fraction | None = None
    last = Fraction(0)
    frames = 0
    written = Fraction(0)  # seconds muxed so far: the next packet's timestamp
    with av.open(str(path), "w", format="ipod", options={"movflags": "+faststart"}) as output:
        stream = None
        for piece in recording.pieces():
            wanted = [s for s in piece if s.end > start and (end is None or s.offset < end)]
            present = _present(recording, wanted)
            if not present:
                continue
            files = [recording.init_path(present[0].run_id)]
            files.extend(recording.segment_path(s) for s in present)
            with _Concatenation(files) as source, av.open(source, "r", format="mp4") as container:
                audio = container.streams.audio[0]
                assert audio.time_base is not None  # an MP4 track's timescale (mdhd)
                if stream is None:
                    stream = output.add_stream_from_template(audio)
                first_pts: int | None = None
                for packet in container.demux(audio):
                    if packet.pts is None or packet.duration is None:
                        continue  # the demuxer's final empty packet
                    if first_pts is None:
                        first_pts = packet.pts
                    # Where this frame is in the recording; the fragments' decode times (tfdt)
                    # count from the start of the run, so a missing file leaves a hole in the
                    # packets' times and does not shift the frames after it.
                    position = present[0].offset + (packet.pts - first_pts) * audio.time_base
                    length = packet.duration * audio.time_base
                    middle = position + length / 2
                    if middle < start:
                        continue
                    if end is not None and middle >= end:
                        break
                    if first is None:
                        first = position
                    last = position + length
                    packet.stream = stream
                    packet.pts = packet.dts = round(written / audio.time_base)
                    output.mux(packet)
                    written += length
                    frames += 1
        if frames == 0:
            raise EmptyCut("there is no recorded audio in this range")
    assert first is not None
    return Cut(start=first, end=last, frames=frames)


def _present(recording: Recording, segments: Sequence[RecordedSegment]) -> list[RecordedSegment]:
    """The segments of one piece whose files are on disk (the missing ones are logged)."""
    if not segments:
        return []
    init = recording.init_path(segments[0].run_id)
    if not init.is_file():
        log.warning("recording %s: %s is missing; skipping its run", recording.directory, init)
        return []
    present = []
    for segment in segments:
        if recording.segment_path(segment).is_file():
            present.append(segment)
        else:
            log.warning("recording %s: segment %s is missing", recording.directory, segment.uri)
    return present


class _Concatenation(io.RawIOBase):
    """The files, end to end, as one readable (non-seekable) stream for the MP4 demuxer.

    A fragmented MP4 demuxes front to back, so the init section followed by its segments needs
    neither a copy on disk nor the whole thing in memory.
    """

    def __init__(self, paths: Sequence[Path]) -> None:
        super().__init__()
        self._paths = list(paths)
        self._current: io.BufferedReader | None = None

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        while True:
            if self._current is None:
                if not self._paths:
                    return 0
                self._current = open(self._paths.pop(0), "rb")  # noqa: SIM115 (closed below)
            count = self._current.readinto(buffer)
            if count:
                return count
            self._current.close()
            self._current = None

    def close(self) -> None:
        if self._current is not None:
            self._current.close()
            self._current = None
        super().close()
