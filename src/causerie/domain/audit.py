"""The audit log: every moderation act, by hosts and operators alike, kept for good.

An entry says who did what, to whom, when and why. Entries are only ever added: the stores
have no way to change or remove one (SQLite refuses it with triggers, Redis keeps them in a
stream nothing trims), and nothing else in the node, recordings' retention included, touches
them. Pure: the time is passed in.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any


class AuditAction(StrEnum):
    """The acts that are logged. Hosts' acts come from the stage and question controls;
    operators' from deciding reports."""

    MUTE = "mute"
    UNMUTE = "unmute"
    MOVE_TO_AUDIENCE = "move_to_audience"
    REMOVE_MEMBER = "remove_member"
    HIDE_QUESTION = "hide_question"
    SHOW_QUESTION = "show_question"
    END_SPACE = "end_space"
    DISMISS_REPORTS = "dismiss_reports"
    REMOVE_SPEAKER = "remove_speaker"
    TAKE_DOWN_REPLAY = "take_down_replay"
    BAN_ACCOUNT = "ban_account"


@dataclass(frozen=True)
class AuditEntry:
    """One moderation act."""

    at: datetime
    actor: str
    """The user id of whoever acted."""
    actor_role: str
    """Their role when they acted: host, cohost or operator."""
    action: AuditAction
    space_id: str
    target: str
    """Whom or what it was done to: `user:{id}`, `question:{id}` or `space:{id}`."""
    reason: str = ""
    """Why (operators must say; hosts may)."""
    report_ref: str = ""
    """The report it answered, if any (the group's first)."""
    id: str = ""
    """Given by the store when the entry is appended: increasing, the paging cursor."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (the store's, and the export's)."""
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "actor": self.actor,
            "actor_role": self.actor_role,
            "action": self.action.value,
            "space_id": self.space_id,
            "target": self.target,
            "reason": self.reason,
            "report_ref": self.report_ref,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], entry_id: str = "") -> AuditEntry:
        """The inverse of `to_dict`; `entry_id` is the store's id when the body has none."""
        return cls(
            id=entry_id or data.get("id", ""),
            at=datetime.fromisoformat(data["at"]),
            actor=data["actor"],
            actor_role=data["actor_role"],
            action=AuditAction(data["action"]),
            space_id=data["space_id"],
            target=data["target"],
            reason=data.get("reason", ""),
            report_ref=data.get("report_ref", ""),
        )


CSV_COLUMNS = (
    "id",
    "at",
    "actor",
    "actor_role",
    "action",
    "space_id",
    "target",
    "reason",
    "report_ref",
)

# A cell starting with one of these is read as a formula by spreadsheets (CSV injection,
# OWASP): reasons are typed by people, so such cells are prefixed with an apostrophe.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def to_csv(entries: Iterable[AuditEntry], *, header: bool = True) -> str:
    """The entries as CSV (RFC 4180), one row each, safe to open in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    for entry in entries:
        row = entry.to_dict()
        writer.writerow([_cell(str(row[column])) for column in CSV_COLUMNS])
    return out.getvalue()
