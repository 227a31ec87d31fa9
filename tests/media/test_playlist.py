"""Playlist rendering, parsed back with the m3u8 package (strict) and checked against the spec."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from fractions import Fraction

import m3u8
import pytest
from m3u8 import parser

from causerie.media.playlist import (
    LivePlaylist,
    Part,
    Segment,
    format_program_date_time,
    format_seconds,
    render_live,
    render_vod,
    target_duration_for,
)

PART = Fraction(10 * 1024, 48000)  # 213.333 ms
SEGMENT = 9 * PART  # 1.92 s
T0 = 1_750_000_000.25


def parse(text: str) -> m3u8.M3U8:
    parser.parse(text, strict=True)  # raises on any line it does not understand
    return m3u8.loads(text)


def segment(msn: int, *, parts: int = 9, discontinuity: bool = False) -> Segment:
    return Segment(
        uri=f"r/{msn}.m4s",
        duration=PART * parts,
        program_date_time=T0 + float((msn - 100) * SEGMENT),
        parts=tuple(Part(f"r/{msn}.{i}.m4s", PART) for i in range(parts)),
        discontinuity=discontinuity,
    )


def live(count: int, pending: int, **changes) -> LivePlaylist:
    fields = {
        "map_uri": "r/init.mp4",
        "target_duration": target_duration_for(SEGMENT),
        "part_target": PART,
        "media_sequence": 100,
        "segments": tuple(segment(100 + i) for i in range(count)),
        "pending_parts": tuple(Part(f"r/{100 + count}.{i}.m4s", PART) for i in range(pending)),
        "pending_program_date_time": T0 + float(count * SEGMENT),
        "preload_hint": f"r/{100 + count}.{pending}.m4s",
    }
    fields.update(changes)
    return LivePlaylist(**fields)


def test_live_playlist_header():
    playlist = parse(render_live(live(2, 3)))
    assert playlist.version == 6
    assert playlist.target_duration == 2
    assert playlist.media_sequence == 100
    assert playlist.is_independent_segments
    assert playlist.segment_map[0].uri == "r/init.mp4"
    assert playlist.part_inf.part_target == pytest.approx(0.21334)
    assert playlist.server_control.can_block_reload == "YES"
    # PART-HOLD-BACK SHOULD be at least three part targets (4.4.3.8), as written.
    assert playlist.server_control.part_hold_back >= 3 * playlist.part_inf.part_target
    assert playlist.server_control.part_hold_back == 0.641
    assert playlist.playlist_type is None  # a live playlist MUST NOT have one (6.2.2)
    assert not playlist.is_endlist


def test_live_playlist_segments_parts_and_hint():
    text = render_live(live(2, 3))
    playlist = parse(text)
    complete = [s for s in playlist.segments if s.uri]
    assert [s.uri for s in complete] == ["r/100.m4s", "r/101.m4s"]
    for s in complete:
        assert round(s.duration) <= playlist.target_duration  # 4.4.3.1
        assert [p.uri for p in s.parts] == [f"{s.uri[:-4]}.{i}.m4s" for i in range(9)]
    pending = playlist.segments[-1]
    assert pending.uri is None
    assert [p.uri for p in pending.parts] == ["r/102.0.m4s", "r/102.1.m4s", "r/102.2.m4s"]
    for s in playlist.segments:
        for p in s.parts:
            assert p.duration <= playlist.part_inf.part_target  # 4.4.4.9
            assert p.independent == "YES"
    assert playlist.preload_hint.hint_type == "PART"
    assert playlist.preload_hint.uri == "r/102.3.m4s"
    # Program date times: per segment, ISO 8601 with milliseconds, in UTC with a Z.
    stamps = re.findall(r"^#EXT-X-PROGRAM-DATE-TIME:(.*)$", text, re.MULTILINE)
    assert len(stamps) == 3
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", s) for s in stamps)
    assert complete[0].program_date_time == datetime(2025, 6, 15, 15, 6, 40, 250000, tzinfo=UTC)
    assert pending.parts[0].program_date_time == datetime.fromtimestamp(
        round(T0 + 2 * 1.92, 3), UTC
    )


def test_parts_older_than_three_target_durations_are_not_listed():
    playlist = parse(render_live(live(6, 2)))
    # End of playlist: 6 x 1.92 + 2 parts = 11.95 s; 3 target durations = 6 s before that is
    # 5.95 s, so segments that start earlier (103 starts at 5.76 s) lose their part tags.
    listed = [s.uri for s in playlist.segments if s.uri and s.parts]
    assert listed == ["r/104.m4s", "r/105.m4s"]
    assert len(playlist.segments[-1].parts) == 2


def test_empty_live_playlist_still_parses():
    playlist = parse(render_live(live(0, 0, pending_program_date_time=None)))
    assert playlist.segments == []
    assert playlist.preload_hint.uri == "r/100.0.m4s"


def test_ended_live_playlist():
    text = render_live(live(3, 0, ended=True))
    playlist = parse(text)
    assert playlist.is_endlist
    assert "PRELOAD-HINT" not in text  # MUST NOT appear with EXT-X-ENDLIST (4.4.5.3)
    assert [s.uri for s in playlist.segments] == ["r/100.m4s", "r/101.m4s", "r/102.m4s"]


def test_discontinuity_sequence_and_tags():
    segments = (segment(100), segment(101, discontinuity=True))
    text = render_live(live(0, 0, segments=segments, discontinuity_sequence=4))
    playlist = parse(text)
    assert playlist.discontinuity_sequence == 4
    assert [s.discontinuity for s in playlist.segments] == [False, True]
    # The discontinuity and date precede the segment's first part (4.4.4.9).
    lines = text.splitlines()
    tag = lines.index("#EXT-X-DISCONTINUITY")
    assert lines[tag + 1].startswith("#EXT-X-PROGRAM-DATE-TIME:")
    assert lines[tag + 2] == '#EXT-X-PART:DURATION=0.21333,URI="r/101.0.m4s",INDEPENDENT=YES'
    assert "#EXT-X-DISCONTINUITY-SEQUENCE" not in render_live(live(1, 0))


def test_vod_playlist():
    segments = [segment(100), segment(101), segment(102, parts=4, discontinuity=True)]
    text = render_vod(map_uri="r/init.mp4", segments=segments, media_sequence=100)
    playlist = parse(text)
    assert playlist.playlist_type == "vod"
    assert playlist.is_endlist
    assert playlist.target_duration == 2
    assert playlist.media_sequence == 100
    assert "EXT-X-PART" not in text
    assert "SERVER-CONTROL" not in text
    assert [s.duration for s in playlist.segments] == [1.92, 1.92, pytest.approx(0.85333)]
    assert [s.discontinuity for s in playlist.segments] == [False, False, True]
    assert all(s.program_date_time is not None for s in playlist.segments)


@pytest.mark.parametrize("part", [Fraction(1, 5), Fraction(1, 3), Fraction(1), PART])
def test_part_hold_back_survives_float_comparison(part):
    text = render_live(live(0, 0, part_target=part, pending_program_date_time=None))
    playlist = parse(text)
    assert playlist.server_control.part_hold_back >= 3 * playlist.part_inf.part_target


def test_format_seconds():
    assert format_seconds(SEGMENT) == "1.92"
    assert format_seconds(PART) == "0.21333"
    assert format_seconds(PART, round_up=True) == "0.21334"
    assert format_seconds(Fraction(2)) == "2"
    assert format_seconds(Fraction(1, 3), round_up=True) == "0.33334"


def test_format_program_date_time():
    assert format_program_date_time(0.0) == "1970-01-01T00:00:00.000Z"
    assert format_program_date_time(1_750_000_000.1234) == "2025-06-15T15:06:40.123Z"


@pytest.mark.parametrize(
    ("duration", "target"), [(SEGMENT, 2), (Fraction(2), 2), (Fraction(201, 100), 3)]
)
def test_target_duration(duration, target):
    assert target_duration_for(duration) == target


def test_multivariant_playlist_parses_with_codecs_and_bandwidths() -> None:
    import m3u8

    from causerie.media.playlist import render_multivariant

    text = render_multivariant("index.m3u8", bandwidth=70_400, average_bandwidth=67_000)
    parsed = m3u8.loads(text)
    assert parsed.is_variant and parsed.is_independent_segments
    (variant,) = parsed.playlists
    assert variant.uri == "index.m3u8"
    assert variant.stream_info.codecs == "mp4a.40.2"
    assert (variant.stream_info.bandwidth, variant.stream_info.average_bandwidth) == (70400, 67000)
    with pytest.raises(ValueError):
        render_multivariant("index.m3u8", bandwidth=0, average_bandwidth=1)
