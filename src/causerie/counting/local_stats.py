"""The audience numbers in this process's memory, saved to SQLite (the embedded default), so
the embedded mode's numbers survive a restart."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import zlib
from pathlib import Path
from typing import Any

from .presence import HEARTBEAT_INTERVAL
from .stats import SpaceStats, Summary, encode_state

SAVE_INTERVAL = 1.0
"""Seconds between two snapshots of the numbers that changed (`LocalStats.keep_saved`)."""

log = logging.getLogger(__name__)


class LocalStats:
    """`AudienceStats` in this process's memory (the embedded default).

    With a `path`, the numbers survive a restart: every space whose numbers changed is saved to
    that SQLite file at most every `SAVE_INTERVAL` seconds (`keep_saved`, run by the node) and
    at shutdown (`save`), and read back when the node starts. A `kill -9` loses at most the
    events of the last interval.
    """

    def __init__(self, interval: float = HEARTBEAT_INTERVAL, path: Path | None = None) -> None:
        self.interval = interval
        self.path = path
        self.spaces: dict[str, SpaceStats] = {}
        self._dirty: set[str] = set()
        self._saver: asyncio.Task[None] | None = None
        # Pages poll the numbers: a summary is computed again only after something was recorded
        # or a second passed (samples close with time).
        self._summaries: dict[str, tuple[tuple[int, float | None, float | None], Summary]] = {}
        if path is not None:
            self._load(path)

    def space(self, space_id: str) -> SpaceStats:
        """The state of one space, created when first needed."""
        stats = self.spaces.get(space_id)
        if stats is None:
            stats = self.spaces[space_id] = SpaceStats(self.interval)
        return stats

    def _changed(self, space_id: str) -> None:
        self._summaries.pop(space_id, None)
        if self.path is not None:
            self._dirty.add(space_id)

    async def join_attempted(self, space_id: str, now: float) -> None:
        self.space(space_id).join_attempted(now)
        self._changed(space_id)

    async def joined(self, space_id: str, listener_id: str, now: float) -> None:
        self.space(space_id).joined(listener_id, now)
        self._changed(space_id)

    async def heartbeat(self, space_id: str, listener_id: str, now: float) -> None:
        self.space(space_id).heartbeat(listener_id, now)
        self._changed(space_id)

    async def record_replay_listen(self, space_id: str, client_key: str, now: float) -> None:
        self.space(space_id).replay_listen(client_key, now)
        self._changed(space_id)

    async def summary(
        self, space_id: str, now: float, started_at: float | None, ended_at: float | None
    ) -> Summary:
        key = (int(now), started_at, ended_at)
        cached = self._summaries.get(space_id)
        if cached is not None and cached[0] == key:
            return cached[1]
        stats = self.spaces.get(space_id) or SpaceStats(self.interval)
        result = stats.summarize(now, started_at, ended_at)
        if len(self._summaries) > 10_000:
            self._summaries.clear()
        self._summaries[space_id] = (key, result)
        return result

    def forget(self, space_id: str) -> None:
        """Drop a space's state."""
        self.spaces.pop(space_id, None)
        self._summaries.pop(space_id, None)
        if self.path is not None:
            self._dirty.add(space_id)  # deleted from the file at the next save

    # -- persistence ------------------------------------------------------------------------

    def _snapshot(self) -> list[tuple[str, dict[str, Any] | None]]:
        """The states of the spaces that changed since the last save (None: forgotten), marked
        clean."""
        rows = [
            (space_id, stats.state() if (stats := self.spaces.get(space_id)) else None)
            for space_id in self._dirty
        ]
        self._dirty.clear()
        return rows

    def save(self) -> None:
        """Write what changed now (at shutdown)."""
        if self.path is not None and self._dirty:
            _write_snapshots(self.path, self._snapshot())

    def start(self) -> None:
        """Save what changed every second from now on, in a task of its own."""
        if self._saver is None:
            self._saver = asyncio.create_task(self.keep_saved(), name="save-stats")

    async def close(self) -> None:
        """Stop saving in the background, then save what is left."""
        saver, self._saver = self._saver, None
        if saver is not None:
            saver.cancel()
            await asyncio.gather(saver, return_exceptions=True)
        self.save()

    async def keep_saved(self, every: float = SAVE_INTERVAL) -> None:
        """Save what changed every `every` seconds, until cancelled (the write in a thread)."""
        if self.path is None:
            return
        while True:
            await asyncio.sleep(every)
            if not self._dirty:
                continue
            rows = self._snapshot()  # on the loop: a consistent copy; encoded in the thread
            try:
                await asyncio.to_thread(_write_snapshots, self.path, rows)
            except (OSError, sqlite3.Error) as exc:
                self._dirty.update(space_id for space_id, _ in rows)  # try again next time
                log.error("saving the audience numbers to %s failed: %s", self.path, exc)

    def _load(self, path: Path) -> None:
        started = time.monotonic()
        db = _connect(path)
        try:
            rows = db.execute("SELECT space_id, state FROM space_stats").fetchall()
        finally:
            db.close()
        for space_id, data in rows:
            try:
                self.spaces[space_id] = SpaceStats.from_bytes(data)
            except (ValueError, KeyError, TypeError, zlib.error) as exc:
                log.error("the saved numbers of space %s are unreadable: %s", space_id, exc)
        if self.spaces:
            log.info(
                "read the audience numbers of %d space(s) in %.2f s",
                len(self.spaces),
                time.monotonic() - started,
            )


def _connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=10)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS space_stats (space_id TEXT PRIMARY KEY, state BLOB NOT NULL)"
    )
    return db


def _write_snapshots(path: Path, states: list[tuple[str, dict[str, Any] | None]]) -> None:
    rows = [
        (space_id, None if state is None else encode_state(state)) for space_id, state in states
    ]
    db = _connect(path)
    try:
        with db:  # one transaction
            db.executemany(
                "INSERT OR REPLACE INTO space_stats (space_id, state) VALUES (?, ?)",
                [(space_id, data) for space_id, data in rows if data is not None],
            )
            db.executemany(
                "DELETE FROM space_stats WHERE space_id = ?",
                [(space_id,) for space_id, data in rows if data is None],
            )
    finally:
        db.close()
