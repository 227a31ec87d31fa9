"""Banned accounts as this node knows them, for checking every token without a store read.

The store (shared through Redis with several nodes) holds the bans; each node reads them every
`REFRESH_INTERVAL` seconds (loops.py), and the node that bans someone knows at once. So a ban
takes effect on every node within about a second.
"""

from __future__ import annotations

from collections.abc import Iterable

REFRESH_INTERVAL = 1.0
"""Seconds between two reads of the bans from the store."""


class Bans:
    """The set of banned account ids (user ids: an account's, or a listener's)."""

    def __init__(self) -> None:
        self._subjects: frozenset[str] = frozenset()

    def is_banned(self, subject: str) -> bool:
        return subject in self._subjects

    def replace(self, subjects: Iterable[str]) -> None:
        """The bans as the store holds them now."""
        self._subjects = frozenset(subjects)

    def add(self, subject: str) -> None:
        """A ban made on this node: in force here before the next read."""
        self._subjects = self._subjects | {subject}

    def __len__(self) -> int:
        return len(self._subjects)
