"""LL-DASH over the packager: manifests parsed by mpegdash, segments decoded by PyAV, and the
manifest's availability arithmetic checked against when the packager really made each chunk."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
from datetime import datetime
from fractions import Fraction

import numpy as np
import pytest
from mpegdash.parser import MPEGDASHParser

from causerie.media import dash
from causerie.media.encoder import AacEncoder, EncodedFrame
from causerie.media.packager import Packager

T0 = 1_750_000_000.0  # wall time of input sample 0
FIRST_MSN = 911_458_333  # first_msn_at(T0, 1.92): odd, so DASH numbers do not start at 2n
FRAME = 1024 / 48000
PART = 10 * FRAME
NS = "{urn:mpeg:dash:schema:mpd:2011}"


@pytest.fixture(scope="module")
def frames() -> list[EncodedFrame]:
    """25 s of a tone sweeping 300 -> 3000 Hz, encoded once for the whole module."""
    t = np.arange(25 * 48000) / 48000
    phase = 2 * np.pi * (300 * t + (2700 / 50) * t**2)
    pcm = np.rint(6000 * np.sin(phase)).astype(np.int16)
    encoder = AacEncoder()
    return encoder.encode(pcm) + encoder.flush()


def packager_fed(frames: list[EncodedFrame], seconds: float, **options) -> tuple[Packager, dict]:
    """A packager fed ``seconds`` of frames at the wall times the pipeline gives them; also
    when each part was made: the wall time its last sample ends (the earliest it can exist)."""
    packager = Packager(
        run_id="run1",
        first_msn=FIRST_MSN,
        audio_specific_config=AacEncoder().audio_specific_config,
        **options,
    )
    made: dict[tuple[int, int], float] = {}
    for frame in frames:
        if frame.pts >= seconds * 48000:
            break
        wall_time = T0 + frame.pts / 48000
        for ref in packager.add(frame, wall_time):
            made[(ref.msn, ref.index)] = wall_time + FRAME
    return packager, made


def seconds_of(duration: str) -> float:
    """An xs:duration of the form the manifest uses (PTnS)."""
    match = re.fullmatch(r"PT([0-9]+(?:\.[0-9]+)?)S", duration)
    assert match, duration
    return float(match[1])


def unix_of(date_time: str) -> float:
    return datetime.fromisoformat(date_time.replace("Z", "+00:00")).timestamp()


def mpd_of(packager: Packager, hls_segments: int = 2):
    timeline = dash.Timeline.of(packager, hls_segments)
    assert timeline is not None
    text = dash.render_mpd(packager, timeline)
    assert text is not None
    return text, MPEGDASHParser.parse(text), ET.fromstring(text), timeline


def test_live_manifest_parses_as_low_latency_dash(frames):
    packager, _ = packager_fed(frames, 6.0)
    text, mpd, root, _ = mpd_of(packager)
    assert text.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert mpd.type == "dynamic"
    assert mpd.profiles == "urn:mpeg:dash:profile:isoff-live:2011"
    assert mpd.availability_start_time == "1970-01-01T00:00:00Z"
    assert unix_of(mpd.publish_time) == pytest.approx(T0 - FRAME, abs=0.001)
    # Long: the manifest only changes when the run changes or the space ends.
    assert seconds_of(mpd.minimum_update_period) >= 30
    assert seconds_of(mpd.suggested_presentation_delay) == 1.0
    assert seconds_of(mpd.max_segment_duration) == 3.84
    # Players may only reach back as far as the packager holds segments (6 + 2 HLS segments,
    # the first of a DASH segment's two goes first).
    assert 3.84 <= seconds_of(mpd.time_shift_buffer_depth) <= 7 * 1.92
    assert seconds_of(mpd.min_buffer_time) > 0

    (period,) = mpd.periods
    assert period.id == "run1"
    assert seconds_of(period.start) == pytest.approx(T0 - FRAME, abs=1e-6)
    (adaptation,) = period.adaptation_sets
    assert adaptation.mime_type == "audio/mp4"
    assert adaptation.codecs == "mp4a.40.2"
    assert adaptation.content_type == "audio"
    (template,) = adaptation.segment_templates
    assert template.timescale == 48000
    assert template.duration == 184320  # 3.84 s: 18 chunks of 10 AAC frames
    assert template.start_number == FIRST_MSN // 2
    assert template.initialization == "run1/init.mp4"
    assert template.media == "run1/$Number$.m4s"
    # A segment may be asked for once its first chunk is due: D - chunk, rounded down.
    assert template.availability_time_offset == pytest.approx(3.84 - PART, abs=0.001)
    assert template.availability_time_offset <= 3.84 - PART
    (representation,) = adaptation.representations
    assert representation.id == "audio" and representation.bandwidth >= 64000
    (timing,) = mpd.utc_timings
    assert timing.scheme_id_uri == "urn:mpeg:dash:utc:http-iso:2014"
    assert timing.value == "../../time"  # /time, relative to /dash/{space}/manifest.mpd

    # What mpegdash does not read (or reads wrong: it takes any boolean text as true).
    element = root.find(f"{NS}Period/{NS}AdaptationSet/{NS}SegmentTemplate")
    assert element.get("availabilityTimeComplete") == "false"
    assert root.find(f"{NS}Period").get("duration") is None  # open-ended while live
    service = root.find(f"{NS}ServiceDescription")
    assert service.get("schemeIdUri") is None  # applied by every client (dash.js: only so)
    assert service.find(f"{NS}Latency").get("target") == "1000"
    rates = service.find(f"{NS}PlaybackRate")
    assert float(rates.get("min")) < 1 < float(rates.get("max"))
    # Schema order (23009-1 MPDtype): ServiceDescription, Period, UTCTiming.
    tags = [child.tag.removeprefix(NS) for child in root]
    assert tags == ["ServiceDescription", "Period", "UTCTiming"]


def test_the_manifest_does_not_change_while_the_run_goes_on(frames):
    early, _ = packager_fed(frames, 3.0)
    late, _ = packager_fed(frames, 20.0)
    assert mpd_of(early)[0] == mpd_of(late)[0]


def test_availability_matches_when_the_packager_made_each_chunk(frames):
    packager, made = packager_fed(frames, 20.0)
    _, mpd, _, timeline = mpd_of(packager)
    (period,) = mpd.periods
    (template,) = period.adaptation_sets[0].segment_templates
    ast = unix_of(mpd.availability_start_time)
    period_start = seconds_of(period.start)
    duration = template.duration / template.timescale
    offset = template.availability_time_offset
    first_number = template.start_number
    last_msn = packager.last_part()[0]
    numbers = range(first_number, timeline.number_of(last_msn))  # complete DASH segments
    assert len(numbers) >= 4
    for number in numbers:
        i = number - template.start_number
        # 23009-1 §5.3.9.5.3, from the manifest's text alone.
        start = ast + period_start + i * duration
        available = start + duration - offset
        msns = timeline.msns(number)
        first_chunk = made[(msns[0], 0)]
        last_chunk = made[(msns[-1], 8)]
        # Its first chunk exists when a player may ask (to within the millisecond rounding
        # of the offset) and the segment is complete one segment duration after its start.
        assert first_chunk == pytest.approx(available, abs=0.0011)
        assert first_chunk <= available + 1e-6
        assert last_chunk == pytest.approx(start + duration, abs=1e-6)
        assert timeline.available_at(number) == pytest.approx(first_chunk, abs=1e-6)
        assert timeline.number_at(first_chunk + 1e-6) == number
        assert timeline.number_at(first_chunk - 1e-3) == number - 1
        # Every chunk is made one chunk duration after the previous one.
        times = [made[timeline.chunk_position(number, c)] for c in range(18)]
        assert np.diff(times) == pytest.approx([PART] * 17, abs=1e-6)


def test_segments_are_two_hls_segments_that_decode(frames, decode_mp4, probe):
    packager, _ = packager_fed(frames, 12.0)
    timeline = dash.Timeline.of(packager, 2)
    number = timeline.start_number + 1
    chunks = dash.segment_chunks(packager, timeline, number)
    assert chunks is not None and chunks.complete and len(chunks.data) == 18
    first, second = timeline.msns(number)
    assert (first, second) == (FIRST_MSN + 2, FIRST_MSN + 3)
    data = b"".join(chunks.data)
    assert data == packager.segment(first) + packager.segment(second)
    samples, decoded = decode_mp4(packager.init + data)
    assert samples.size == 184320
    # Decode time: the segment's place in the run (i x D), as the manifest says.
    assert decoded[0].pts == (number - timeline.start_number) * 184320
    report = probe(packager.init + data)
    assert report["streams"][0]["codec_name"] == "aac"


def test_segments_in_progress_expired_and_not_begun(frames):
    packager, _ = packager_fed(frames, 24.0)  # 12 HLS segments and a half
    timeline = dash.Timeline.of(packager, 2)
    last_msn, last_index = packager.last_part()
    current = timeline.number_of(last_msn)
    progress = dash.segment_chunks(packager, timeline, current)
    assert progress is not None and not progress.complete
    held = (last_msn - timeline.msns(current)[0]) * 9 + last_index + 1
    assert len(progress.data) == held
    assert list(progress.data) == [
        packager.part(*timeline.chunk_position(current, c)) for c in range(held)
    ]
    assert dash.segment_chunks(packager, timeline, current + 1) is None  # not begun
    assert dash.segment_chunks(packager, timeline, timeline.start_number) is None  # expired
    assert dash.segment_chunks(packager, timeline, timeline.start_number - 1) is None
    assert dash.segment_chunks(packager, timeline, 10**12) is None


def test_first_half_complete_second_not_begun(frames):
    # The moment between an HLS segment's last part and the next segment's first.
    packager, _ = packager_fed(frames, 1.92 - FRAME * 0.5)
    assert packager.last_part() == (FIRST_MSN, 8)
    timeline = dash.Timeline.of(packager, 2)
    chunks = dash.segment_chunks(packager, timeline, timeline.start_number)
    assert chunks is not None and not chunks.complete and len(chunks.data) == 9


def test_the_final_manifest_keeps_the_timeline_and_ends_the_period(frames):
    live, _ = packager_fed(frames, 20.5)
    live_text = mpd_of(live)[0]
    packager, _ = packager_fed(frames, 20.5)
    packager.end()
    text, mpd, root, timeline = mpd_of(packager)
    # 23009-1 §5.4: no minimumUpdatePeriod, the Period's duration known: the presentation is
    # complete. Same Period, same start, same numbers: a player carries on to the end.
    assert mpd.type == "dynamic"
    assert mpd.minimum_update_period is None
    assert mpd.availability_start_time == "1970-01-01T00:00:00Z"
    (period,) = mpd.periods
    assert period.id == "run1"
    assert period.start == MPEGDASHParser.parse(live_text).periods[0].start
    assert seconds_of(period.duration) == pytest.approx(packager.samples / 48000, abs=1e-6)
    assert unix_of(mpd.publish_time) == pytest.approx(
        T0 - FRAME + packager.samples / 48000, abs=0.001
    )
    assert unix_of(mpd.publish_time) > unix_of(MPEGDASHParser.parse(live_text).publish_time)
    template = period.adaptation_sets[0].segment_templates[0]
    assert template.start_number == timeline.start_number
    assert root.find(f"{NS}UTCTiming") is not None
    # Rendering it again gives the same bytes (the manifest is cached as one object).
    assert dash.render_mpd(packager, timeline) == text


def parse_emsg(data: bytes) -> tuple[dict, bytes]:
    """An emsg box (version 1, 23009-1 §5.10.3.3) at the start of `data`; the rest."""
    size, kind, version = struct.unpack(">I4sB", data[:9])
    assert kind == b"emsg" and version == 1
    timescale, presentation_time, duration, event_id = struct.unpack(">IQII", data[12:32])
    scheme, value, message = data[32:size].split(b"\0", 2)
    fields = dict(
        timescale=timescale,
        presentation_time=presentation_time,
        duration=duration,
        id=event_id,
        scheme=scheme.decode(),
        value=value.decode(),
        message=message.decode(),
    )
    return fields, data[size:]


def test_the_last_chunk_tells_players_to_reload_the_manifest(frames, decode_mp4):
    packager, _ = packager_fed(frames, 9.0)
    packager.end()
    _, mpd, root, timeline = mpd_of(packager)
    stream = root.find(f"{NS}Period/{NS}AdaptationSet/{NS}InbandEventStream")
    assert stream.get("schemeIdUri") == "urn:mpeg:dash:event:2012"
    assert stream.get("value") == "1"
    last = timeline.number_of(packager.last_part()[0])
    for number in range(timeline.start_number, last):
        chunks = dash.segment_chunks(packager, timeline, number)
        assert all(chunk[4:8] == b"moof" for chunk in chunks.data)
    final = dash.segment_chunks(packager, timeline, last)
    assert final.complete
    assert all(chunk[4:8] == b"moof" for chunk in final.data[:-1])
    event, rest = parse_emsg(final.data[-1])
    msn, index = packager.last_part()
    assert rest == packager.part(msn, index)  # the chunk itself follows, unchanged
    start = (last - timeline.start_number) * 184320
    final_chunk = start + (len(final.data) - 1) * 10240
    assert event == {
        "timescale": 48000,
        "presentation_time": final_chunk,  # the manifest expires with this chunk ...
        "duration": packager.samples - final_chunk,  # ... which is where the run ends
        "id": 1,
        "scheme": "urn:mpeg:dash:event:2012",
        "value": "1",
        "message": mpd.publish_time,  # the final manifest's
    }
    # Decoders skip the event box.
    samples, _ = decode_mp4(packager.init + b"".join(final.data))
    assert samples.size == packager.samples - start
    assert dash.segment_chunks(packager, timeline, last + 1) is None


def test_the_short_final_segment_is_complete(frames, decode_mp4):
    packager, _ = packager_fed(frames, 2.5)
    packager.end()
    timeline = dash.Timeline.of(packager, 2)
    chunks = dash.segment_chunks(packager, timeline, timeline.start_number)
    assert chunks.complete
    samples, _ = decode_mp4(packager.init + b"".join(chunks.data))
    assert samples.size == packager.samples


def test_one_hls_segment_per_dash_segment(frames):
    packager, _ = packager_fed(frames, 6.0)
    _, mpd, _, timeline = mpd_of(packager, hls_segments=1)
    template = mpd.periods[0].adaptation_sets[0].segment_templates[0]
    assert template.duration == 92160
    assert template.start_number == FIRST_MSN
    assert template.availability_time_offset == pytest.approx(1.92 - PART, abs=0.001)
    assert seconds_of(mpd.max_segment_duration) == 1.92
    assert timeline.msns(FIRST_MSN + 1) == range(FIRST_MSN + 1, FIRST_MSN + 2)


def test_no_timeline_before_the_first_frame():
    packager = Packager(run_id="r", first_msn=0, audio_specific_config=b"\x11\x88")
    assert dash.Timeline.of(packager, 2) is None
    with pytest.raises(ValueError, match="hls_segments"):
        dash.Timeline.of(packager, 0)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Fraction(96, 25), "PT3.84S"),
        (Fraction(1), "PT1S"),
        (60.0, "PT60S"),
        (Fraction(1, 3), "PT0.333333S"),
        (1_749_999_999.978667, "PT1749999999.978667S"),
    ],
)
def test_format_duration(value, text):
    assert dash.format_duration(value) == text


def test_format_time():
    assert dash.format_time(1_796_658_937.6959) == "2026-12-07T15:55:37.695Z"
    assert dash.format_time(0) == "1970-01-01T00:00:00.000Z"
