"""The node's side of a recognizer and the recognizer's inbox, without a model: what the media
loop calls never blocks and never grows without bound; frames arrive whole with their program
time; a recognizer that falls behind loses its oldest audio first."""

from __future__ import annotations

import multiprocessing
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from causerie.captions.model import ResolvedModel
from causerie.captions.recognizer import Inbox, downsample
from causerie.captions.worker import PIPE_BYTES, SpaceCaptions, frame_message


def test_downsample_keeps_speech_frequencies_and_scales_to_one() -> None:
    t = np.arange(960) / 48000
    tone = (16000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    out = downsample(tone)
    assert out.dtype == np.float32 and len(out) == 320
    assert np.max(np.abs(out)) == pytest.approx(16000 / 32768, rel=0.01)


def worker() -> SpaceCaptions:
    made = SpaceCaptions("s", ResolvedModel("m", Path("/nowhere")), lambda line: None)
    made.connect()
    return made


def test_feeding_never_blocks_and_drops_when_the_pipe_is_full() -> None:
    captions = worker()
    frame = np.arange(960, dtype=np.int16)
    sent = 2 * PIPE_BYTES // len(frame_message(0.0, frame)) + 100
    began = time.monotonic()
    for i in range(sent):
        captions.feed(frame, 1000 + i * 0.02)
    assert time.monotonic() - began < 2.0  # nobody reads: it never waited
    assert captions.stats.frames_in == sent
    assert 0 < captions.stats.frames_dropped < sent
    # What went through is whole, in order, with its program time.
    reader = captions._audio_out
    first = reader.recv_bytes()
    assert struct.unpack_from("!d", first)[0] == 1000.0
    assert np.array_equal(np.frombuffer(first, dtype=np.int16, offset=8), frame)
    assert struct.unpack_from("!d", reader.recv_bytes())[0] == pytest.approx(1000.02)
    captions.kill()
    captions.feed(frame, 0.0)  # stopped: ignored, no error
    assert captions.stats.frames_in == sent


def test_a_long_block_of_silence_goes_as_frames_with_their_times() -> None:
    captions = worker()
    captions.feed(np.zeros(960 * 3, dtype=np.int16), 50.0)
    reader = captions._audio_out
    times = [struct.unpack_from("!d", reader.recv_bytes())[0] for _ in range(3)]
    assert times == pytest.approx([50.0, 50.02, 50.04])
    captions.kill()


def test_the_inbox_drops_its_oldest_frames() -> None:
    reader, writer = multiprocessing.Pipe(duplex=False)
    inbox = Inbox(reader, seconds=0.2)  # ten frames
    frame = np.zeros(960, dtype=np.int16)
    for i in range(25):
        writer.send_bytes(frame_message(10 + i * 0.02, frame)[4:])
    writer.close()
    deadline = time.monotonic() + 5
    while not inbox.ended and time.monotonic() < deadline:
        time.sleep(0.01)
    assert inbox.ended and inbox.dropped == 15
    taken = inbox.take()
    assert [round(at, 2) for at, _ in taken] == [round(10 + i * 0.02, 2) for i in range(15, 25)]
    assert all(len(samples) == 320 for _, samples in taken)
