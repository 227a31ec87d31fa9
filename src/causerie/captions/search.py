"""Full-text search over the transcripts of ended spaces: SQLite FTS5 in the data directory.

Each node keeps the index in `DATA/transcripts.sqlite` and adds a space's transcript to it when
the space's captions are finished (service.py). Ranking is FTS5's BM25; a space ranks by its
best line, and the answer lists each space's matching lines with their times in the replay.
The calls block (SQLite): the node runs them in a thread.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from .query import fts_query
from .webvtt import Cue

__all__ = ["Hit", "SearchResult", "TranscriptIndex"]

LINES_PER_SPACE = 5
_SCHEMA = """
CREATE VIRTUAL TABLE IF NOT EXISTS lines USING fts5(
    text, space_id UNINDEXED, start UNINDEXED, tokenize = 'unicode61 remove_diacritics 2'
);
CREATE TABLE IF NOT EXISTS spaces (
    space_id TEXT PRIMARY KEY, title TEXT NOT NULL, ended_at REAL
);
"""


@dataclass(frozen=True, slots=True)
class Hit:
    """A matching line: seconds into the replay, and its text."""

    start: float
    text: str


@dataclass(slots=True)
class SearchResult:
    """A space whose transcript matches, with its matching lines in time order."""

    space_id: str
    title: str
    ended_at: float | None
    rank: float
    lines: list[Hit] = field(default_factory=list)


class TranscriptIndex:
    """The index of one node (thread-safe: one connection, behind a lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)

    def add(self, space_id: str, title: str, ended_at: float | None, cues: Sequence[Cue]) -> None:
        """Put (or put again) a space's transcript in the index."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                self._db.execute("DELETE FROM lines WHERE space_id = ?", (space_id,))
                self._db.executemany(
                    "INSERT INTO lines (text, space_id, start) VALUES (?, ?, ?)",
                    [(cue.text, space_id, round(cue.start, 3)) for cue in cues],
                )
                self._db.execute(
                    "INSERT OR REPLACE INTO spaces (space_id, title, ended_at) VALUES (?, ?, ?)",
                    (space_id, title, ended_at),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def remove(self, space_id: str) -> None:
        """Forget a space (its recording was removed)."""
        with self._lock:
            self._db.execute("DELETE FROM lines WHERE space_id = ?", (space_id,))
            self._db.execute("DELETE FROM spaces WHERE space_id = ?", (space_id,))

    def indexed(self, space_id: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM spaces WHERE space_id = ?", (space_id,)
            ).fetchone()
        return row is not None

    def search(self, text: str, limit: int = 20) -> list[SearchResult]:
        """The spaces whose transcripts hold every word of `text`, best first (`BadQuery` for
        a text with nothing to search)."""
        match = fts_query(text)
        with self._lock:
            rows = self._db.execute(
                "SELECT l.space_id, l.start, l.text, bm25(lines) AS rank, s.title, s.ended_at "
                "FROM lines AS l JOIN spaces AS s ON s.space_id = l.space_id "
                "WHERE lines MATCH ? ORDER BY rank LIMIT 1000",
                (match,),
            ).fetchall()
        results: dict[str, SearchResult] = {}
        for space_id, start, line, rank, title, ended_at in rows:
            result = results.get(space_id)
            if result is None:
                if len(results) >= limit:
                    continue
                result = results[space_id] = SearchResult(space_id, title, ended_at, rank)
            if len(result.lines) < LINES_PER_SPACE:
                result.lines.append(Hit(float(start), line))
        for result in results.values():
            result.lines.sort(key=lambda hit: hit.start)
        return sorted(results.values(), key=lambda r: r.rank)

    def close(self) -> None:
        with self._lock:
            self._db.close()
