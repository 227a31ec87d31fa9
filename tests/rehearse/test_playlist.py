"""Following an LL-HLS playlist: parsing, where to start, what to ask next, when a part is late."""

from __future__ import annotations

from fractions import Fraction

import m3u8
import pytest

from causerie.media.playlist import LivePlaylist, Part, Segment, render_live
from causerie.rehearse.playlist import Part as ListedPart
from causerie.rehearse.playlist import (
    PlayerClock,
    PlaylistError,
    blocking_url,
    parse_playlist,
    resolve,
)

PART = Fraction(10240, 48000)  # 213.33 ms, as the packager cuts them
T0 = 1_700_000_000.0


def live_text(complete: int = 4, pending: int = 2, first_msn: int = 10) -> str:
    """A playlist as causerie's packager writes it: `complete` segments, `pending` parts."""

    def segment(msn: int) -> Segment:
        parts = tuple(Part(f"r1/{msn}.{i}.m4s", PART) for i in range(9))
        start = T0 + float((msn - first_msn) * 9 * PART)
        return Segment(f"r1/{msn}.m4s", 9 * PART, start, parts)

    last = first_msn + complete
    return render_live(
        LivePlaylist(
            map_uri="r1/init.mp4",
            target_duration=2,
            part_target=PART,
            media_sequence=first_msn,
            segments=tuple(segment(m) for m in range(first_msn, last)),
            pending_parts=tuple(Part(f"r1/{last}.{i}.m4s", PART) for i in range(pending)),
            pending_program_date_time=T0 + float(complete * 9 * PART),
            preload_hint=f"r1/{last}.{pending}.m4s",
        )
    )


def test_parses_what_the_packager_writes():
    playlist = parse_playlist(live_text())
    assert playlist.media_sequence == 10
    assert playlist.can_block_reload
    assert playlist.part_target == pytest.approx(0.21334)
    assert playlist.part_hold_back == pytest.approx(0.641)
    assert playlist.map_uri == "r1/init.mp4"
    assert playlist.complete == {10, 11, 12, 13}
    assert not playlist.ended
    # Only the segments within three target durations of the end list their parts.
    keys = [p.key for p in playlist.parts]
    assert keys[0] == (12, 0)
    assert keys[-2:] == [(14, 0), (14, 1)]
    assert len(keys) == 9 + 9 + 2
    assert playlist.parts[-1].uri == "r1/14.1.m4s"
    # Media time from PROGRAM-DATE-TIME (ms precision) plus the parts before in the segment.
    assert playlist.parts[9].start == pytest.approx(T0 + 3 * 9 * float(PART), abs=1e-3)
    assert playlist.parts[10].start - playlist.parts[9].start == pytest.approx(0.21333)


def test_agrees_with_the_m3u8_package():
    text = live_text()
    ours = parse_playlist(text)
    theirs = m3u8.loads(text)
    # m3u8 puts the pending parts in a last segment without a URI.
    uris = [part.uri for segment in theirs.segments for part in segment.parts]
    assert [p.uri for p in ours.parts] == uris
    assert ours.media_sequence == theirs.media_sequence
    assert ours.part_hold_back == theirs.server_control.part_hold_back
    assert ours.part_target == theirs.part_inf.part_target


def test_starts_part_hold_back_behind_the_live_edge():
    playlist = parse_playlist(live_text())
    start = playlist.start_parts()
    # 0.641 s of hold-back: the part holding that position, then three more to the edge.
    assert [p.key for p in start] == [(13, 7), (13, 8), (14, 0), (14, 1)]
    assert sum(p.duration for p in start[1:]) < 0.641 <= sum(p.duration for p in start)


def test_asks_for_the_next_part_then_the_next_segment():
    playlist = parse_playlist(live_text())
    assert playlist.next_request((14, 1)) == (14, 2)  # the segment is still being written
    assert playlist.next_request((13, 4)) == (13, 5)
    assert playlist.next_request((13, 8)) == (14, 0)  # last part of a complete segment
    assert [p.key for p in playlist.parts_after((13, 7))] == [(13, 8), (14, 0), (14, 1)]
    assert playlist.parts_after((14, 1)) == []
    # Fell out of the window: everything listed is newer.
    assert len(playlist.parts_after((3, 0))) == len(playlist.parts)


def test_urls():
    path = "/hls/abc/index.m3u8"
    assert resolve(path, "r1/12.3.m4s") == "/hls/abc/r1/12.3.m4s"
    assert resolve("http://edge:8081/hls/abc/index.m3u8?x=1", "r1/init.mp4") == (
        "http://edge:8081/hls/abc/r1/init.mp4"
    )
    assert blocking_url(path, (14, 2)) == "/hls/abc/index.m3u8?_HLS_msn=14&_HLS_part=2"
    assert blocking_url(path + "?_HLS_msn=1&_HLS_part=0", (2, 0)).endswith(
        "?_HLS_msn=2&_HLS_part=0"
    )


def test_ended_and_no_date():
    text = "#EXTM3U\n#EXT-X-PART-INF:PART-TARGET=0.2\n#EXT-X-MEDIA-SEQUENCE:3\n"
    text += '#EXT-X-PART:DURATION=0.2,URI="a,b.m4s"\n#EXTINF:0.2,\n3.m4s\n#EXT-X-ENDLIST\n'
    playlist = parse_playlist(text)
    assert playlist.ended
    assert playlist.parts == [ListedPart(3, 0, "a,b.m4s", 0.2, None)]  # comma inside quotes
    assert playlist.part_hold_back == 0.0
    assert [p.key for p in playlist.start_parts()] == [(3, 0)]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "<html>busy</html>",
        "#EXTM3U\n#EXT-X-PART:DURATION=0.2\n",
        '#EXTM3U\n#EXT-X-PART:URI="a",DURATION=x\n',
        "#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:yesterday\n",
    ],
)
def test_refuses_what_is_not_a_playlist(text):
    with pytest.raises(PlaylistError):
        parse_playlist(text)


def part(index: int, start: float | None = None) -> ListedPart:
    return ListedPart(1, index, f"{index}.m4s", 0.2, start)


def test_player_clock_on_time_and_late():
    clock = PlayerClock()
    # Playback starts with the first part (at wall 100.0); part k is due at 100 + 0.2 k.
    assert clock.arrived(part(0, 50.0), 100.0) == 0.0
    assert clock.arrived(part(1, 50.2), 100.01) < 0  # buffered ahead
    assert clock.arrived(part(2, 50.4), 100.4) == pytest.approx(0.0)  # just in time
    assert clock.arrived(part(3, 50.6), 100.75) == pytest.approx(0.15)  # a stall
    # After the stall playback resumed with part 3 (at 100.75): part 4 is due at 100.95.
    assert clock.arrived(part(4, 50.8), 100.9) == pytest.approx(-0.05)
    assert clock.arrived(part(5, 51.0), 101.2) == pytest.approx(0.05)


def test_player_clock_without_dates_adds_durations():
    clock = PlayerClock()
    clock.arrived(part(0), 10.0)
    assert clock.arrived(part(1), 10.1) == pytest.approx(-0.1)
    assert clock.arrived(part(2), 10.5) == pytest.approx(0.1)
