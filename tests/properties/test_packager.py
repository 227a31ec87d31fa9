"""`_HLS_msn` and `_HLS_part` (media/packager.py `parse_blocking_request`) for any query value:
a decimal-integer of RFC 8216bis §4.2 is read as itself, anything else is a `ValueError` whose
message the origin sends with its 400 (tests/properties/test_live_input.py: over HTTP)."""

from __future__ import annotations

import re

from hypothesis import example, given
from hypothesis import strategies as st

from causerie.media.packager import parse_blocking_request

DECIMAL = re.compile(r"[0-9]{1,20}")
values = st.none() | st.text(max_size=30) | st.integers(0, 2**70).map(str)


@given(values, values)
@example("18446744073709551615", "0")  # 2^64 - 1: the largest decimal-integer
@example("18446744073709551616", None)
@example("١٢", None)  # Arabic-Indic digits are digits to Python, not to HLS
@example(" 1", None)
@example("+1", None)
@example("1_000", None)
def test_blocking_request(msn: str | None, part: str | None) -> None:
    def valid(text: str) -> bool:
        return DECIMAL.fullmatch(text) is not None and int(text) < 2**64

    try:
        parsed = parse_blocking_request(msn, part)
    except ValueError as exc:
        message = str(exc)
        if msn is None:
            assert part is not None and message == "_HLS_part requires _HLS_msn"
        else:
            bad = "_HLS_msn" if not valid(msn) else "_HLS_part"
            assert message.startswith(f"{bad} must be a non-negative integer"), message
            assert bad == "_HLS_msn" or (part is not None and not valid(part))
        return
    if msn is None:
        assert parsed is None and part is None
        return
    assert valid(msn) and (part is None or valid(part))
    assert parsed == (int(msn), None if part is None else int(part))
