"""Validation of the free text people type: titles, descriptions, names, questions."""

import unicodedata

from .errors import Invalid

# Control characters (C0, DEL, C1) never belong in a title; newlines and tabs may stand in longer
# text. Bidirectional and zero-width characters are allowed: pages show text as text, never as
# HTML, and people write in every script.
_ALLOWED_IN_MULTILINE = {"\n", "\t"}


def clean_text(
    value: str, *, field: str, max_length: int, required: bool = True, multiline: bool = False
) -> str:
    """Return `value` normalised (NFC, trimmed), or raise `Invalid` with a message for people."""
    if not isinstance(value, str):
        raise Invalid(f"{field} must be text")
    text = unicodedata.normalize("NFC", value).strip()
    if required and not text:
        raise Invalid(f"{field} must not be empty")
    if len(text) > max_length:
        raise Invalid(f"{field} is too long: {len(text)} characters, at most {max_length}")
    for char in text:
        if multiline and char in _ALLOWED_IN_MULTILINE:
            continue
        category = unicodedata.category(char)
        if category == "Cc":
            raise Invalid(f"{field} contains a control character (U+{ord(char):04X})")
        if category == "Cs":  # a lone surrogate (JSON allows "\ud800"): not text, not storable
            raise Invalid(
                f"{field} contains a lone surrogate (U+{ord(char):04X}), which is not text"
            )
    return text
