"""CMAF fragmented MP4 (ISO/IEC 14496-12, ISO BMFF) for one AAC audio track, written by hand.

Two kinds of bytes come out of here, as LL-HLS wants them (RFC 8216bis section 3.1.2):

- ``init_segment()``: the Media Initialization Section (``ftyp`` + ``moov``), named by EXT-X-MAP.
  It describes the track but holds no samples; ``mvex``/``trex`` say that samples come in movie
  fragments.
- ``fragment()``: one CMAF chunk (``moof`` + ``mdat``), used as an LL-HLS Partial Segment. A
  Media Segment is simply the concatenation of its parts' fragments.

Pure functions, no PyAV: the muxer must be cheap and predictable because it runs for every part
of every live space, and the bytes are easy to check against the standard (and against ffprobe).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

__all__ = ["box", "fragment", "full_box", "init_segment"]

# 14496-12 section 8.8.7: tf_flags of the Track Fragment Header box.
_TFHD_DEFAULT_SAMPLE_DURATION = 0x000008
_TFHD_DEFAULT_SAMPLE_FLAGS = 0x000020
# "default-base-is-moof": data offsets count from the start of this moof, so a fragment does not
# depend on where it sits in a file; this is what lets each part stand alone (CMAF requires it).
_TFHD_DEFAULT_BASE_IS_MOOF = 0x020000

# 14496-12 section 8.8.8: tr_flags of the Track Fragment Run box.
_TRUN_DATA_OFFSET = 0x000001
_TRUN_SAMPLE_SIZE = 0x000200

# 14496-12 section 8.8.3.1 sample flags: sample_depends_on = 2 ("does not depend on others").
# Every AAC access unit is a sync sample: players may start at any part (INDEPENDENT=YES).
_SAMPLE_FLAGS_SYNC = 0x02000000

# Unity transformation matrix for mvhd/tkhd (14496-12 section 8.2.2), 16.16 and 2.30 fixed point.
_MATRIX = struct.pack(">9I", 0x00010000, 0, 0, 0, 0x00010000, 0, 0, 0, 0x40000000)


def box(kind: bytes, *payload: bytes) -> bytes:
    """One ISO BMFF box: 32-bit size, 4-character type, payload."""
    body = b"".join(payload)
    return struct.pack(">I4s", 8 + len(body), kind) + body


def full_box(kind: bytes, version: int, flags: int, *payload: bytes) -> bytes:
    """A FullBox: a box whose payload starts with an 8-bit version and 24-bit flags."""
    return box(kind, struct.pack(">I", (version << 24) | flags), *payload)


def _descriptor(tag: int, payload: bytes) -> bytes:
    """An MPEG-4 Systems descriptor (ISO/IEC 14496-1 section 8.3.3): tag, expandable size, body."""
    size = len(payload)
    encoded = [size & 0x7F]
    size >>= 7
    while size:
        encoded.insert(0, 0x80 | (size & 0x7F))
        size >>= 7
    return bytes([tag, *encoded]) + payload


def _esds(audio_specific_config: bytes, track_id: int) -> bytes:
    """Elementary stream descriptor box carrying the AAC AudioSpecificConfig (14496-14 s. 5.6)."""
    decoder_specific_info = _descriptor(0x05, audio_specific_config)
    decoder_config = _descriptor(
        0x04,
        struct.pack(
            ">BBBHII",
            0x40,  # objectTypeIndication: MPEG-4 Audio (14496-3)
            (0x05 << 2) | 0x01,  # streamType AudioStream, upStream 0, reserved 1
            0,  # bufferSizeDB, 24 bits: high byte ...
            0,  # ... and low 16 bits; 0 = unknown, which decoders accept
            0,  # maxBitrate: unknown
            0,  # avgBitrate: 0 = variable
        )
        + decoder_specific_info,
    )
    sl_config = _descriptor(0x06, b"\x02")  # predefined SL config for MP4 files
    es = _descriptor(0x03, struct.pack(">HB", track_id, 0) + decoder_config + sl_config)
    return full_box(b"esds", 0, 0, es)


def _mp4a(*, sample_rate: int, channels: int, audio_specific_config: bytes, track_id: int) -> bytes:
    """AudioSampleEntry 'mp4a' (14496-12 section 12.2.3, 14496-14 section 5.6)."""
    if not 0 < sample_rate < 1 << 16:
        # The entry's samplerate field is 16.16 fixed point; the true rate is in the ASC anyway.
        raise ValueError(f"sample_rate {sample_rate} does not fit the mp4a samplerate field")
    return box(
        b"mp4a",
        bytes(6),  # SampleEntry reserved
        struct.pack(">H", 1),  # data_reference_index: the single 'url ' entry in dref
        bytes(8),  # AudioSampleEntry reserved
        struct.pack(">HHHH", channels, 16, 0, 0),  # channelcount, samplesize, pre_defined, reserved
        struct.pack(">I", sample_rate << 16),
        _esds(audio_specific_config, track_id),
    )


def init_segment(
    *,
    sample_rate: int,
    channels: int,
    audio_specific_config: bytes,
    timescale: int | None = None,
    track_id: int = 1,
) -> bytes:
    """The CMAF header (ftyp + moov) for one AAC track; ``timescale`` defaults to the sample rate.

    Durations are all zero: in a fragmented file the samples, and so the duration, are only in the
    fragments (14496-12 section 8.8.1).
    """
    timescale = sample_rate if timescale is None else timescale
    # 'iso6' is the file brand FFmpeg also writes for CMAF; 'cmfc' declares a CMAF track
    # (ISO/IEC 23000-19 section 7.2).
    ftyp = box(b"ftyp", b"iso6", struct.pack(">I", 0), b"iso6", b"cmfc", b"mp41")
    mvhd = full_box(
        b"mvhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, timescale, 0),  # creation, modification, timescale, duration
        struct.pack(">IH", 0x00010000, 0x0100),  # rate 1.0, volume 1.0
        bytes(10),  # reserved
        _MATRIX,
        bytes(24),  # pre_defined
        struct.pack(">I", track_id + 1),  # next_track_ID
    )
    tkhd = full_box(
        b"tkhd",
        0,
        0x000003,  # track_enabled | track_in_movie
        struct.pack(">IIIII", 0, 0, track_id, 0, 0),  # creation, modification, id, reserved, dur
        bytes(8),  # reserved
        struct.pack(">hhHH", 0, 0, 0x0100, 0),  # layer, alternate_group, volume 1.0, reserved
        _MATRIX,
        struct.pack(">II", 0, 0),  # width, height: none for audio
    )
    mdhd = full_box(
        b"mdhd",
        0,
        0,
        struct.pack(">IIII", 0, 0, timescale, 0),
        struct.pack(">HH", _language_code("und"), 0),
    )
    hdlr = full_box(b"hdlr", 0, 0, struct.pack(">I4s", 0, b"soun"), bytes(12), b"SoundHandler\0")
    stbl = box(
        b"stbl",
        full_box(
            b"stsd",
            0,
            0,
            struct.pack(">I", 1),
            _mp4a(
                sample_rate=sample_rate,
                channels=channels,
                audio_specific_config=audio_specific_config,
                track_id=track_id,
            ),
        ),
        # Empty sample tables: every sample lives in a movie fragment.
        full_box(b"stts", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsc", 0, 0, struct.pack(">I", 0)),
        full_box(b"stsz", 0, 0, struct.pack(">II", 0, 0)),
        full_box(b"stco", 0, 0, struct.pack(">I", 0)),
    )
    minf = box(
        b"minf",
        full_box(b"smhd", 0, 0, struct.pack(">hH", 0, 0)),  # balance centre, reserved
        box(b"dinf", full_box(b"dref", 0, 0, struct.pack(">I", 1), full_box(b"url ", 0, 1))),
        stbl,
    )
    trex = full_box(
        b"trex",
        0,
        0,
        # track_ID, default_sample_description_index, duration, size, flags; each fragment
        # repeats what it needs in tfhd, so these defaults are never relied on.
        struct.pack(">IIIII", track_id, 1, 0, 0, 0),
    )
    moov = box(
        b"moov",
        mvhd,
        box(b"trak", tkhd, box(b"mdia", mdhd, hdlr, minf)),
        box(b"mvex", trex),
    )
    return ftyp + moov


def fragment(
    *,
    sequence_number: int,
    base_decode_time: int,
    samples: Sequence[bytes],
    sample_duration: int = 1024,
    track_id: int = 1,
) -> bytes:
    """One movie fragment (moof + mdat) holding ``samples`` back to back, all of one duration.

    ``base_decode_time`` (in timescale units) goes into a version 1 ``tfdt``, so it is 64 bits and
    never wraps; ``sequence_number`` must increase from fragment to fragment (section 8.8.5).
    """
    if not samples:
        raise ValueError("a fragment needs at least one sample")
    mfhd = full_box(b"mfhd", 0, 0, struct.pack(">I", sequence_number))
    tfhd = full_box(
        b"tfhd",
        0,
        _TFHD_DEFAULT_BASE_IS_MOOF | _TFHD_DEFAULT_SAMPLE_DURATION | _TFHD_DEFAULT_SAMPLE_FLAGS,
        struct.pack(">III", track_id, sample_duration, _SAMPLE_FLAGS_SYNC),
    )
    tfdt = full_box(b"tfdt", 1, 0, struct.pack(">Q", base_decode_time))
    sizes = struct.pack(f">{len(samples)}I", *(len(s) for s in samples))

    def build_moof(data_offset: int) -> bytes:
        trun = full_box(
            b"trun",
            0,
            _TRUN_DATA_OFFSET | _TRUN_SAMPLE_SIZE,
            struct.pack(">Ii", len(samples), data_offset),
            sizes,
        )
        return box(b"moof", mfhd, box(b"traf", tfhd, tfdt, trun))

    # The data offset (from the start of moof, thanks to default-base-is-moof) is the moof size
    # plus the 8-byte mdat header; the moof size does not depend on the offset's value.
    moof_size = len(build_moof(0))
    return build_moof(moof_size + 8) + box(b"mdat", *samples)


def _language_code(language: str) -> int:
    """ISO 639-2/T code packed as three 5-bit letters (14496-12 section 8.4.2.3)."""
    a, b, c = (ord(ch) - 0x60 for ch in language)
    return (a << 10) | (b << 5) | c
