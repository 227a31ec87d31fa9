"""Following LL-DASH as the page's dash.js does: causerie's own manifests and segments read
back, where each segment is and when it may be asked for, chunk times, when a chunk is late."""

from __future__ import annotations

import numpy as np
import pytest

from causerie.media import dash
from causerie.media.encoder import AacEncoder
from causerie.media.packager import Packager
from causerie.rehearse.manifest import (
    LIVE_DELAY,
    ManifestError,
    PlayerClock,
    box_header,
    moof_timing,
    parse_duration,
    parse_manifest,
)

T0 = 1_750_000_000.0  # wall time of the first sample
FRAME = 1024 / 48000
MPD_URL = "/dash/space/manifest.mpd"


@pytest.fixture(scope="module")
def packager() -> Packager:
    """Twelve seconds of a tone through the packager, at the wall times the pipeline gives."""
    t = np.arange(12 * 48000) / 48000
    pcm = np.rint(4000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    encoder = AacEncoder()
    packager = Packager(
        run_id="run1", first_msn=911_458_333, audio_specific_config=encoder.audio_specific_config
    )
    for frame in encoder.encode(pcm) + encoder.flush():
        packager.add(frame, T0 + frame.pts / 48000)
    return packager


def live_manifest(packager: Packager) -> tuple[str, dash.Timeline]:
    timeline = dash.Timeline.of(packager, 2)
    assert timeline is not None
    text = dash.render_mpd(packager, timeline)
    assert text is not None
    return text, timeline


def boxes(data: bytes) -> list[tuple[str, bytes]]:
    """The top-level boxes of `data`, as (type, payload)."""
    found, at = [], 0
    while at < len(data):
        size, kind, header = box_header(data[at : at + 16])
        found.append((kind, data[at + header : at + size]))
        at += size
    return found


def test_reads_the_live_manifest_as_the_node_writes_it(packager):
    text, timeline = live_manifest(packager)
    manifest = parse_manifest(text)
    assert manifest.run == "run1"
    assert manifest.period_start == pytest.approx(timeline.start_time, abs=1e-6)
    assert manifest.segment_seconds == pytest.approx(3.84)
    assert manifest.start_number == timeline.start_number
    assert manifest.update_period == 60
    assert manifest.period_duration is None and manifest.last_number() is None
    assert manifest.init_url(MPD_URL) == "/dash/space/run1/init.mp4"
    number = timeline.start_number + 1
    assert manifest.media_url(MPD_URL, number) == f"/dash/space/run1/{number}.m4s"
    # The node's clock, as dash.js resolves UTCTiming against the manifest's address.
    assert manifest.time_url == "../../time"
    # When a segment may be asked for: the node's own arithmetic, from the text alone.
    for n in range(timeline.start_number, timeline.start_number + 3):
        assert manifest.available_at(n) == pytest.approx(timeline.available_at(n), abs=0.0011)
        assert manifest.segment_at(manifest.segment_start(n) + 0.01) == n
        assert manifest.segment_at(manifest.segment_start(n) - 0.01) == max(
            n - 1, timeline.start_number
        )
    # Asked before the run began (a space just put on the air): its first segment, which
    # exists, never the one before it, which never will.
    assert manifest.segment_at(manifest.period_start - 5.0) == timeline.start_number


def test_chunks_carry_their_place_in_the_run(packager):
    text, timeline = live_manifest(packager)
    manifest = parse_manifest(text)
    number = timeline.start_number + 1
    chunks = dash.segment_chunks(packager, timeline, number)
    assert chunks is not None and chunks.complete
    moofs = [payload for kind, payload in boxes(b"".join(chunks.data)) if kind == "moof"]
    assert len(moofs) == 18  # one moof + mdat per 213 ms part
    starts = []
    for moof in moofs:
        decode_time, duration = moof_timing(moof)
        assert duration == 10 * 1024
        start, end = manifest.chunk_time(decode_time, duration)
        assert end - start == pytest.approx(10 * FRAME)
        starts.append(start)
    # The first chunk starts where the manifest says the segment does, the rest follow.
    assert starts[0] == pytest.approx(manifest.segment_start(number), abs=1e-6)
    assert np.diff(starts) == pytest.approx([10 * FRAME] * 17)


def test_the_final_manifest_says_where_it_ends():
    t = np.zeros(9 * 48000, dtype=np.int16)
    encoder = AacEncoder()
    packager = Packager(
        run_id="run2", first_msn=911_458_333, audio_specific_config=encoder.audio_specific_config
    )
    for frame in encoder.encode(t) + encoder.flush():
        packager.add(frame, T0 + frame.pts / 48000)
    packager.end()
    text, timeline = live_manifest(packager)
    manifest = parse_manifest(text)
    assert manifest.update_period is None
    assert manifest.period_duration == pytest.approx(packager.samples / 48000, abs=1e-3)
    last = manifest.last_number()
    assert last == timeline.number_of(packager.last_part()[0])
    assert dash.segment_chunks(packager, timeline, last) is not None


def test_a_chunk_is_late_when_the_player_needs_it_before_it_arrives():
    asked = 1000.0
    clock = PlayerClock(asked - LIVE_DELAY)
    # The segment in progress: what was made already comes at once (older than where playing
    # starts, or the start itself), then a chunk every 0.2 s as it is made.
    assert clock.arrived(998.0, 998.2, asked + 0.05) == 0.0  # before the start: not played
    assert clock.arrived(999.0, 999.2, asked + 0.05) == 0.0  # playing starts in it, at 999.1
    assert clock.arrived(999.2, 999.4, asked + 0.10) < 0
    assert clock.arrived(999.4, 999.6, asked + 0.25) < 0
    # Needed at asked + 0.05 + (999.8 - 999.1) = asked + 0.75: it came 0.25 s late (a stall)...
    assert clock.arrived(999.8, 1000.0, asked + 1.0) == pytest.approx(0.25)
    # ... and the player resumed from it: the next one is judged from there.
    assert clock.arrived(1000.0, 1000.2, asked + 1.1) == pytest.approx(-0.1)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT3.84S", 3.84), ("PT60S", 60), ("PT1M30S", 90), ("P1DT1H", 90000), ("PT0S", 0)],
)
def test_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "3.84", "PT", "P", "PTxS", "P1Y"])
def test_bad_durations(text):
    with pytest.raises(ManifestError):
        parse_duration(text)


@pytest.mark.parametrize(
    "text",
    [
        "not xml <",
        "<html/>",
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"/>',
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011" availabilityStartTime="1970-01-01T00:00:00Z">'
        '<Period id="r" start="PT0S"><AdaptationSet><SegmentTemplate media="r/seg.m4s" '
        'duration="1"/></AdaptationSet></Period></MPD>',
    ],
)
def test_what_is_not_a_live_manifest_it_follows(text):
    with pytest.raises(ManifestError):
        parse_manifest(text)
