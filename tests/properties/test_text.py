"""Free text people type (domain/text.py `clean_text`, domain/questions.py `ask`) for any input:
the result is normalised, bounded and free of control characters, cleaning it again changes
nothing, and everything else is an `Invalid` error with a message. Right-to-left, zero-width and
emoji characters are kept as typed (pages show text as text, never as HTML)."""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from causerie.domain import Invalid, Space, clean_text
from causerie.domain import questions as q

NOW = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)
KEPT = [
    "שלום עולם",  # Hebrew, right to left
    "\u202eevil\u202c",  # right-to-left override and pop (bidirectional controls, category Cf)
    "zero\u200bwidth\u200djoiner\ufeff",
    "👩🏽‍💻 🎙️🔥",  # emoji with skin tone, zero-width joiner, variation selector
    "<img src=x onerror=alert(1)></script>",  # markup is text like any other
]
# Text as people paste it: every script, and the characters that trip programs up.
typed = st.text(
    st.characters(codec="utf-8")
    | st.sampled_from(
        ["\n", "\r", "\t", "\u200b", "\u202e", "\u2028", "\x00", "\x85", "\ud800", " "]
    ),
    max_size=300,
)


def cleaned(value: str, **kwargs: object) -> str | None:
    """`clean_text(value)`, or None when it is refused with `Invalid` (nothing else escapes)."""
    try:
        return clean_text(value, field="text", **kwargs)
    except Invalid as exc:
        assert exc.message.startswith("text ")
        return None


@given(typed, st.integers(1, 300), st.booleans(), st.booleans())
@example("e\u0301" * 3, 3, True, False)  # NFC makes it shorter: 3 characters, not 6
def test_clean_text(value: str, max_length: int, multiline: bool, required: bool) -> None:
    text = cleaned(value, max_length=max_length, multiline=multiline, required=required)
    if text is None:
        return
    assert len(text) <= max_length
    assert text == text.strip() and unicodedata.is_normalized("NFC", text)
    allowed = {"\n", "\t"} if multiline else set()
    assert not [c for c in text if unicodedata.category(c) == "Cc" and c not in allowed]
    assert not [c for c in text if unicodedata.category(c) == "Cs"]  # storable as UTF-8
    text.encode()
    assert text or not required
    again = cleaned(text, max_length=max_length, multiline=multiline, required=required)
    assert again == text  # idempotent


@given(typed)
def test_what_is_refused_is_said(value: str) -> None:
    text = unicodedata.normalize("NFC", value).strip()
    controls = [
        c
        for c in text
        if (unicodedata.category(c) == "Cc" and c not in "\n\t") or unicodedata.category(c) == "Cs"
    ]
    try:
        clean_text(value, field="question", max_length=280, multiline=True)
    except Invalid as exc:
        assert not text or len(text) > 280 or controls, exc.message
        if controls and text and len(text) <= 280:
            assert f"U+{ord(controls[0]):04X}" in exc.message
    else:
        assert text and len(text) <= 280 and not controls


@pytest.mark.parametrize("value", KEPT)
def test_rtl_zero_width_emoji_and_markup_are_kept_as_typed(value: str) -> None:
    assert clean_text(value, field="title", max_length=140) == unicodedata.normalize("NFC", value)


def space() -> Space:
    return Space.create(space_id="s1", host_id="u1", host_name="Hana", title="Q&A", now=NOW)


@given(typed, st.text(max_size=80))
def test_questions_hold_cleaned_text_or_are_refused(text: str, name: str) -> None:
    try:
        question = q.ask(
            space(), question_id="q1", author_id="l-1", author_name=name, text=text, now=NOW
        )
    except Invalid:
        assert cleaned(text, max_length=q.QUESTION_MAX, multiline=True) is None or (
            cleaned(name, max_length=60, required=False) is None
        )
        return
    assert question.text == cleaned(text, max_length=q.QUESTION_MAX, multiline=True)
    assert 0 < len(question.text) <= q.QUESTION_MAX
    assert question.author_name == (cleaned(name, max_length=60, required=False) or "Guest")
