"""Reports from the audience, and what operators decide about them (notice and action).

A listener reports a space, a question or a speaker with a reason from a short list and an
optional note; they get a reference (`ref`) to quote. The same person reporting the same thing
again while their report is open gets that same report back (`dedupe_key`): one report per
person and target, however often the button is pressed. Operators see the open reports grouped
per target (`queue`): ten people reporting one speaker are one line with a count, not ten.

An operator decides a whole group at once: dismiss it, or act (hide the question, remove the
speaker, end the space, take its replay down, ban an account); every decision needs a reason,
which goes to the audit log (audit.py). Pure: no I/O, the time is passed in.
"""

from __future__ import annotations

import secrets
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from .errors import Conflict, Invalid, NotFound
from .questions import Question
from .spaces import Space
from .text import clean_text

NOTE_MAX = 500
"""The longest note a reporter may add (characters)."""
DECISION_REASON_MAX = 500
"""The longest reason an operator may give for a decision."""


class ReportReason(StrEnum):
    """Why something is reported: short, so that the queue can be sorted at a glance."""

    SPAM = "spam"
    HARASSMENT = "harassment"
    HATE = "hate"
    VIOLENCE = "violence"
    ILLEGAL = "illegal"
    OTHER = "other"


REASON_LABELS: dict[ReportReason, str] = {
    ReportReason.SPAM: "Spam or scam",
    ReportReason.HARASSMENT: "Harassment or bullying",
    ReportReason.HATE: "Hate speech",
    ReportReason.VIOLENCE: "Violence or threats",
    ReportReason.ILLEGAL: "Illegal content",
    ReportReason.OTHER: "Something else",
}
"""What each reason is called on the pages."""


class TargetKind(StrEnum):
    """What a report is about."""

    SPACE = "space"
    QUESTION = "question"
    SPEAKER = "speaker"


class ReportState(StrEnum):
    """open -> dismissed (nothing to do) or actioned (an operator acted on it)."""

    OPEN = "open"
    DISMISSED = "dismissed"
    ACTIONED = "actioned"


class Decision(StrEnum):
    """What an operator may do about a reported target."""

    DISMISS = "dismiss"
    HIDE_QUESTION = "hide_question"
    REMOVE_SPEAKER = "remove_speaker"
    END_SPACE = "end_space"
    TAKE_DOWN_REPLAY = "take_down_replay"
    BAN_ACCOUNT = "ban_account"


# Which decisions fit which target. Ending the space or taking its replay down fits anything
# reported in it; a ban falls on the speaker, the question's author or the space's host.
DECISIONS: dict[TargetKind, frozenset[Decision]] = {
    TargetKind.SPACE: frozenset(
        {Decision.DISMISS, Decision.END_SPACE, Decision.TAKE_DOWN_REPLAY, Decision.BAN_ACCOUNT}
    ),
    TargetKind.QUESTION: frozenset(
        {
            Decision.DISMISS,
            Decision.HIDE_QUESTION,
            Decision.END_SPACE,
            Decision.TAKE_DOWN_REPLAY,
            Decision.BAN_ACCOUNT,
        }
    ),
    TargetKind.SPEAKER: frozenset(
        {
            Decision.DISMISS,
            Decision.REMOVE_SPEAKER,
            Decision.END_SPACE,
            Decision.TAKE_DOWN_REPLAY,
            Decision.BAN_ACCOUNT,
        }
    ),
}


@dataclass(frozen=True)
class Target:
    """One reportable thing: a space, a question of a space, or someone on a space's stage."""

    space_id: str
    kind: TargetKind
    id: str
    """The space's id (a space), the question's id, or the speaker's user id."""

    @property
    def key(self) -> str:
        """The same text for every report of this very thing (how the queue groups them)."""
        if self.kind is TargetKind.SPACE:
            return f"space:{self.space_id}"
        return f"{self.kind.value}:{self.space_id}:{self.id}"


@dataclass
class Report:
    """One person's report of one target, and what became of it."""

    ref: str
    target: Target
    reason: ReportReason
    note: str
    reporter: str
    """The reporter's user id (a listener's or an account's): never shown to the reported."""
    created_at: datetime
    state: ReportState = ReportState.OPEN
    decided_at: datetime | None = None
    decision: Decision | None = None
    decided_by: str = ""
    decision_reason: str = ""

    @property
    def dedupe_key(self) -> str:
        """One open report per reporter and target: a repeat gets this one back."""
        return dedupe_key(self.reporter, self.target)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for stores."""
        return {
            "ref": self.ref,
            "space_id": self.target.space_id,
            "kind": self.target.kind.value,
            "target_id": self.target.id,
            "reason": self.reason.value,
            "note": self.note,
            "reporter": self.reporter,
            "created_at": self.created_at.isoformat(),
            "state": self.state.value,
            "decided_at": self.decided_at.isoformat() if self.decided_at else None,
            "decision": self.decision.value if self.decision else None,
            "decided_by": self.decided_by,
            "decision_reason": self.decision_reason,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """The inverse of `to_dict`."""
        return cls(
            ref=data["ref"],
            target=Target(data["space_id"], TargetKind(data["kind"]), data["target_id"]),
            reason=ReportReason(data["reason"]),
            note=data["note"],
            reporter=data["reporter"],
            created_at=datetime.fromisoformat(data["created_at"]),
            state=ReportState(data["state"]),
            decided_at=datetime.fromisoformat(data["decided_at"]) if data["decided_at"] else None,
            decision=Decision(data["decision"]) if data["decision"] else None,
            decided_by=data["decided_by"],
            decision_reason=data["decision_reason"],
        )


def dedupe_key(reporter: str, target: Target) -> str:
    """The key under which a reporter's open report of `target` is found again."""
    return f"{reporter}|{target.key}"


def new_ref() -> str:
    """A report's reference: short enough to read out, random enough not to guess (60 bits)."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: people copy it by hand
    return "R-" + "".join(secrets.choice(alphabet) for _ in range(12))


def parse_reason(value: str) -> ReportReason:
    """The reason named `value`, or `Invalid` listing the reasons on offer."""
    try:
        return ReportReason(value)
    except ValueError:
        options = ", ".join(r.value for r in ReportReason)
        raise Invalid(f"unknown reason {value!r}; use one of {options}") from None


def clean_note(note: str | None, reason: ReportReason) -> str:
    """The note, trimmed. Optional, but if sent it must say something; `other` needs one."""
    if note is None:
        if reason is ReportReason.OTHER:
            raise Invalid("a report for another reason needs a note saying what is wrong")
        return ""
    return clean_text(note, field="note", max_length=NOTE_MAX, multiline=True)


def target_of(
    space: Space, kind: TargetKind, target_id: str | None, question: Question | None = None
) -> Target:
    """The target a listener names in `space`; `NotFound` if there is no such thing.

    A question is looked up by the caller (the store) and passed in; a speaker must be on the
    space's stage (the host included): only what the audience hears can be reported.
    """
    if kind is TargetKind.SPACE:
        if target_id not in (None, "", space.id):
            raise NotFound("a report of a space names no other id than the space's")
        return Target(space.id, kind, space.id)
    if not target_id:
        raise Invalid(f"a report of a {kind.value} needs the {kind.value}'s id")
    if kind is TargetKind.QUESTION:
        if question is None or question.space_id != space.id or question.id != target_id:
            raise NotFound("no such question in this space")
        return Target(space.id, kind, target_id)
    if target_id not in space.members:
        raise NotFound("no such speaker in this space")
    return Target(space.id, kind, target_id)


def file_report(
    target: Target,
    *,
    reason: str,
    note: str | None,
    reporter: str,
    now: datetime,
    ref: str | None = None,
) -> Report:
    """A new open report, its input checked (`Invalid` for an unknown reason or a bad note)."""
    why = parse_reason(reason)
    return Report(
        ref=ref or new_ref(),
        target=target,
        reason=why,
        note=clean_note(note, why),
        reporter=reporter,
        created_at=now,
    )


# -- the queue ---------------------------------------------------------------------------------


@dataclass
class ReportGroup:
    """Every open report of one target: what an operator decides about, at once."""

    target: Target
    reports: list[Report] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.reports)

    @property
    def reasons(self) -> dict[str, int]:
        """How many reports give each reason, most given first."""
        return dict(Counter(r.reason.value for r in self.reports).most_common())

    @property
    def first_at(self) -> datetime:
        return min(r.created_at for r in self.reports)

    @property
    def last_at(self) -> datetime:
        return max(r.created_at for r in self.reports)


def queue(reports: list[Report]) -> list[ReportGroup]:
    """The open reports grouped per target: most reported first, then the longest waiting."""
    groups: dict[str, ReportGroup] = {}
    for report in reports:
        if report.state is not ReportState.OPEN:
            continue
        group = groups.setdefault(report.target.key, ReportGroup(report.target))
        group.reports.append(report)
    for group in groups.values():
        group.reports.sort(key=lambda r: (r.created_at, r.ref))
    return sorted(groups.values(), key=lambda g: (-g.count, g.first_at, g.target.key))


# -- decisions ---------------------------------------------------------------------------------


def parse_decision(value: str, kind: TargetKind) -> Decision:
    """The decision named `value`, if it fits a target of `kind`; else `Invalid`."""
    try:
        decision = Decision(value)
    except ValueError:
        options = ", ".join(d.value for d in Decision)
        raise Invalid(f"unknown action {value!r}; use one of {options}") from None
    if decision not in DECISIONS[kind]:
        fits = ", ".join(sorted(d.value for d in DECISIONS[kind]))
        raise Invalid(f"{decision.value} does not apply to a reported {kind.value}; use {fits}")
    return decision


def clean_decision_reason(reason: str) -> str:
    """Every decision gives its reason (it goes to the audit log and to the transparency
    figures): never empty."""
    return clean_text(reason, field="reason", max_length=DECISION_REASON_MAX, multiline=True)


def decide(
    reports: list[Report], decision: Decision, *, actor: str, reason: str, now: datetime
) -> list[Report]:
    """Close the open reports of one target with `decision`; the reports closed.

    `Conflict` if none is open any more (another operator decided first).
    """
    why = clean_decision_reason(reason)
    still_open = [r for r in reports if r.state is ReportState.OPEN]
    if not still_open:
        raise Conflict("these reports were decided already")
    if len({r.target.key for r in still_open}) != 1:
        raise ValueError("a decision covers the reports of one target")
    state = ReportState.DISMISSED if decision is Decision.DISMISS else ReportState.ACTIONED
    for report in still_open:
        report.state = state
        report.decision = decision
        report.decided_at = now
        report.decided_by = actor
        report.decision_reason = why
    return still_open


def ban_subject(target: Target, space: Space, question: Question | None = None) -> str:
    """Whose account a ban for `target` falls on: the speaker, the question's author, or the
    space's host."""
    if target.kind is TargetKind.SPEAKER:
        return target.id
    if target.kind is TargetKind.QUESTION:
        if question is None:
            raise NotFound("no such question in this space")
        return question.author_id
    return space.host_id
