"""Reports: targets, reasons, notes, the queue grouped per target, decisions."""

from datetime import UTC, datetime, timedelta

import pytest

from causerie.domain import Conflict, Invalid, NotFound, Space
from causerie.domain.questions import Question
from causerie.domain.reports import (
    NOTE_MAX,
    Decision,
    Report,
    ReportState,
    Target,
    TargetKind,
    ban_subject,
    decide,
    file_report,
    new_ref,
    parse_decision,
    queue,
    target_of,
)

NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)


def space() -> Space:
    s = Space.create(space_id="s1", host_id="host", host_name="Hana", title="Talk", now=NOW)
    s.start("host", NOW)
    s.request_to_speak("l-1", "Lou", NOW)
    s.answer_request("host", "l-1", approve=True)
    return s


def question(author: str = "l-2") -> Question:
    return Question("q1", "s1", author, "Al", "Why?", NOW)


def report(target: Target, reporter: str, minutes: int = 0, reason: str = "spam") -> Report:
    return file_report(
        target, reason=reason, note=None, reporter=reporter, now=NOW + timedelta(minutes=minutes)
    )


def test_targets_must_exist() -> None:
    s = space()
    assert target_of(s, TargetKind.SPACE, None).key == "space:s1"
    assert target_of(s, TargetKind.QUESTION, "q1", question()).key == "question:s1:q1"
    assert target_of(s, TargetKind.SPEAKER, "l-1").key == "speaker:s1:l-1"
    assert target_of(s, TargetKind.SPEAKER, "host").id == "host"  # the host is heard too
    with pytest.raises(NotFound):
        target_of(s, TargetKind.SPEAKER, "l-9")  # not on stage
    with pytest.raises(NotFound):
        target_of(s, TargetKind.QUESTION, "q2", None)
    with pytest.raises(NotFound):
        target_of(s, TargetKind.QUESTION, "q2", question())  # another question than named
    with pytest.raises(NotFound):
        target_of(s, TargetKind.SPACE, "other")
    with pytest.raises(Invalid):
        target_of(s, TargetKind.SPEAKER, "")


def test_reasons_and_notes() -> None:
    target = Target("s1", TargetKind.SPACE, "s1")
    made = file_report(target, reason="hate", note="  slurs at 12:03 ", reporter="l-5", now=NOW)
    assert (made.reason.value, made.note, made.state) == (
        "hate",
        "slurs at 12:03",
        ReportState.OPEN,
    )
    assert made.ref.startswith("R-") and len(made.ref) == 14
    assert file_report(target, reason="spam", note=None, reporter="x", now=NOW).note == ""
    with pytest.raises(Invalid, match="unknown reason 'rude'"):
        file_report(target, reason="rude", note=None, reporter="x", now=NOW)
    with pytest.raises(Invalid, match="note must not be empty"):
        file_report(target, reason="spam", note="   ", reporter="x", now=NOW)
    with pytest.raises(Invalid, match="note is too long"):
        file_report(target, reason="spam", note="x" * (NOTE_MAX + 1), reporter="x", now=NOW)
    with pytest.raises(Invalid, match="needs a note"):
        file_report(target, reason="other", note=None, reporter="x", now=NOW)
    with pytest.raises(Invalid, match="control character"):
        file_report(target, reason="spam", note="a\x00b", reporter="x", now=NOW)
    assert len({new_ref() for _ in range(100)}) == 100


def test_round_trip() -> None:
    made = report(Target("s1", TargetKind.SPEAKER, "l-1"), "l-5")
    assert Report.from_dict(made.to_dict()) == made
    decide([made], Decision.REMOVE_SPEAKER, actor="op", reason="abuse", now=NOW)
    assert Report.from_dict(made.to_dict()) == made


def test_queue_groups_per_target_most_reported_first() -> None:
    speaker = Target("s1", TargetKind.SPEAKER, "l-1")
    other = Target("s1", TargetKind.QUESTION, "q1")
    reports = [
        report(other, "a", 0),
        report(speaker, "b", 1, "hate"),
        report(speaker, "c", 2, "hate"),
        report(speaker, "d", 3, "spam"),
    ]
    closed = report(Target("s2", TargetKind.SPACE, "s2"), "e")
    decide([closed], Decision.DISMISS, actor="op", reason="fine", now=NOW)
    groups = queue([*reports, closed])
    assert [(g.target.key, g.count) for g in groups] == [
        ("speaker:s1:l-1", 3),
        ("question:s1:q1", 1),
    ]
    assert groups[0].reasons == {"hate": 2, "spam": 1}
    assert groups[0].first_at == NOW + timedelta(minutes=1)
    assert groups[0].last_at == NOW + timedelta(minutes=3)


def test_decisions_fit_targets_and_need_a_reason() -> None:
    assert parse_decision("hide_question", TargetKind.QUESTION) is Decision.HIDE_QUESTION
    with pytest.raises(Invalid, match="does not apply"):
        parse_decision("hide_question", TargetKind.SPEAKER)
    with pytest.raises(Invalid, match="does not apply"):
        parse_decision("remove_speaker", TargetKind.SPACE)
    with pytest.raises(Invalid, match="unknown action"):
        parse_decision("nuke", TargetKind.SPACE)
    reports = [report(Target("s1", TargetKind.SPACE, "s1"), r) for r in ("a", "b")]
    with pytest.raises(Invalid, match="reason must not be empty"):
        decide(reports, Decision.END_SPACE, actor="op", reason=" ", now=NOW)
    later = NOW + timedelta(hours=1)
    closed = decide(reports, Decision.END_SPACE, actor="op", reason="incitement", now=later)
    assert [r.state for r in closed] == [ReportState.ACTIONED] * 2
    assert closed[0].decided_at == later and closed[0].decision_reason == "incitement"
    with pytest.raises(Conflict):
        decide(reports, Decision.DISMISS, actor="op2", reason="late", now=later)
    dismissed = decide(
        [report(Target("s1", TargetKind.SPACE, "s1"), "c")],
        Decision.DISMISS,
        actor="op",
        reason="not abusive",
        now=later,
    )
    assert dismissed[0].state is ReportState.DISMISSED


def test_who_a_ban_falls_on() -> None:
    s = space()
    assert ban_subject(Target("s1", TargetKind.SPEAKER, "l-1"), s) == "l-1"
    assert ban_subject(Target("s1", TargetKind.QUESTION, "q1"), s, question("l-7")) == "l-7"
    assert ban_subject(Target("s1", TargetKind.SPACE, "s1"), s) == "host"
