"""The public transparency figures: per month, reports received, actions taken, time to act.

Counted from the reports and the audit log alone (no personal data leaves): how many reports
came in each month and for which reasons, how many moderation acts were done (by hosts and
operators, by kind), how many reports were dismissed, and the median time from a report to
the operator's action on it (reports acted on that month). Pure: the months are given.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from .audit import AuditEntry
from .reports import Report, ReportState


def month_of(moment: datetime) -> str:
    """`YYYY-MM` of an aware moment, in UTC."""
    return _utc(moment).strftime("%Y-%m")


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


@dataclass
class Month:
    """One month's figures."""

    month: str
    reports_received: int = 0
    reports_by_reason: dict[str, int] = field(default_factory=dict)
    reports_dismissed: int = 0
    reports_actioned: int = 0
    actions: dict[str, int] = field(default_factory=dict)
    """Moderation acts logged that month, by kind (hosts' and operators')."""
    actions_by_operators: int = 0
    median_seconds_to_action: float | None = None
    """From a report to the operator's action on it, over the reports actioned that month."""


def months_between(first: datetime, last: datetime) -> list[str]:
    """Every `YYYY-MM` from `first`'s month to `last`'s, oldest first."""
    first, last = _utc(first), _utc(last)
    year, month = first.year, first.month
    months = []
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def summarize(
    reports: Iterable[Report], entries: Iterable[AuditEntry], months: list[str]
) -> list[Month]:
    """The figures of each of `months` (newest first), from every report and audit entry."""
    wanted = {m: Month(m) for m in months}
    reasons: dict[str, Counter[str]] = {m: Counter() for m in months}
    delays: dict[str, list[float]] = {m: [] for m in months}
    acts: dict[str, Counter[str]] = {m: Counter() for m in months}
    for report in reports:
        received = wanted.get(month_of(report.created_at))
        if received is not None:
            received.reports_received += 1
            reasons[received.month][report.reason.value] += 1
        if report.decided_at is None:
            continue
        decided = wanted.get(month_of(report.decided_at))
        if decided is None:
            continue
        if report.state is ReportState.DISMISSED:
            decided.reports_dismissed += 1
        elif report.state is ReportState.ACTIONED:
            decided.reports_actioned += 1
            delays[decided.month].append((report.decided_at - report.created_at).total_seconds())
    for entry in entries:
        month = wanted.get(month_of(entry.at))
        if month is None:
            continue
        acts[month.month][entry.action.value] += 1
        if entry.actor_role == "operator":
            month.actions_by_operators += 1
    for name, month in wanted.items():
        month.reports_by_reason = dict(sorted(reasons[name].items()))
        month.actions = dict(sorted(acts[name].items()))
        if delays[name]:
            month.median_seconds_to_action = statistics.median(delays[name])
    return sorted(wanted.values(), key=lambda m: m.month, reverse=True)
