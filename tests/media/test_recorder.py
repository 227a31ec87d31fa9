"""The recorder: segments on disk as they are made, the index, runs, disk errors; and cuts."""

from __future__ import annotations

import asyncio
import errno
import io
import json
import logging
import struct
from fractions import Fraction
from pathlib import Path

import av
import m3u8
import numpy as np
import pytest

from causerie.media.broadcasts import Broadcasts
from causerie.media.clips import EmptyCut, cut
from causerie.media.encoder import AacEncoder
from causerie.media.mixer import Mixer
from causerie.media.packager import Packager, SegmentRef
from causerie.media.pipeline import LivePipeline
from causerie.media.recorder import INDEX_NAME, Recorder, Recording

SPACE = "space-1"
FRAME = Fraction(1024, 48000)


def tone(seconds: float, frequency: float = 440.0) -> np.ndarray:
    t = np.arange(round(seconds * 48000)) / 48000
    return np.rint(8000 * np.sin(2 * np.pi * frequency * t)).astype(np.int16)


def record_run(
    root: Path, run_id: str, first_msn: int, seconds: float, t0: float
) -> tuple[Packager, Recorder, list[SegmentRef]]:
    """Encode and package ``seconds`` of tone with a fake clock (wall time t0 + pts), recorded."""
    encoder = AacEncoder()
    packager = Packager(
        run_id=run_id, first_msn=first_msn, audio_specific_config=encoder.audio_specific_config
    )
    recorder = Recorder(root, SPACE, run_id, packager.init)
    seen: list[SegmentRef] = []

    def on_segment(segment: SegmentRef, data: bytes) -> None:
        seen.append(segment)
        recorder.record(segment, data)

    packager.on_segment = on_segment
    for frame in encoder.encode(tone(seconds)) + encoder.flush():
        packager.add(frame, t0 + frame.pts / 48000)
    packager.end()
    recorder.close()
    return packager, recorder, seen


def index_lines(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / SPACE / INDEX_NAME).read_text().splitlines()]


def decoded_seconds(data: bytes) -> float:
    with av.open(io.BytesIO(data), format="mp4") as container:
        return sum(frame.samples for frame in container.decode(audio=0)) / 48000


def test_segments_and_index_are_on_disk(tmp_path: Path) -> None:
    packager, recorder, seen = record_run(tmp_path, "runA", 1000, 6.0, t0=1_700_000_000.0)
    run_dir = tmp_path / SPACE / "runA"
    assert (run_dir / "init.mp4").read_bytes() == packager.init
    lines = index_lines(tmp_path)
    assert [line["msn"] for line in lines] == [s.msn for s in seen] == [1000, 1001, 1002, 1003]
    assert {line["run_id"] for line in lines} == {"runA"}
    for line, segment in zip(lines, seen, strict=True):
        # Byte for byte what the live origin served.
        assert (run_dir / f"{line['msn']}.m4s").read_bytes() == packager.segment(segment.msn)
        assert line["duration"] == pytest.approx(float(segment.duration))
        assert line["program_date_time"] == pytest.approx(segment.program_date_time)
    # Full segments of 1.92 s, then the short final one that end() flushed.
    assert [line["duration"] for line in lines[:3]] == [1.92, 1.92, 1.92]
    assert 0 < lines[-1]["duration"] < 1.92
    assert lines[1]["program_date_time"] - lines[0]["program_date_time"] == pytest.approx(1.92)
    assert sum(line["duration"] for line in lines) == pytest.approx(6.0, abs=0.1)
    recorded = (run_dir / "init.mp4").read_bytes() + b"".join(
        (run_dir / f"{line['msn']}.m4s").read_bytes() for line in lines
    )
    assert decoded_seconds(recorded) == pytest.approx(6.0, abs=0.1)
    assert recorder.recording_error is None and recorder.segments_recorded == 4


def test_a_second_run_is_appended_after_a_discontinuity(tmp_path: Path) -> None:
    record_run(tmp_path, "runA", 1000, 4.0, t0=1_700_000_000.0)
    record_run(tmp_path, "runB", 1100, 3.0, t0=1_700_000_200.0)
    assert [line["run_id"] for line in index_lines(tmp_path)] == ["runA"] * 3 + ["runB"] * 2

    recording = Recording.load(tmp_path, SPACE)
    assert [s.discontinuity for s in recording.segments] == [False] * 3 + [True, False]
    assert [len(piece) for piece in recording.pieces()] == [3, 2]
    assert float(recording.duration) == pytest.approx(7.0, abs=0.1)
    offsets = [s.offset for s in recording.segments]
    assert offsets == sorted(offsets) and offsets[0] == 0

    text = recording.playlist()
    playlist = m3u8.loads(text)
    assert playlist.playlist_type == "vod" and playlist.is_endlist
    assert [s.uri for s in playlist.segments] == [s.uri for s in recording.segments]
    assert [s.discontinuity for s in playlist.segments] == [False] * 3 + [True, False]
    assert all(s.program_date_time is not None for s in playlist.segments)
    # One EXT-X-MAP per run, the second right after the discontinuity (RFC 8216 4.3.2.5).
    assert text.count("#EXT-X-MAP:") == 2
    assert '#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="runB/init.mp4"\n' in text


def test_attached_to_a_pipeline_it_chains_the_hook_and_keeps_the_final_segment(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        pipeline = LivePipeline(SPACE, mixer=Mixer(), clock=lambda: 1_700_000_000.0)
        earlier: list[int] = []
        pipeline.on_segment = lambda segment, data: earlier.append(segment.msn)
        recorder = Recorder.attach(pipeline, tmp_path)
        for frame in pipeline.encoder.encode(tone(2.5)):
            pipeline.packager.add(frame, 1_700_000_000.0 + frame.pts / 48000)
        assert len(index_lines(tmp_path)) == 1  # written as soon as the segment was complete
        await pipeline.stop()  # flushes the encoder and the last, short, segment
        recorder.close()
        lines = index_lines(tmp_path)
        assert [line["msn"] for line in lines] == earlier and len(earlier) == 2
        assert sum(line["duration"] for line in lines) == pytest.approx(2.5, abs=0.07)
        assert recorder.closed and recorder.run_id == pipeline.run_id

    asyncio.run(scenario())


def test_a_full_disk_never_stops_the_live_stream(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="causerie.media.recorder")
    disk_full = {"on": False}
    write_file = Recorder._write_file

    def flaky_write(self: Recorder, path: Path, data: bytes) -> None:
        if disk_full["on"]:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        write_file(self, path, data)

    monkeypatch.setattr(Recorder, "_write_file", flaky_write)
    encoder = AacEncoder()
    packager = Packager(
        run_id="runA", first_msn=0, audio_specific_config=encoder.audio_specific_config
    )
    recorder = Recorder(tmp_path, SPACE, "runA", packager.init)
    packager.on_segment = recorder.record
    parts = 0
    frames = encoder.encode(tone(12.0)) + encoder.flush()
    for i, frame in enumerate(frames):
        # The disk is full from 3 s to 8 s: segments 1 to 3 (closed at 3.8, 5.7, 7.7 s) are lost.
        disk_full["on"] = 3.0 <= i * float(FRAME) < 8.0
        parts += len(packager.add(frame, 1000.0 + frame.pts / 48000))
    packager.end()
    recorder.close()

    assert parts == len(frames) // 10  # the packager never missed a part
    assert recorder.segments_lost == 3
    assert "No space left on device" in recorder.recording_error
    assert "3 segment(s) not recorded" in recorder.recording_error
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, "the failure is logged once, not once per segment"
    # What was recorded replays, with a discontinuity where segments are missing.
    recording = Recording.load(tmp_path, SPACE)
    msns = [s.msn for s in recording.segments]
    assert msns == [0, 4, 5, 6]
    assert [s.discontinuity for s in recording.segments] == [False, True, False, False]
    assert "#EXT-X-DISCONTINUITY" in recording.playlist()


def test_an_unusable_recordings_directory_is_reported_not_raised(tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    root.write_text("a file where the directory should be")
    _, recorder, seen = record_run(root, "runA", 0, 2.5, t0=1000.0)  # must not raise
    assert len(seen) == 2
    assert recorder.recording_error is not None
    assert recorder.segments_recorded == 0 and recorder.segments_lost == 2


def test_a_torn_index_line_is_skipped(tmp_path: Path) -> None:
    record_run(tmp_path, "runA", 10, 2.5, t0=1000.0)
    with (tmp_path / SPACE / INDEX_NAME).open("a") as index:
        index.write('{"run_id": "runA", "msn": 1')  # what a kill -9 mid-write could leave
    assert [s.msn for s in Recording.load(tmp_path, SPACE).segments] == [10, 11]
    # The next run (after the restart) appends its first line right after the torn one.
    record_run(tmp_path, "runB", 20, 2.5, t0=2000.0)
    recording = Recording.load(tmp_path, SPACE)
    assert [(s.run_id, s.msn) for s in recording.segments] == [
        ("runA", 10),
        ("runA", 11),
        ("runB", 20),
        ("runB", 21),
    ]
    assert not Recording.load(tmp_path, "nothing-here")


async def test_broadcasts_records_spaces_that_record_and_only_those(tmp_path: Path) -> None:
    broadcasts = Broadcasts(recordings_dir=tmp_path)
    await broadcasts.start("rec", record=True)
    await broadcasts.start("norec", record=False)
    recorder = broadcasts.recorder("rec")
    assert recorder is not None and broadcasts.recorder("norec") is None
    await asyncio.sleep(0.3)
    await broadcasts.stop_all()
    assert recorder.closed and broadcasts.recorder("rec") is recorder  # still readable
    recording = Recording.load(tmp_path, "rec")
    assert len(recording.segments) == 1  # the short segment flushed by the stop
    assert 0.2 < float(recording.duration) < 1.0
    assert not (tmp_path / "norec").exists()


def top_level_boxes(data: bytes) -> list[bytes]:
    boxes, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        boxes.append(kind)
        offset += size
    return boxes


def test_cuts_copy_the_packets_of_every_run_into_one_plain_m4a(tmp_path: Path, probe) -> None:
    record_run(tmp_path, "runA", 1000, 5.0, t0=1000.0)
    record_run(tmp_path, "runB", 2000, 3.0, t0=2000.0)
    recording = Recording.load(tmp_path, SPACE)

    whole = cut(recording, tmp_path / "whole.m4a")
    assert whole.start == 0 and whole.end == recording.duration
    data = (tmp_path / "whole.m4a").read_bytes()
    # Not fragmented, and moov first (faststart): players start before the download ends.
    assert top_level_boxes(data)[:2] == [b"ftyp", b"moov"] and b"moof" not in top_level_boxes(data)
    report = probe(data)
    assert report["streams"][0]["codec_name"] == "aac"
    assert float(report["format"]["duration"]) == pytest.approx(float(recording.duration), abs=0.01)
    assert decoded_seconds(data) == pytest.approx(float(recording.duration), abs=0.05)

    # A clip across the join of the two runs: as long as asked, to within a frame.
    start, end = Fraction(4), Fraction(6)
    clip = cut(recording, tmp_path / "clips" / "c.m4a", start, end)
    assert abs(clip.start - start) <= FRAME / 2 and abs(clip.end - end) <= FRAME / 2
    report = probe((tmp_path / "clips" / "c.m4a").read_bytes())
    assert float(report["format"]["duration"]) == pytest.approx(2.0, abs=float(FRAME))
    assert not [p for p in (tmp_path / "clips").iterdir() if p.name.endswith(".part")]

    with pytest.raises(EmptyCut):
        cut(recording, tmp_path / "none.m4a", Fraction(100), Fraction(110))
    assert not (tmp_path / "none.m4a").exists()
