"""The pure pieces of captions: utterance cutting, lines, WebVTT, the replay timeline, the
search text, word error rate."""

from __future__ import annotations

import io

import pytest
import webvtt

from causerie.captions.lines import CaptionLine, parse_lines
from causerie.captions.query import MAX_QUERY, BadQuery, fts_query
from causerie.captions.transcript import Span, place
from causerie.captions.utterances import CutPolicy, Utterance, UtteranceCutter
from causerie.captions.webvtt import Cue, format_timestamp, render_text, render_webvtt
from causerie.captions.wer import word_error_rate

RATE, CHUNK = 16000, 512
SECOND = RATE // CHUNK  # chunks per second (31.25 → 31)


def run(cutter: UtteranceCutter, probabilities: list[float]) -> list[Utterance]:
    found = [u for p in probabilities if (u := cutter.push(p)) is not None]
    last = cutter.flush()
    return [*found, last] if last else found


def test_an_utterance_ends_at_a_pause_with_padding() -> None:
    policy = CutPolicy(min_silence=0.4, pad=0.2)
    cutter = UtteranceCutter(policy, RATE, CHUNK)
    probabilities = [0.0] * 20 + [0.9] * 40 + [0.0] * 40
    utterances = run(cutter, probabilities)
    assert len(utterances) == 1
    (u,) = utterances
    assert u.start == 20 * CHUNK - round(0.2 * RATE)
    assert u.end == 60 * CHUNK + round(0.2 * RATE)


def test_a_short_breath_does_not_cut_but_a_pause_does() -> None:
    cutter = UtteranceCutter(CutPolicy(min_silence=0.4), RATE, CHUNK)
    breath = [0.9] * 30 + [0.1] * 5 + [0.9] * 30  # 160 ms: a breath
    pause = [0.1] * 20  # 640 ms
    utterances = run(cutter, breath + pause + [0.9] * 30 + pause)
    assert len(utterances) == 2


def test_hysteresis_keeps_an_utterance_between_the_thresholds() -> None:
    cutter = UtteranceCutter(CutPolicy(on=0.5, off=0.35), RATE, CHUNK)
    # 0.4 would not start speech, but does not end it either.
    utterances = run(cutter, [0.4] * 10 + [0.9] * 10 + [0.4] * 40 + [0.0] * 20)
    assert len(utterances) == 1
    assert utterances[0].end > 55 * CHUNK


def test_noise_too_short_is_not_an_utterance() -> None:
    cutter = UtteranceCutter(CutPolicy(min_speech=0.25), RATE, CHUNK)
    assert run(cutter, [0.0] * 10 + [0.9] * 3 + [0.0] * 30) == []


def test_a_speaker_who_never_pauses_is_cut_at_the_longest_utterance() -> None:
    cutter = UtteranceCutter(CutPolicy(max_seconds=5, pad=0), RATE, CHUNK)
    utterances = run(cutter, [0.9] * (SECOND * 12))
    assert len(utterances) == 3
    assert all(u.end - u.start <= 5 * RATE + CHUNK for u in utterances)
    assert utterances[1].start == utterances[0].end  # nothing lost between the pieces


def test_keep_from_lets_the_caller_drop_old_audio() -> None:
    cutter = UtteranceCutter(CutPolicy(pad=0.2), RATE, CHUNK)
    for _ in range(100):
        cutter.push(0.0)
    assert cutter.keep_from() == 100 * CHUNK - round(0.2 * RATE)
    cutter.push(0.9)
    assert cutter.keep_from() == 100 * CHUNK - round(0.2 * RATE)  # the utterance's pad


@pytest.mark.parametrize(
    "policy",
    [dict(on=0.3, off=0.5), dict(on=1.0), dict(max_seconds=1), dict(pad=-1)],
)
def test_bad_policies_are_refused(policy: dict) -> None:
    with pytest.raises(ValueError):
        CutPolicy(**policy)


def test_lines_round_trip_and_bad_lines_are_skipped() -> None:
    good = CaptionLine(1000.5, 1002.25, "Hello  there\n")
    text = "\n".join(
        [
            '{"start": 1003, "end": 1004, "text": "second"}',
            '{"start": 1000.5, "end": 1002.25, "text": "Hello  there\\n"}',
            '{"start": 5, "end": 4, "text": "ends before it starts"}',
            '{"start": "x", "end": 4, "text": "no"}',
            '{"start": 1, "end": 2, "text": "   "}',
            "[1, 2]",
            '{"start": 1, "end": 2, "te',  # torn by a crash
        ]
    )
    lines = parse_lines(text)
    assert [line.text for line in lines] == ["Hello there", "second"]
    assert CaptionLine.from_dict(good.to_dict()) == CaptionLine(1000.5, 1002.25, "Hello there")


def test_timestamps() -> None:
    assert format_timestamp(0) == "00:00:00.000"
    assert format_timestamp(3723.4567) == "01:02:03.457"
    assert format_timestamp(-1) == "00:00:00.000"
    assert format_timestamp(360000) == "100:00:00.000"


def test_webvtt_parses_with_a_real_parser_and_escapes_text() -> None:
    cues = [
        Cue(1.0, 3.5, "The border --> opened"),
        Cue(4.0, 4.0, "<b>not a tag</b> & co\n\nstill one cue"),
    ]
    text = render_webvtt(cues, "MPEGTS:0,LOCAL:00:00:00.000")
    assert text.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n")
    parsed = webvtt.from_buffer(io.StringIO(text))
    assert [(c.start, c.end) for c in parsed] == [
        ("00:00:01.000", "00:00:03.500"),
        ("00:00:04.000", "00:00:04.001"),
    ]
    assert parsed[0].text == "The border --&gt; opened"
    assert "\n" not in parsed[1].raw_text
    assert "<b>" not in text


def test_plain_text() -> None:
    text = render_text([Cue(65.2, 70, "Hello"), Cue(3601, 3602, "Later")])
    assert text == "[01:05] Hello\n[60:01] Later\n"
    assert render_text([]) == ""


SPANS = [
    Span(program_date_time=1000.0, offset=0.0, duration=2.0),
    Span(program_date_time=1002.0, offset=2.0, duration=2.0),
    # A lost segment (1004–1006), then a new run after a restart, much later.
    Span(program_date_time=1006.0, offset=4.0, duration=2.0),
    Span(program_date_time=2000.0, offset=6.0, duration=2.0),
]


def test_lines_are_placed_on_the_replay_timeline() -> None:
    lines = [
        CaptionLine(2000.5, 2001.0, "after the restart"),
        CaptionLine(1001.0, 1003.0, "first"),
        CaptionLine(1004.5, 1006.5, "in the lost segment"),
        CaptionLine(999.0, 1000.5, "before the recording"),
        CaptionLine(3000.0, 3001.0, "after the end"),
        CaptionLine(2001.5, 2009.0, "runs past the end"),
    ]
    cues = place(lines, SPANS)
    assert [(c.text, c.start, c.end) for c in cues] == [
        ("before the recording", 0.0, 0.5),
        ("first", 1.0, 3.0),
        ("in the lost segment", 4.0, 4.5),
        ("after the restart", 6.5, 7.0),
        ("runs past the end", 7.5, 8.0),
    ]
    assert place(lines, []) == []


@pytest.mark.parametrize(
    ("text", "query"),
    [
        ("border", '"border"*'),
        ('the "border', '"the" "border"*'),
        ("NEAR(border crossing)", '"near" "border" "crossing"*'),
        ("bord*", '"bord"*'),
        ("text:border OR -x", '"text" "border" "or" "x"*'),
        ("Grenzübergang", '"grenzübergang"*'),
    ],
)
def test_search_text_becomes_quoted_words(text: str, query: str) -> None:
    assert fts_query(text) == query


@pytest.mark.parametrize("text", ["", "   ", '"', "*", "()", "-- ::", "x" * (MAX_QUERY + 1)])
def test_search_text_without_words_or_too_long_is_refused(text: str) -> None:
    with pytest.raises(BadQuery):
        fts_query(text)


def test_word_error_rate() -> None:
    assert word_error_rate("The market's open.", "the markets open") == 0
    assert word_error_rate("a b c d", "a x c") == pytest.approx(0.5)  # 1 sub + 1 deletion
    assert word_error_rate("a b", "a b c d") == pytest.approx(1.0)
    assert word_error_rate("", "") == 0
