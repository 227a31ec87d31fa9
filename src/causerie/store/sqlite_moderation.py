"""Moderation in the embedded store: the same SQLite file as the spaces (so `causerie backup`
copies it with them), on a connection of its own.

The audit table refuses every UPDATE, DELETE and replacing INSERT with triggers (RAISE(ABORT),
SQLite's "CREATE TRIGGER"): whatever code runs against the file, an entry once written stays as
written. The table is never dropped by causerie; retention of recordings touches files, never
this table.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from ..domain import Invalid, NotFound
from ..domain.audit import AuditEntry
from ..domain.reports import Report, ReportState
from .moderation import AUDIT_PAGE_MAX

SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    ref TEXT PRIMARY KEY,
    target_key TEXT NOT NULL,
    reporter TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_by_state ON reports (state, created_at);
CREATE INDEX IF NOT EXISTS reports_by_target ON reports (target_key, state);
CREATE INDEX IF NOT EXISTS reports_by_time ON reports (created_at);
-- One open report per reporter and target: a repeat finds this one (dedupe).
CREATE UNIQUE INDEX IF NOT EXISTS reports_open_once
    ON reports (reporter, target_key) WHERE state = 'open';
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
-- INSERT OR REPLACE deletes the row it replaces without firing DELETE triggers (unless
-- recursive_triggers is on: SQLite "ON CONFLICT", REPLACE): an insert may not reuse an id.
CREATE TRIGGER IF NOT EXISTS audit_no_replace BEFORE INSERT ON audit
WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM audit WHERE id = NEW.id)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TABLE IF NOT EXISTS bans (
    subject TEXT PRIMARY KEY
);
"""


class SqliteModeration:
    """`ModerationStore` on the node's SQLite file."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)

    # -- reports -----------------------------------------------------------------------------

    async def add_report(self, report: Report) -> tuple[Report, bool]:
        with self._db:  # one transaction: the check and the insert
            self._db.execute("BEGIN IMMEDIATE")
            row = self._db.execute(
                "SELECT body FROM reports WHERE reporter = ? AND target_key = ? AND state = 'open'",
                (report.reporter, report.target.key),
            ).fetchone()
            if row is not None:
                return Report.from_dict(json.loads(row[0])), False
            self._db.execute(
                "INSERT INTO reports (ref, target_key, reporter, state, created_at, body)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    report.ref,
                    report.target.key,
                    report.reporter,
                    report.state.value,
                    _time(report.created_at),
                    _json(report.to_dict()),
                ),
            )
        return report, True

    async def get_report(self, ref: str) -> Report:
        row = self._db.execute("SELECT body FROM reports WHERE ref = ?", (ref,)).fetchone()
        if row is None:
            raise NotFound("no such report")
        return Report.from_dict(json.loads(row[0]))

    async def open_reports(self, limit: int = 1000) -> list[Report]:
        return self._reports(
            "SELECT body FROM reports WHERE state = 'open' ORDER BY created_at, ref LIMIT ?",
            (limit,),
        )

    async def open_count(self) -> int:
        return self._db.execute("SELECT count(*) FROM reports WHERE state = 'open'").fetchone()[0]

    async def open_reports_of(self, target_key: str) -> list[Report]:
        return self._reports(
            "SELECT body FROM reports WHERE target_key = ? AND state = 'open'"
            " ORDER BY created_at, ref",
            (target_key,),
        )

    async def close_reports(self, reports: list[Report]) -> list[Report]:
        closed = []
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for report in reports:
                if report.state is ReportState.OPEN:
                    continue
                changed = self._db.execute(
                    "UPDATE reports SET state = ?, body = ? WHERE ref = ? AND state = 'open'",
                    (report.state.value, _json(report.to_dict()), report.ref),
                ).rowcount
                if changed:
                    closed.append(report)
        return closed

    async def reports_since(self, since: datetime, limit: int = 100_000) -> list[Report]:
        return self._reports(
            "SELECT body FROM reports WHERE created_at >= ? ORDER BY created_at, ref LIMIT ?",
            (_time(since), limit),
        )

    def _reports(self, sql: str, args: tuple) -> list[Report]:
        return [Report.from_dict(json.loads(b)) for (b,) in self._db.execute(sql, args)]

    # -- the audit log -----------------------------------------------------------------------

    async def append_audit(self, entry: AuditEntry) -> AuditEntry:
        body = entry.to_dict()
        del body["id"]  # the row's id is the entry's
        cursor = self._db.execute(
            "INSERT INTO audit (at, body) VALUES (?, ?)", (_time(entry.at), _json(body))
        )
        return AuditEntry.from_dict(body, str(cursor.lastrowid))

    async def audit(self, after: str = "", limit: int = 100) -> list[AuditEntry]:
        try:
            start = int(after) if after else 0
        except ValueError:
            raise Invalid("after: not an audit entry id") from None
        rows = self._db.execute(
            "SELECT id, body FROM audit WHERE id > ? ORDER BY id LIMIT ?",
            (start, min(limit, AUDIT_PAGE_MAX)),
        ).fetchall()
        return [AuditEntry.from_dict(json.loads(body), str(i)) for i, body in rows]

    async def latest_audit(self, limit: int = 20) -> list[AuditEntry]:
        rows = self._db.execute(
            "SELECT id, body FROM audit ORDER BY id DESC LIMIT ?", (min(limit, AUDIT_PAGE_MAX),)
        ).fetchall()
        return [AuditEntry.from_dict(json.loads(body), str(i)) for i, body in rows]

    # -- bans --------------------------------------------------------------------------------

    async def ban(self, subject: str) -> bool:
        return bool(
            self._db.execute("INSERT OR IGNORE INTO bans (subject) VALUES (?)", (subject,)).rowcount
        )

    async def banned(self) -> set[str]:
        return {s for (s,) in self._db.execute("SELECT subject FROM bans")}

    async def close(self) -> None:
        self._db.close()


def _json(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False)


def _time(moment: datetime) -> str:
    # ISO text in UTC sorts as time does (the domain's moments are aware).
    return moment.astimezone(UTC).isoformat()
