"""Reading a live media playlist in the fault tests."""

from __future__ import annotations

import re


def last_complete_msn(playlist: str) -> int:
    """The media sequence number of the last complete segment a media playlist lists."""
    match = re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", playlist)
    if match is None:
        raise AssertionError(f"not a media playlist: {playlist[:200]!r}")
    uris = [line for line in playlist.splitlines() if line and not line.startswith("#")]
    return int(match.group(1)) + len(uris) - 1
