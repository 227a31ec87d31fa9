"""The live pipeline in real time: parts at wall-clock rate, blocking waits, clean stop."""

from __future__ import annotations

import asyncio
import itertools
import logging
import re
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import m3u8
import pytest

from causerie.media.mixer import Mixer
from causerie.media.pipeline import LivePipeline

PART_SECONDS = 10 * 1024 / 48000


@asynccontextmanager
async def running(tone, **options) -> AsyncIterator[tuple[LivePipeline, dict]]:
    """A started pipeline with one speaker sending a tone in 20 ms packets, and what it saw.

    ``seen["parts"]`` maps (msn, index) to (monotonic, wall) times of the part becoming ready.
    """
    mixer = Mixer()
    speaker = mixer.add_input("speaker")
    pipeline = LivePipeline("space-1", mixer=mixer, **options)
    seen: dict = {"parts": {}, "mixes": 0}

    def on_part(ref) -> None:
        seen["parts"][(ref.msn, ref.index)] = (time.monotonic(), time.time())

    def on_mix(result) -> None:
        seen["mixes"] += 1

    pipeline.on_part = on_part
    pipeline.on_mix = on_mix
    voice = tone(440, 0.02)

    async def speak() -> None:
        while True:
            speaker.push(voice)
            await asyncio.sleep(0.02)

    speaking = asyncio.create_task(speak())
    pipeline.start()
    try:
        yield pipeline, seen
    finally:
        speaking.cancel()
        await pipeline.stop()


def next_part(msn: int, index: int) -> tuple[int, int]:
    return (msn + 1, 0) if index == 8 else (msn, index + 1)


async def test_parts_arrive_at_wall_clock_rate_and_wake_waiters(tone, caplog):
    caplog.set_level(logging.WARNING)
    async with running(tone) as (pipeline, seen):
        packager = pipeline.packager
        started = time.monotonic()
        want = (packager.first_msn, 0)
        wake_delays = []
        while time.monotonic() - started < 1.5:
            assert await pipeline.wait_for(*want, timeout=1.0)
            woke = time.monotonic()
            wake_delays.append(woke - seen["parts"][want][0])
            want = next_part(*want)

        # A part that is far off: the wait times out.
        before = time.monotonic()
        assert not await pipeline.wait_for(want[0] + 1, None, timeout=0.1)
        assert 0.1 <= time.monotonic() - before < 0.2
        stopping = time.time()  # the parts flushed by stop() are made early, on purpose

    # Parts at wall-clock rate: one per 213.3 ms (4.69 per second).
    ready = sorted(monotonic for monotonic, _ in seen["parts"].values())
    rate = (len(ready) - 1) / (ready[-1] - ready[0])
    assert len(ready) >= 7
    assert rate == pytest.approx(1 / PART_SECONDS, rel=0.1)
    # Every waiter woke as soon as its part was there.
    assert max(wake_delays) < 0.05

    # Latency from the end of a part's audio (its program date time plus duration) to the part
    # being ready: the AAC encoder's two frames of look-ahead (42.7 ms) plus up to one 20 ms tick.
    playlist = m3u8.loads(pipeline.packager.playlist())
    assert playlist.is_endlist
    latencies = []
    for segment in playlist.segments:
        for part in segment.parts:
            msn, index = (int(n) for n in part.uri.split("/")[1].split(".")[:2])
            ready_wall = seen["parts"][(msn, index)][1]
            if ready_wall < stopping:
                audio_end = part.program_date_time.timestamp() + part.duration
                latencies.append(ready_wall - audio_end)
    assert len(latencies) >= 7
    assert all(0.03 < latency < 0.15 for latency in latencies), latencies
    # What /metrics says of it (media/timing.py): every part on time, every tick counted.
    timing = pipeline.timing
    assert timing.parts >= len(latencies) and timing.parts_late == 0
    assert timing.ticks == sum(timing.lateness_counts) >= seen["mixes"] - 1
    print(f"part ready after its audio ends: median {statistics.median(latencies) * 1000:.0f} ms")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_many_waiters_share_one_wake_up(tone):
    async with running(tone) as (pipeline, seen):
        msn = pipeline.packager.first_msn
        assert await pipeline.wait_for(msn, 0, timeout=1.0)
        tasks_before = len(asyncio.all_tasks())
        # Like 3000 HTTP requests, each in its own task, blocked on the same next part.
        waiters = [asyncio.create_task(pipeline.wait_for(msn, 1, timeout=5.0)) for _ in range(3000)]
        await asyncio.sleep(0.01)
        assert not any(w.done() for w in waiters)
        # Waiting starts no task of its own (no per-waiter timer task or poller).
        assert len(asyncio.all_tasks()) == tasks_before + 3000
        results = await asyncio.gather(*waiters)
        done = time.monotonic()
        assert all(results)
        wake_all = done - seen["parts"][(msn, 1)][0]
        print(f"3000 waiters woken in {wake_all * 1000:.0f} ms")
        assert wake_all < 0.25


async def test_stop_ends_the_stream_quietly(tone, caplog):
    caplog.set_level(logging.DEBUG, logger="causerie")
    async with running(tone) as (pipeline, _):
        await asyncio.sleep(0.3)
    await pipeline.stop()  # twice is harmless
    assert pipeline.exited.is_set()
    assert pipeline.packager.ended
    text = pipeline.packager.playlist()
    assert text.rstrip().endswith("#EXT-X-ENDLIST")
    assert "PRELOAD-HINT" not in text
    # The stream ended: blocking requests are answered at once (section 6.2.5.2).
    assert await pipeline.wait_for(pipeline.packager.first_msn + 1000, 3, timeout=5.0)
    assert not caplog.records


async def test_stop_before_start():
    pipeline = LivePipeline("space-2", mixer=Mixer())
    await pipeline.stop()
    assert pipeline.packager.ended
    with pytest.raises(RuntimeError, match="already started"):
        pipeline.start()


async def test_a_late_loop_catches_up(tone):
    async with running(tone) as (pipeline, seen):
        started = time.monotonic()
        await asyncio.sleep(0.2)
        time.sleep(0.3)  # the event loop is blocked: the media loop is 300 ms late
        await asyncio.sleep(0.2)
        elapsed = time.monotonic() - started
        mixes = seen["mixes"]
    # No frame lost: as many mixes as 20 ms periods since the start.
    assert mixes == pytest.approx(elapsed / 0.02, abs=3)
    # The stall shows in the metrics: a tick over one part (213 ms) late, and a late part (its
    # audio ended during the stall, more than a part before it could be made).
    timing = pipeline.timing
    over_a_part = sum(timing.lateness_counts[timing.bounds.index(0.2133) + 1 :])
    assert over_a_part >= 1
    assert timing.parts_late >= 1
    assert timing.frames_skipped == 0


async def test_a_hopelessly_late_loop_fills_the_gap_with_silence(tone, caplog):
    # Short segments (2 parts, 427 ms) so that a few complete after the stall.
    async with running(tone, parts_per_segment=2, window_segments=8) as (pipeline, seen):
        started = time.monotonic()
        await asyncio.sleep(0.3)
        time.sleep(1.3)  # blocked for longer than the catch-up limit
        stall_ended = time.time()
        await asyncio.sleep(1.0)
        elapsed = time.monotonic() - started
        mixes = seen["mixes"]
    assert re.search(r"media loop \d\.\d s late, \d+ frames of silence instead", caplog.text)
    assert pipeline.silent_frames * 0.02 >= 1.0
    # No time lost: every 20 ms since the start is a mixed frame or a silent one.
    assert mixes + pipeline.silent_frames == pytest.approx(elapsed / 0.02, abs=3)
    assert pipeline.timing.frames_skipped == pipeline.silent_frames

    playlist = m3u8.loads(pipeline.packager.playlist())
    segments = playlist.segments
    # Media time is wall time, stall or not: each segment's date is the previous one's plus
    # its duration (a DASH player places segments by that arithmetic alone).
    for before, after in itertools.pairwise(segments):
        gap = (after.program_date_time - before.program_date_time).total_seconds()
        assert gap == pytest.approx(before.duration, abs=0.002)
    # Parts of audio after the stall are ready shortly after their audio ends, as before it.
    after_stall = 0
    for segment in segments:
        for part in segment.parts:
            audio_end = part.program_date_time.timestamp() + part.duration
            if audio_end < stall_ended + 0.1:
                continue
            msn, index = (int(n) for n in part.uri.split("/")[1].split(".")[:2])
            ready_wall = seen["parts"][(msn, index)][1]
            assert 0.0 < ready_wall - audio_end < 0.15
            after_stall += 1
    assert after_stall >= 3


async def test_program_audio_comes_with_its_program_time_stall_or_not(tone, caplog):
    """What captions are fed: every frame of the program, silence put in after a stall
    included, each with the wall time of its first sample on the playlist's clock."""
    program: list[tuple[float, int]] = []
    async with running(tone, parts_per_segment=2, window_segments=8) as (pipeline, _):
        pipeline.on_program = lambda samples, at: program.append((at, len(samples)))
        await asyncio.sleep(0.3)
        time.sleep(1.3)  # a stall: the missed time comes as one block of silence
        await asyncio.sleep(0.5)
        pipeline.on_program = None
    assert any(n > 960 for _, n in program), "the silence after the stall"
    for (at, n), (following, _) in itertools.pairwise(program):
        assert following == pytest.approx(at + n / 48000, abs=1e-6)  # contiguous
    # On the clock of EXT-X-PROGRAM-DATE-TIME: segments start on AAC frames (1024 samples),
    # so every segment's date, counted in samples from the first program frame seen, has the
    # same remainder modulo 1024 (to the millisecond the playlist writes dates with).
    playlist = m3u8.loads(pipeline.packager.playlist())
    first, last = program[0][0], program[-1][0]
    offsets = [
        (s.program_date_time.timestamp() - first) * 48000
        for s in playlist.segments
        if first <= s.program_date_time.timestamp() <= last
    ]
    assert len(offsets) >= 3
    remainders = [offset % 1024 for offset in offsets]
    spread = max(min(abs(r - q), 1024 - abs(r - q)) for r in remainders for q in remainders)
    assert spread <= 96, remainders  # two milliseconds of rounding


async def test_what_before_mix_feeds_is_in_the_same_mix(tone):
    """A speaker's frame decoded just before a tick is mixed in that tick, not the next."""
    mixer = Mixer()
    speaker = mixer.add_input("speaker")
    pipeline = LivePipeline("space-1", mixer=mixer)
    events: list[str] = []

    def before_mix() -> None:
        events.append("fed")
        speaker.push(tone(440, 0.02))

    def on_mix(result) -> None:
        events.append("heard" if "speaker" in result.talkers else "silent")

    pipeline.before_mix = before_mix
    pipeline.on_mix = on_mix
    pipeline.start()
    try:
        deadline = time.monotonic() + 10
        while len(events) < 20 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        await pipeline.stop()
    assert len(events) >= 20
    assert events[:20] == ["fed", "heard"] * 10
