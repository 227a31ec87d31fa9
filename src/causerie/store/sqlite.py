"""The embedded store: one SQLite file in the data directory.

Calls are short and run on the event loop's thread: SQLite in WAL mode commits in well under a
millisecond without fsync on every commit (synchronous=NORMAL keeps the database consistent after
a crash; at most the last transactions before a power loss may be lost, not a process kill).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from ..domain import Conflict, NotFound, Space, SpaceState
from ..domain.questions import Question

SCHEMA = """
CREATE TABLE IF NOT EXISTS spaces (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    sort_key TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS spaces_by_state ON spaces (state, sort_key);
CREATE TABLE IF NOT EXISTS questions (
    space_id TEXT NOT NULL,
    id TEXT NOT NULL,
    votes INTEGER NOT NULL DEFAULT 0,
    body TEXT NOT NULL,
    PRIMARY KEY (space_id, id)
);
CREATE TABLE IF NOT EXISTS votes (
    space_id TEXT NOT NULL,
    question_id TEXT NOT NULL,
    voter TEXT NOT NULL,
    PRIMARY KEY (space_id, question_id, voter)
);
CREATE TABLE IF NOT EXISTS reactions (
    space_id TEXT NOT NULL,
    emoji TEXT NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (space_id, emoji)
);
"""


def _sort_key(space: Space) -> str:
    moment = space.started_at or space.scheduled_start or space.created_at
    return moment.isoformat()


class SqliteStore:
    """`Store` on a SQLite file."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)

    async def create_space(self, space: Space) -> None:
        try:
            self._db.execute(
                "INSERT INTO spaces (id, state, sort_key, version, body) VALUES (?, ?, ?, ?, ?)",
                (space.id, space.state.value, _sort_key(space), space.version, _body(space)),
            )
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"a space with id {space.id!r} exists already") from exc

    async def get_space(self, space_id: str) -> Space:
        row = self._db.execute("SELECT body FROM spaces WHERE id = ?", (space_id,)).fetchone()
        if row is None:
            raise NotFound("no such space")
        return Space.from_dict(json.loads(row[0]))

    async def list_spaces(self, states: Iterable[SpaceState], limit: int = 100) -> list[Space]:
        wanted = [s.value for s in states]
        if not wanted:
            return []
        marks = ",".join("?" * len(wanted))
        rows = self._db.execute(
            f"SELECT body FROM spaces WHERE state IN ({marks})"
            " ORDER BY state = 'live' DESC, sort_key LIMIT ?",
            (*wanted, limit),
        ).fetchall()
        return [Space.from_dict(json.loads(row[0])) for row in rows]

    async def recently_ended(self, limit: int = 50) -> list[Space]:
        rows = self._db.execute(
            "SELECT body FROM spaces WHERE state = 'ended' ORDER BY sort_key DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [Space.from_dict(json.loads(row[0])) for row in rows]

    async def replace_space(self, space: Space, expected_version: int) -> bool:
        space.version = expected_version + 1
        cursor = self._db.execute(
            "UPDATE spaces SET state = ?, sort_key = ?, version = ?, body = ?"
            " WHERE id = ? AND version = ?",
            (
                space.state.value,
                _sort_key(space),
                space.version,
                _body(space),
                space.id,
                expected_version,
            ),
        )
        return cursor.rowcount == 1

    async def add_question(self, question: Question) -> None:
        try:
            self._db.execute(
                "INSERT INTO questions (space_id, id, votes, body) VALUES (?, ?, 0, ?)",
                (question.space_id, question.id, _json(question.to_dict())),
            )
        except sqlite3.IntegrityError as exc:
            raise Conflict("that question exists already") from exc

    async def get_question(self, space_id: str, question_id: str) -> Question:
        row = self._db.execute(
            "SELECT body, votes FROM questions WHERE space_id = ? AND id = ?",
            (space_id, question_id),
        ).fetchone()
        if row is None:
            raise NotFound("no such question")
        return Question.from_dict(json.loads(row[0]), votes=row[1])

    async def list_questions(self, space_id: str) -> list[Question]:
        rows = self._db.execute(
            "SELECT body, votes FROM questions WHERE space_id = ?", (space_id,)
        ).fetchall()
        return [Question.from_dict(json.loads(body), votes=votes) for body, votes in rows]

    async def save_question(self, question: Question) -> None:
        self._db.execute(
            "UPDATE questions SET body = ? WHERE space_id = ? AND id = ?",
            (_json(question.to_dict()), question.space_id, question.id),
        )

    async def add_vote(self, space_id: str, question_id: str, voter: str) -> int | None:
        with self._db:  # one transaction: the vote and the count move together
            self._db.execute("BEGIN IMMEDIATE")
            inserted = self._db.execute(
                "INSERT OR IGNORE INTO votes (space_id, question_id, voter) VALUES (?, ?, ?)",
                (space_id, question_id, voter),
            ).rowcount
            if not inserted:
                return None
            self._db.execute(
                "UPDATE questions SET votes = votes + 1 WHERE space_id = ? AND id = ?",
                (space_id, question_id),
            )
            row = self._db.execute(
                "SELECT votes FROM questions WHERE space_id = ? AND id = ?",
                (space_id, question_id),
            ).fetchone()
        return row[0] if row else None

    async def add_reactions(self, space_id: str, counts: dict[str, int]) -> None:
        self._db.executemany(
            "INSERT INTO reactions (space_id, emoji, count) VALUES (?, ?, ?)"
            " ON CONFLICT (space_id, emoji) DO UPDATE SET count = count + excluded.count",
            [(space_id, emoji, n) for emoji, n in counts.items()],
        )

    async def reaction_totals(self, space_id: str) -> dict[str, int]:
        rows = self._db.execute(
            "SELECT emoji, count FROM reactions WHERE space_id = ?", (space_id,)
        ).fetchall()
        return dict(rows)

    async def close(self) -> None:
        self._db.close()


def _json(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False)


def _body(space: Space) -> str:
    return _json(space.to_dict())
