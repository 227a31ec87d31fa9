"""The CMAF writer: box structure read back with a small walker, and real decoders on the bytes."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from causerie.media import fmp4
from causerie.media.encoder import AacEncoder, audio_specific_config

CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"dinf", b"stbl", b"mvex", b"moof", b"traf"}


def walk(data: bytes) -> list[tuple[str, bytes, list]]:
    """Parse boxes into (type, payload, children) trees; fails on any size inconsistency."""
    boxes, offset = [], 0
    while offset < len(data):
        size, kind = struct.unpack_from(">I4s", data, offset)
        assert 8 <= size <= len(data) - offset, f"bad size {size} for {kind!r} at {offset}"
        payload = data[offset + 8 : offset + size]
        children = walk(payload) if kind in CONTAINERS else []
        boxes.append((kind.decode(), payload, children))
        offset += size
    return boxes


def find(boxes: list, path: str) -> bytes:
    """The payload of the box at a slash-separated path, e.g. 'moov/trak/tkhd'."""
    first, _, rest = path.partition("/")
    for kind, payload, children in boxes:
        if kind == first:
            return find(children, rest) if rest else payload
    raise AssertionError(f"no box {first!r} in {[b[0] for b in boxes]}")


def encoded_frames(seconds: float) -> list:
    encoder = AacEncoder()
    t = np.arange(round(seconds * 48000)) / 48000
    pcm = np.rint(8000 * np.sin(2 * np.pi * 1000 * t)).astype(np.int16)
    return encoder.encode(pcm) + encoder.flush()


def test_init_segment_structure():
    asc = audio_specific_config(48000, 1)
    boxes = walk(fmp4.init_segment(sample_rate=48000, channels=1, audio_specific_config=asc))
    assert [b[0] for b in boxes] == ["ftyp", "moov"]
    ftyp = find(boxes, "ftyp")
    assert ftyp[:4] == b"iso6"
    assert b"cmfc" in [ftyp[i : i + 4] for i in range(8, len(ftyp), 4)]

    mdhd = find(boxes, "moov/trak/mdia/mdhd")
    assert struct.unpack_from(">I", mdhd, 12)[0] == 48000  # timescale = sample rate
    assert find(boxes, "moov/trak/mdia/hdlr")[8:12] == b"soun"
    tkhd = find(boxes, "moov/trak/tkhd")
    assert struct.unpack_from(">I", tkhd, 12)[0] == 1  # track_ID

    stsd = find(boxes, "moov/trak/mdia/minf/stbl/stsd")
    entry = walk(stsd[8:])
    assert entry[0][0] == "mp4a"
    mp4a = entry[0][1]
    channels, sample_size = struct.unpack_from(">HH", mp4a, 16)
    assert (channels, sample_size) == (1, 16)
    assert struct.unpack_from(">I", mp4a, 24)[0] >> 16 == 48000
    esds = walk(mp4a[28:])[0]
    assert esds[0] == "esds"
    assert esds[1].endswith(b"\x05\x02" + asc + b"\x06\x01\x02")  # DecoderSpecificInfo, SLConfig

    trex = find(boxes, "moov/mvex/trex")
    assert struct.unpack_from(">II", trex, 4) == (1, 1)  # track_ID, sample description 1


def test_fragment_structure():
    samples = [b"\x01" * 10, b"\x02" * 20, b"\x03" * 5]
    data = fmp4.fragment(sequence_number=7, base_decode_time=2**40, samples=samples)
    boxes = walk(data)
    assert [b[0] for b in boxes] == ["moof", "mdat"]
    assert struct.unpack(">II", find(boxes, "moof/mfhd")) == (0, 7)

    tfhd = find(boxes, "moof/traf/tfhd")
    flags = struct.unpack_from(">I", tfhd)[0] & 0xFFFFFF
    assert flags & 0x020000  # default-base-is-moof: the fragment stands alone
    assert struct.unpack_from(">II", tfhd, 4) == (1, 1024)  # track_ID, default duration

    tfdt = find(boxes, "moof/traf/tfdt")
    assert tfdt[0] == 1  # version 1: 64-bit decode time
    assert struct.unpack_from(">Q", tfdt, 4)[0] == 2**40

    trun = find(boxes, "moof/traf/trun")
    count, data_offset = struct.unpack_from(">Ii", trun, 4)
    sizes = struct.unpack_from(f">{count}I", trun, 12)
    assert count == 3
    assert list(sizes) == [10, 20, 5]
    # The data offset, counted from the start of moof, lands on the first byte of mdat's payload.
    assert data[data_offset:] == b"".join(samples)


def test_fragment_needs_samples():
    with pytest.raises(ValueError, match="at least one sample"):
        fmp4.fragment(sequence_number=1, base_decode_time=0, samples=[])


def test_init_and_fragments_decode_to_the_right_duration(decode_mp4, probe):
    frames = encoded_frames(1.0)  # 47 frames of audio + 1 of priming
    asc = audio_specific_config(48000, 1)
    init = fmp4.init_segment(sample_rate=48000, channels=1, audio_specific_config=asc)
    fragments = [
        fmp4.fragment(
            sequence_number=n + 1,
            base_decode_time=n * 10 * 1024,
            samples=[f.data for f in frames[n * 10 : (n + 1) * 10]],
        )
        for n in range((len(frames) + 9) // 10)
    ]
    data = init + b"".join(fragments)

    samples, decoded = decode_mp4(data)
    assert len(decoded) == len(frames)
    assert samples.size == len(frames) * 1024
    assert [f.pts for f in decoded] == [i * 1024 for i in range(len(frames))]

    report = probe(data)
    (stream,) = report["streams"]
    assert stream["codec_name"] == "aac"
    assert int(stream["duration_ts"]) == len(frames) * 1024
    assert float(report["format"]["duration"]) == pytest.approx(len(frames) * 1024 / 48000)


def test_each_fragment_decodes_alone_after_the_init_segment(decode_mp4, probe):
    frames = encoded_frames(0.5)
    asc = audio_specific_config(48000, 1)
    init = fmp4.init_segment(sample_rate=48000, channels=1, audio_specific_config=asc)
    # A late fragment of a long run: decode time beyond 32 bits, as tfdt version 1 allows.
    base = 2**33 + 5 * 1024
    fragment = fmp4.fragment(
        sequence_number=1000, base_decode_time=base, samples=[f.data for f in frames[10:20]]
    )
    samples, decoded = decode_mp4(init + fragment)
    assert len(decoded) == 10
    assert decoded[0].pts == base
    assert np.abs(samples).max() > 0.1  # real audio, not silence
    report = probe(init + fragment)
    assert float(report["streams"][0]["start_time"]) == pytest.approx(base / 48000)
