"""Audit entries: their stored form, the CSV export, and the transparency figures."""

import csv
import io
from datetime import UTC, datetime, timedelta

from causerie.domain.audit import AuditAction, AuditEntry, to_csv
from causerie.domain.reports import Decision, Target, TargetKind, decide, file_report
from causerie.domain.transparency import months_between, summarize

NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)


def entry(action: AuditAction, at: datetime = NOW, role: str = "host", **kw: str) -> AuditEntry:
    return AuditEntry(
        at=at,
        actor="host",
        actor_role=role,
        action=action,
        space_id="s1",
        target="user:l-1",
        **kw,
    )


def test_round_trip_and_csv() -> None:
    made = entry(AuditAction.REMOVE_MEMBER, reason="insults", id="7")
    assert AuditEntry.from_dict(made.to_dict()) == made
    # A reason that a spreadsheet would run as a formula is defused; commas and quotes survive.
    risky = entry(AuditAction.BAN_ACCOUNT, reason='=HYPERLINK("x"), "quoted"', id="8")
    rows = list(csv.reader(io.StringIO(to_csv([made, risky]))))
    assert rows[0][:3] == ["id", "at", "actor"]
    assert rows[1][0] == "7" and rows[1][4] == "remove_member" and rows[1][7] == "insults"
    assert rows[2][7] == '\'=HYPERLINK("x"), "quoted"'
    assert to_csv([], header=False) == ""


def test_transparency_per_month() -> None:
    target = Target("s1", TargetKind.SPEAKER, "l-1")
    nov = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    reports = [
        file_report(target, reason="hate", note=None, reporter=r, now=nov) for r in ("a", "b")
    ]
    decide(reports, Decision.REMOVE_SPEAKER, actor="op", reason="x", now=nov + timedelta(hours=3))
    late = file_report(target, reason="spam", note=None, reporter="c", now=NOW)
    dismissed = file_report(target, reason="spam", note=None, reporter="d", now=NOW)
    decide([dismissed], Decision.DISMISS, actor="op", reason="x", now=NOW + timedelta(hours=1))
    entries = [
        entry(AuditAction.MUTE),
        entry(AuditAction.REMOVE_SPEAKER, role="operator", at=nov + timedelta(hours=3)),
        entry(AuditAction.DISMISS_REPORTS, role="operator"),
    ]
    months = months_between(datetime(2026, 10, 5, tzinfo=UTC), NOW)
    assert months == ["2026-10", "2026-11", "2026-12"]
    dec, nov_m, oct_m = summarize([*reports, late, dismissed], entries, months)
    assert (nov_m.month, nov_m.reports_received, nov_m.reports_by_reason) == (
        "2026-11",
        2,
        {"hate": 2},
    )
    # Received in November, acted on in December (UTC): counted where each happened.
    assert nov_m.reports_actioned == 0 and nov_m.median_seconds_to_action is None
    assert dec.reports_received == 2 and dec.reports_actioned == 2 and dec.reports_dismissed == 1
    assert dec.median_seconds_to_action == 3 * 3600
    assert dec.actions == {"dismiss_reports": 1, "mute": 1, "remove_speaker": 1}
    assert dec.actions_by_operators == 2
    assert oct_m.reports_received == 0 and oct_m.actions == {}
    assert months_between(datetime(2025, 12, 31, tzinfo=UTC), NOW)[:2] == ["2025-12", "2026-01"]
