"""The LL-HLS packager: real AAC frames in, playlists parsed by m3u8, media decoded by PyAV."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from fractions import Fraction

import m3u8
import numpy as np
import pytest
from m3u8 import parser

from causerie.media.encoder import AacEncoder, EncodedFrame
from causerie.media.packager import Packager, first_msn_at, parse_blocking_request

T0 = 1_750_000_000.0  # wall time of input sample 0
FIRST_MSN = 911_458_333  # first_msn_at(T0, 1.92)
PART_URI = re.compile(r"(?P<run>[\w-]+)/(?P<msn>\d+)\.(?P<index>\d+)\.m4s")


@pytest.fixture(scope="module")
def frames() -> list[EncodedFrame]:
    """25 s of a tone sweeping 300 -> 3000 Hz, encoded once for the whole module."""
    t = np.arange(25 * 48000) / 48000
    phase = 2 * np.pi * (300 * t + (2700 / 50) * t**2)
    pcm = np.rint(6000 * np.sin(phase)).astype(np.int16)
    encoder = AacEncoder()
    return encoder.encode(pcm) + encoder.flush()


def make_packager(**options) -> Packager:
    return Packager(
        run_id="run1",
        first_msn=FIRST_MSN,
        audio_specific_config=AacEncoder().audio_specific_config,
        **options,
    )


def feed(packager: Packager, frames: list[EncodedFrame], seconds: float) -> list:
    """Add frames covering ``seconds`` of input, at the wall times the pipeline would give."""
    refs = []
    for frame in frames:
        if frame.pts >= seconds * 48000:
            break
        refs += packager.add(frame, T0 + frame.pts / 48000)
    return refs


def parse(text: str) -> m3u8.M3U8:
    parser.parse(text, strict=True)
    return m3u8.loads(text)


def test_first_msn_from_wall_time():
    assert first_msn_at(T0, 1.92) == FIRST_MSN
    assert first_msn_at(T0 + 1.92, 1.92) == FIRST_MSN + 1
    assert first_msn_at(T0 + 60, 1.92) > first_msn_at(T0, 1.92)


def test_parts_come_every_ten_frames(frames):
    packager = make_packager()
    refs = []
    for n, frame in enumerate(frames[:95], start=1):
        new = packager.add(frame, T0 + frame.pts / 48000)
        assert len(new) == (1 if n % 10 == 0 else 0)
        refs += new
    assert [(r.msn, r.index) for r in refs] == [(FIRST_MSN, i) for i in range(9)]
    assert all(r.duration == Fraction(10 * 1024, 48000) and r.independent for r in refs)
    assert packager.last_part() == (FIRST_MSN, 8)


def test_live_playlist_after_six_seconds(frames):
    packager = make_packager()
    feed(packager, frames, 6.0)
    playlist = parse(packager.playlist())
    assert playlist.target_duration == 2
    assert playlist.version == 6
    assert playlist.part_inf.part_target == pytest.approx(0.21334)
    assert playlist.server_control.can_block_reload == "YES"
    assert playlist.server_control.part_hold_back >= 3 * playlist.part_inf.part_target
    assert playlist.media_sequence == FIRST_MSN
    assert playlist.segment_map[0].uri == "run1/init.mp4"

    complete = [s for s in playlist.segments if s.uri]
    assert [s.uri for s in complete] == [f"run1/{FIRST_MSN + i}.m4s" for i in range(3)]
    assert all(s.duration == 1.92 for s in complete)
    # The segment in progress: 6 s = 28 parts of which 27 are in complete segments.
    last_msn, last_index = packager.last_part()
    pending = playlist.segments[-1]
    assert pending.uri is None
    assert len(pending.parts) == last_index + 1
    assert playlist.preload_hint.uri == f"run1/{last_msn}.{last_index + 1}.m4s"

    # PROGRAM-DATE-TIME of a segment is the wall time of its first sample (the first frame is
    # the encoder's priming frame, 1024 samples before input sample 0).
    for n, s in enumerate(complete):
        start = datetime.fromtimestamp(T0 + (-1024 + n * 92160) / 48000, UTC)
        assert abs((s.program_date_time - start).total_seconds()) < 0.001  # millisecond precision


def test_every_referenced_part_and_segment_decodes(frames, decode_mp4, probe):
    packager = make_packager()
    feed(packager, frames, 6.0)
    playlist = parse(packager.playlist())
    next_start = 0
    for s in playlist.segments:
        for part in s.parts:
            match = PART_URI.fullmatch(part.uri)
            assert match["run"] == "run1"
            data = packager.part(int(match["msn"]), int(match["index"]))
            assert data is not None
            samples, decoded = decode_mp4(packager.init + data)
            assert len(decoded) == 10
            # tfdt: contiguous and increasing from part to part across segments.
            assert decoded[0].pts == next_start
            next_start += 10 * 1024
        if s.uri:
            msn = int(s.uri.split("/")[1].removesuffix(".m4s"))
            data = packager.segment(msn)
            parts = [packager.part(msn, i) for i in range(9)]
            assert data == b"".join(parts)  # a segment is its parts, back to back
            report = probe(packager.init + data)
            assert report["streams"][0]["profile"] == "LC"
            assert float(report["streams"][0]["duration"]) == pytest.approx(
                1.92 + float(msn - FIRST_MSN) * 1.92
            )  # ffprobe counts from decode time 0
            samples, decoded = decode_mp4(packager.init + data)
            assert samples.size == 92160


def test_the_window_slides(frames):
    packager = make_packager(window_segments=6)
    feed(packager, frames, 24.0)  # 12 complete segments and a bit
    playlist = parse(packager.playlist())
    complete = [s for s in playlist.segments if s.uri]
    last = FIRST_MSN + 11
    assert [s.uri for s in complete] == [f"run1/{msn}.m4s" for msn in range(last - 5, last + 1)]
    assert playlist.media_sequence == last - 5
    # Parts are listed for recent segments only (within 3 target durations of the end).
    assert [s.uri for s in complete if s.parts] == [f"run1/{last - 1}.m4s", f"run1/{last}.m4s"]
    # Dropped from the playlist but still downloadable for a while (section 6.2.2) ...
    for msn in (last - 7, last - 6):
        assert packager.segment(msn) is not None
        assert packager.part(msn, 0) is not None
    # ... and then gone.
    for msn in (FIRST_MSN, last - 8):
        assert packager.segment(msn) is None
        assert packager.part(msn, 0) is None
    assert packager.part(last, 9) is None
    assert packager.segment(last + 1) is None  # in progress: not a segment yet


def test_has_part_follows_blocking_reload_rules(frames):
    packager = make_packager()
    msn = FIRST_MSN
    assert packager.last_part() is None
    assert not packager.has_part(msn, 0)
    feed(packager, frames, 0.2)  # 10 frames: part 0
    assert packager.has_part(msn, 0)
    assert not packager.has_part(msn, 1)
    assert not packager.has_part(msn, None)  # without _HLS_part: the whole segment
    assert not packager.has_part(msn, -1)
    feed(packager, frames[10:], 1.9)  # up to part 8: segment msn complete
    assert packager.has_part(msn, 8)
    assert packager.has_part(msn, None)
    assert packager.has_part(msn - 5, None)  # older segments: satisfied
    # A part index past the last part of a segment means part 0 of the next segment.
    assert not packager.has_part(msn, 9)
    assert not packager.has_part(msn, 50)
    assert not packager.has_part(msn + 1, None)


def test_too_far_ahead(frames):
    packager = make_packager()
    msn = FIRST_MSN
    assert not packager.too_far(msn, None)
    assert not packager.too_far(msn + 1, None)  # no complete segment yet: last is msn - 1
    assert packager.too_far(msn + 2, None)
    feed(packager, frames, 0.5)  # parts 0 and 1 of msn
    assert not packager.too_far(msn + 1, None)
    assert packager.too_far(msn + 2, None)
    # Advance Part Limit: 3 / 0.21333 s = 14.06 parts ahead of the last part (msn, 1).
    assert not packager.too_far(msn + 1, 6)  # 14 parts ahead
    assert packager.too_far(msn + 1, 7)  # 15 parts ahead
    packager.end()
    assert not packager.too_far(msn + 100, 0)  # an ended stream ignores the directives


def test_end_closes_the_segment_in_progress(frames, decode_mp4):
    packager = make_packager()
    feed(packager, frames, 2.5)
    (final,) = packager.end()
    assert (final.msn, final.index) == (FIRST_MSN + 1, 2)
    assert packager.end() == []  # twice is harmless
    assert packager.ended
    text = packager.playlist()
    playlist = parse(text)
    assert playlist.is_endlist
    assert "PRELOAD-HINT" not in text
    assert [s.uri for s in playlist.segments] == [f"run1/{FIRST_MSN + i}.m4s" for i in range(2)]
    last = playlist.segments[-1]
    # Frames starting in the first 2.5 s: the priming frame and 118 more. 90 make the first
    # segment; the other 29 make two full parts and a short final part of 9 frames.
    assert last.duration == pytest.approx(29 * 1024 / 48000, abs=1e-5)
    assert [p.duration for p in last.parts] == pytest.approx([0.21333, 0.21333, 0.192])
    _, decoded = decode_mp4(packager.init + packager.part(FIRST_MSN + 1, 2))
    assert len(decoded) == 9
    with pytest.raises(RuntimeError, match="ended"):
        packager.add(frames[200], T0 + 10)


def test_on_segment_gets_every_complete_segment(frames):
    seen = []
    packager = make_packager(on_segment=lambda ref, data: seen.append((ref, data)))
    feed(packager, frames, 4.0)
    packager.end()
    assert [ref.msn for ref, _ in seen] == [FIRST_MSN, FIRST_MSN + 1, FIRST_MSN + 2]
    for ref, data in seen:
        assert data == packager.segment(ref.msn)
        assert ref.run_id == "run1"
        assert ref.uri == f"run1/{ref.msn}.m4s"
    assert seen[0][0].duration == Fraction(92160, 48000)
    assert seen[0][0].parts == 9
    assert seen[0][0].program_date_time == T0 - 1024 / 48000
    assert seen[-1][0].parts < 9  # the short final segment


def test_discontinuity_sequence_of_a_later_run(frames):
    packager = make_packager(discontinuity_sequence=3)
    feed(packager, frames, 2.0)
    assert parse(packager.playlist()).discontinuity_sequence == 3


@pytest.mark.parametrize(
    ("msn", "part", "expected"),
    [
        (None, None, None),
        ("12", None, (12, None)),
        ("12", "0", (12, 0)),
        ("0", "8", (0, 8)),
        ("18446744073709551615", None, (2**64 - 1, None)),
    ],
)
def test_parse_blocking_request(msn, part, expected):
    assert parse_blocking_request(msn, part) == expected


@pytest.mark.parametrize(
    ("msn", "part", "message"),
    [
        (None, "1", "_HLS_part requires _HLS_msn"),
        ("abc", None, "_HLS_msn must be a non-negative integer, got 'abc'"),
        ("-1", None, "_HLS_msn must be a non-negative integer, got '-1'"),
        ("1.5", None, "_HLS_msn must be a non-negative integer"),
        ("", None, "_HLS_msn must be a non-negative integer"),
        (" 1", None, "_HLS_msn must be a non-negative integer"),
        ("+1", None, "_HLS_msn must be a non-negative integer"),
        ("²", None, "_HLS_msn must be a non-negative integer"),
        ("18446744073709551616", None, "_HLS_msn must be a non-negative integer"),
        ("1", "x", "_HLS_part must be a non-negative integer, got 'x'"),
        ("1", "-2", "_HLS_part must be a non-negative integer"),
    ],
)
def test_parse_blocking_request_rejects(msn, part, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_blocking_request(msn, part)


def test_invalid_configuration():
    with pytest.raises(ValueError, match="URL-safe"):
        Packager(run_id="a/b", first_msn=0, audio_specific_config=b"\x11\x88")
    with pytest.raises(ValueError, match="3 target durations"):
        make_packager(window_segments=2)
