"""The mixer: program and mix-minus sums, limiting, muting, bounded queues, levels."""

from __future__ import annotations

import numpy as np
import pytest

from causerie.media.mixer import Limiter, Mixer

FRAME = 960


def mix_seconds(mixer: Mixer, feeds: dict[str, np.ndarray], seconds: float) -> dict:
    """Push ``feeds`` frame by frame, as a live source would, and collect the mixed output."""
    inputs = mixer.inputs
    program, minus = [], {key: [] for key in inputs}
    for i in range(round(seconds * 48000 / FRAME)):
        for input_id, pcm in feeds.items():
            inputs[input_id].push(pcm[i * FRAME : (i + 1) * FRAME])
        result = mixer.mix()
        program.append(result.program)
        for key, pcm in result.minus.items():
            minus[key].append(pcm)
    return {
        "program": np.concatenate(program),
        "minus": {key: np.concatenate(chunks) for key, chunks in minus.items()},
    }


def test_no_inputs_gives_silence():
    result = Mixer().mix()
    assert result.program.dtype == np.int16
    assert result.program.shape == (FRAME,)
    assert not result.program.any()
    assert result.minus == {}


def test_single_voice_below_threshold_passes_unchanged(tone):
    mixer = Mixer()
    mixer.add_input("a")
    voice = tone(220, 1.0, dbfs=-4.0) + tone(3100, 1.0, dbfs=-14.0)  # peaks near -1.6 dBFS
    out = mix_seconds(mixer, {"a": voice}, 1.0)
    assert np.array_equal(out["program"], voice)
    assert mixer.program_gain == 1.0
    # Alone in the space, the speaker's mix-minus is silence.
    assert not out["minus"]["a"].any()


def test_two_loud_inputs_never_clip(tone):
    mixer = Mixer()
    mixer.add_input("a")
    mixer.add_input("b")
    a, b = tone(440, 1.0, dbfs=-1.5), tone(660, 1.0, dbfs=-1.5)
    naive = a.astype(np.int32) + b.astype(np.int32)
    assert np.abs(naive).max() > 50000  # the plain sum would clip hard

    out = mix_seconds(mixer, {"a": a, "b": b}, 1.0)
    program = out["program"].astype(np.int32)
    threshold = 32768 * 10 ** (-1 / 20)
    assert np.abs(program).max() <= threshold + 1  # the limiter's ceiling, never 32767
    assert np.abs(program).max() > threshold - 200  # and it does reach it: engaged, not muted
    assert mixer.program_gain < 0.8
    # Limited, not wrapped around: wherever the sum is loud, the output has its sign.
    loud = np.abs(naive) > 20000
    assert np.all(np.sign(program[loud]) == np.sign(naive[loud]))
    # Each mix-minus holds a single input below the threshold: untouched.
    assert np.array_equal(out["minus"]["a"], b)
    assert np.array_equal(out["minus"]["b"], a)


def test_limiter_releases_smoothly_and_returns_to_unity(tone):
    limiter = Limiter(sample_rate=48000)
    loud = tone(300, 0.2, dbfs=0.0).astype(np.float32) * 2 / 32768  # +6 dBFS
    limiter.process(loud)
    assert limiter.gain < 0.6
    gains = []
    quiet = tone(300, 3.0, dbfs=-20.0).astype(np.float32) / 32768
    for i in range(0, quiet.size, FRAME):
        limiter.process(quiet[i : i + FRAME])
        gains.append(limiter.gain)
    # Release: the gain only rises, a little per frame (no jumps), and gets back to exactly 1.
    steps = np.diff(gains)
    assert np.all(steps >= 0)
    assert steps.max() < 0.06
    assert gains[5] < 0.9  # 100 ms later still recovering: smooth, not an instant snap back
    assert gains[-1] == 1.0


def test_limiter_never_exceeds_threshold_on_noise():
    limiter = Limiter(sample_rate=48000, threshold_dbfs=-1.0)
    rng = np.random.default_rng(7)
    for _ in range(50):
        block = rng.normal(0, rng.uniform(0.05, 1.5), FRAME).astype(np.float32)
        out = limiter.process(block)
        assert np.abs(out).max() <= limiter.threshold * (1 + 1e-6)


def test_mix_minus_excludes_own_input(tone, spectrum):
    mixer = Mixer()
    for input_id in "abc":
        mixer.add_input(input_id)
    feeds = {"a": tone(440, 1.0), "b": tone(1000, 1.0), "c": tone(2500, 1.0)}
    out = mix_seconds(mixer, feeds, 1.0)

    level = spectrum(feeds["a"], 440)
    assert level == pytest.approx(10 ** (-12 / 20), rel=0.05)
    for frequency in (440, 1000, 2500):
        assert spectrum(out["program"], frequency) == pytest.approx(level, rel=0.05)
    for own, frequency in (("a", 440), ("b", 1000), ("c", 2500)):
        minus = out["minus"][own]
        assert spectrum(minus, frequency) < level / 1000  # own voice: absent (< -60 dB)
        for other, other_frequency in (("a", 440), ("b", 1000), ("c", 2500)):
            if other != own:
                assert spectrum(minus, other_frequency) == pytest.approx(level, rel=0.05)


def test_muted_input_leaves_the_mix_on_the_next_frame(tone):
    mixer = Mixer()
    a = mixer.add_input("a")
    mixer.add_input("b")
    voice = tone(440, 0.2)
    a.push(voice)
    first = mixer.mix()
    assert np.array_equal(first.program, voice[:FRAME])
    assert np.array_equal(first.minus["b"], voice[:FRAME])

    a.muted = True
    queued = a.queued_samples
    second = mixer.mix()
    assert not second.program.any()
    assert not second.minus["b"].any()
    assert a.queued_samples == queued - FRAME  # still drained: no stale audio on unmute

    a.muted = False
    third = mixer.mix()
    assert np.array_equal(third.program, voice[2 * FRAME : 3 * FRAME])


def test_underrun_gives_silence(tone):
    mixer = Mixer()
    a = mixer.add_input("a")
    voice = tone(440, 0.01)  # 480 samples: half a frame
    a.push(voice)
    result = mixer.mix()
    assert np.array_equal(result.program[:480], voice)
    assert not result.program[480:].any()
    assert not mixer.mix().program.any()
    assert a.underruns == 2


def test_overrun_drops_the_oldest_audio():
    mixer = Mixer()
    a = mixer.add_input("a")
    ramp = (np.arange(48000) % 30000).astype(np.int16)  # 1 s of distinguishable samples
    for i in range(0, ramp.size, FRAME):
        a.push(ramp[i : i + FRAME])
    # Bounded at 200 ms: the speaker's delay never grows past it.
    assert a.queued_samples == 9600
    assert a.dropped_samples == 48000 - 9600
    result = mixer.mix()
    assert np.array_equal(result.program, ramp[48000 - 9600 : 48000 - 9600 + FRAME])


def test_removed_input_leaves_the_mix(tone):
    mixer = Mixer()
    a = mixer.add_input("a")
    mixer.add_input("b")
    mixer.remove_input("a")
    mixer.remove_input("a")  # twice is harmless
    a.push(tone(440, 0.02))
    result = mixer.mix()
    assert not result.program.any()
    assert set(result.minus) == {"b"}
    with pytest.raises(ValueError, match="already exists"):
        mixer.add_input("b")


def test_levels_and_active_speaker(tone):
    mixer = Mixer()
    a = mixer.add_input("a")
    mixer.mix()
    assert a.level == -100.0
    assert not a.active

    voice = tone(440, 0.5, dbfs=-20.0)  # a sine's RMS is 3 dB under its peak
    for i in range(0, voice.size, FRAME):
        a.push(voice[i : i + FRAME])
        mixer.mix()
    assert a.level == pytest.approx(-23.0, abs=0.5)
    assert a.active

    a.muted = True
    assert not a.active  # a muted speaker is never shown as talking
    a.muted = False

    # Silence: the indicator holds for the hang time (0.5 s), then drops.
    for _ in range(10):
        mixer.mix()
    assert a.active
    for _ in range(30):
        mixer.mix()
    assert not a.active
    assert a.level < -50  # and the level meter falls with the voice


def test_push_rejects_anything_but_mono_int16():
    a = Mixer().add_input("a")
    with pytest.raises(ValueError, match="int16"):
        a.push(np.zeros(960, dtype=np.float32))
    with pytest.raises(ValueError, match="int16"):
        a.push(np.zeros((2, 960), dtype=np.int16))


def noise(seconds: float, dbfs: float, seed: int = 0) -> np.ndarray:
    """White noise at ``dbfs`` RMS: the idle floor of a microphone."""
    rms = 32768 * 10 ** (dbfs / 20)
    samples = np.random.default_rng(seed).normal(0, rms, round(seconds * 48000))
    return np.rint(samples).astype(np.int16)


def ten_speakers(tone, talking: int) -> tuple[Mixer, dict[str, np.ndarray]]:
    """Ten inputs: the first ``talking`` with tones at -12 dBFS, the others at -70 dBFS."""
    mixer = Mixer()
    feeds = {}
    for n in range(10):
        mixer.add_input(f"s{n}")
        feeds[f"s{n}"] = tone(300 + 100 * n, 1.0) if n < talking else noise(1.0, -70.0, seed=n)
    return mixer, feeds


def test_silent_inputs_are_left_out_of_every_mix(tone):
    mixer, feeds = ten_speakers(tone, talking=1)
    inputs = mixer.inputs
    for i in range(10):
        for input_id, pcm in feeds.items():
            inputs[input_id].push(pcm[i * FRAME : (i + 1) * FRAME])
        result = mixer.mix()
        assert result.talkers == {"s0"}
        # The idle floors add nothing: the program is the talker, bit for bit.
        assert np.array_equal(result.program, feeds["s0"][i * FRAME : (i + 1) * FRAME])
        assert not result.minus["s0"].any()
    assert [inputs[f"s{n}"].heard for n in range(10)] == [True] + [False] * 9


def test_the_shared_mix_is_each_non_talkers_mix_minus_exactly(tone):
    mixer, feeds = ten_speakers(tone, talking=3)
    inputs = mixer.inputs
    talkers = ["s0", "s1", "s2"]
    for i in range(10):
        frames = {key: pcm[i * FRAME : (i + 1) * FRAME] for key, pcm in feeds.items()}
        for input_id, frame in frames.items():
            inputs[input_id].push(frame)
        result = mixer.mix()
        assert result.talkers == set(talkers)
        everyone = sum(frames[t].astype(np.int32) for t in talkers)  # under the limiter
        assert np.array_equal(result.program, everyone)
        for n in range(3, 10):
            # Not a copy: the same array, so it is encoded once for all of them.
            assert result.minus[f"s{n}"] is result.program
        for talker in talkers:
            others = everyone - frames[talker]
            assert np.array_equal(result.minus[talker], others)
            assert result.minus[talker] is not result.program


def test_a_quiet_voice_is_heard_and_its_tail_too(tone):
    mixer = Mixer()
    a = mixer.add_input("a")
    mixer.add_input("b")
    quiet = tone(440, 0.2, dbfs=-50.0)  # above the -60 dBFS gate, under the talking threshold
    for i in range(0, quiet.size, FRAME):
        a.push(quiet[i : i + FRAME])
        result = mixer.mix()
        assert np.array_equal(result.program, quiet[i : i + FRAME])
    assert a.heard and not a.active
    # Silence: still mixed for the hang time (0.5 s), so a word's tail is not cut, then left out.
    for _ in range(25):
        assert mixer.mix().talkers == {"a"}
    result = mixer.mix()
    assert result.talkers == frozenset() and not a.heard
    assert result.minus["a"] is result.program


def test_a_muted_talker_gets_the_shared_mix(tone):
    mixer = Mixer()
    a = mixer.add_input("a")
    b = mixer.add_input("b")
    a.muted = True
    a.push(tone(440, 0.02))
    b.push(tone(660, 0.02))
    result = mixer.mix()
    assert result.talkers == {"b"}
    assert result.minus["a"] is result.program
    assert np.array_equal(result.program, tone(660, 0.02))


def play(source, arrivals: list[int], frame: np.ndarray) -> list[bool]:
    """Per tick, push ``arrivals[tick]`` frames then pull one: did it play audio (not silence)?"""
    played = []
    for count in arrivals:
        for _ in range(count):
            source.push(frame)
        played.append(bool(source._pull().any()))
    return played


def test_after_a_pause_an_input_waits_for_a_frame_and_a_half(tone):
    a = Mixer().add_input("a")
    frame = tone(440, 0.02)
    assert play(a, [1] * 10, frame) == [True] * 10  # no wait at the start
    assert play(a, [0] * 5, frame) == [False] * 5  # a pause (DTX): 60 ms with nothing
    assert a.resume_samples == 1440
    # The next spurt starts one frame later, and then a late frame (0, then 2) is no hole.
    assert play(a, [1, 1, 1, 0, 2, 1, 1], frame) == [False] + [True] * 6
    # Without the pause, the same late frame is a hole: continuous streams are as before.
    b = Mixer().add_input("b")
    assert play(b, [1, 1, 1, 0, 2, 1, 1], frame) == [True, True, True, False, True, True, True]


def holes(played: list[bool]) -> int:
    """Silent frames between the first and the last frame of audio."""
    audio = [n for n, loud in enumerate(played) if loud]
    return played[audio[0] : audio[-1]].count(False) if audio else 0


def test_the_slack_after_pauses_follows_the_spurts_that_ran_dry(tone):
    a = Mixer().add_input("a")
    frame = tone(440, 0.02)
    late = [1] * 3 + [0, 2] + [1] * 3 + [0] * 6  # a talk spurt with a late frame, then a pause
    assert holes(play(a, late, frame)) == 1
    assert a.resume_samples == 1440 + 960  # so the next spurts start a frame later
    assert holes(play(a, late, frame)) == 0  # and the same late frame is no hole any more
    assert a.resume_samples == 1440 + 960
    # Comfort noise every 400 ms during a long silence changes nothing.
    play(a, [2] + [0] * 19 + [2] + [0] * 19, frame)
    assert a.resume_samples == 1440 + 960
    # A second and more that never ran dry gives the frame back.
    play(a, [1] * 60 + [0] * 6, frame)
    assert a.resume_samples == 1440


def test_a_paced_input_plays_its_frame_at_once_after_a_pause():
    """An input filled one frame per mix by its own jitter buffer (media/voice.py) must not
    wait for slack after a pause: nothing would ever be queued ahead of the next frame."""
    frame = np.full(960, 8000, dtype=np.int16)
    for paced, heard_at_once in ((True, True), (False, False)):
        mixer = Mixer()
        source = mixer.add_input("a", paced=paced)
        for _ in range(20):
            source.push(frame)
            mixer.mix()
        for _ in range(30):  # a pause: long enough to count as one
            mixer.mix()
        source.push(frame)  # the first frame of the next sentence, exactly one
        result = mixer.mix()
        assert (int(np.abs(result.program).max()) > 0) is heard_at_once, paced
