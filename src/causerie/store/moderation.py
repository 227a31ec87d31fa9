"""What moderation needs from storage: reports, the audit log and bans. Two implementations,
SQLite (store/sqlite_moderation.py) and Redis (store/redis_moderation.py), tested alike.

The audit log can only be appended to and read: this protocol has no way to change or remove
an entry, and each implementation refuses it underneath too (tests/store/test_moderation.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from ..domain.audit import AuditEntry
from ..domain.reports import Report

AUDIT_PAGE_MAX = 1000
"""The most audit entries one read returns."""


class ModerationStore(Protocol):
    """Reports, the append-only audit log, and banned accounts."""

    async def add_report(self, report: Report) -> tuple[Report, bool]:
        """Save a new open report, unless its reporter has an open report of the same target:
        then that one. The report kept, and whether it is new."""

    async def get_report(self, ref: str) -> Report:
        """The report with this reference, or `NotFound`."""

    async def open_reports(self, limit: int = 1000) -> list[Report]:
        """Open reports, oldest first."""

    async def open_count(self) -> int:
        """How many reports are open (for the operator's console)."""

    async def open_reports_of(self, target_key: str) -> list[Report]:
        """The open reports of one target (`Target.key`), oldest first."""

    async def close_reports(self, reports: list[Report]) -> list[Report]:
        """Save the decisions on `reports` (decided by the domain): only those still open in
        the store are changed, and returned (another operator may have decided first)."""

    async def reports_since(self, since: datetime, limit: int = 100_000) -> list[Report]:
        """Reports received at or after `since`, oldest first (the transparency figures)."""

    async def append_audit(self, entry: AuditEntry) -> AuditEntry:
        """Append an entry to the audit log; the entry with its id (increasing)."""

    async def audit(self, after: str = "", limit: int = 100) -> list[AuditEntry]:
        """Audit entries after the one with id `after` ("" for the first), oldest first."""

    async def latest_audit(self, limit: int = 20) -> list[AuditEntry]:
        """The `limit` newest audit entries, newest first (what the console shows)."""

    async def ban(self, subject: str) -> bool:
        """Ban an account (a user id); False if it was banned already."""

    async def banned(self) -> set[str]:
        """Every banned account."""

    async def close(self) -> None:
        """Release connections and files."""
