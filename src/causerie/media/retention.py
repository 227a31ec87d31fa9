"""How long recordings are kept, and within how much disk: what to remove, and removing it.

A node keeps each recording (DATA/recordings/{space}/, recorder.py) for `keep_seconds` after
its space ended (X keeps 30 days; 0: forever), and all of them within `max_bytes` of disk (0:
no bound): when they take more, the recordings of the spaces that ended first go first. A live
recording is never touched, nor one still being finished: when the live recordings alone take
more than the budget, nothing else can be removed, and `Plan.over_budget` says so (the node
logs it and /metrics shows it; they are removed once ended, oldest first, like any other).

`plan` decides, from figures alone (pure: no clock, no disk). The rest reads and changes the
disk and runs in a worker thread. Removing a recording leaves one small file in its directory,
`removed.json` (when, why, and a sentence for people), so its replay answers 410 Gone with
that sentence rather than 404: a link shared last month says what became of it. It is written
first, so a removal interrupted by a crash is finished at the next pass.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from .recorder import INDEX_NAME, SAFE_ID, space_directory

__all__ = [
    "REMOVED_NAME",
    "OnDisk",
    "Plan",
    "Removal",
    "RetentionStatus",
    "Tombstone",
    "measure",
    "plan",
    "remove",
    "takedown_message",
    "tombstone",
]

log = logging.getLogger(__name__)

REMOVED_NAME = "removed.json"
AGE = "age"
BUDGET = "budget"
TAKEDOWN = "takedown"
"""An operator took the recording down after a report (domain/reports.py)."""


@dataclass(frozen=True, slots=True)
class OnDisk:
    """One space's directory of recordings, as measured."""

    space_id: str
    bytes: int
    """Disk it takes (allocated blocks, clips and downloads included)."""
    last_written: float
    """Unix time its index (else the directory) last changed: when recording stopped."""
    removed: bool = False
    """It has a tombstone (and `bytes` is what is left beside it: a removal to finish)."""


@dataclass(frozen=True, slots=True)
class Removal:
    space_id: str
    reason: str
    """`age` (kept long enough) or `budget` (the disk budget needed room)."""


@dataclass(frozen=True)
class Plan:
    """What a pass removes, and what it leaves."""

    removals: list[Removal]
    kept_bytes: int
    """What the recordings left take: the kept ended ones and the live ones."""
    live_bytes: int
    """What the recordings that may not be removed now take (live, or being finished)."""
    over_budget: bool
    """Still over the budget after every removal allowed (the live recordings alone are)."""


def plan(
    recordings: Iterable[OnDisk],
    *,
    ended_at: Mapping[str, float],
    now: float,
    keep_seconds: float,
    max_bytes: int,
) -> Plan:
    """The recordings to remove at `now`.

    `ended_at` gives, for each space whose recording may be removed, when it ended (Unix
    time); a recording of a space not in it (live, or being finished) is never removed.
    First every recording kept `keep_seconds` past its end (0: none), then, while the rest
    take more than `max_bytes` (0: no bound), those that ended first.
    """
    present = [r for r in recordings if not r.removed]
    removals: list[Removal] = []
    kept: list[OnDisk] = []
    for recording in present:
        end = ended_at.get(recording.space_id)
        if end is not None and keep_seconds > 0 and now - end >= keep_seconds:
            removals.append(Removal(recording.space_id, AGE))
        else:
            kept.append(recording)
    total = sum(r.bytes for r in kept)
    live_bytes = sum(r.bytes for r in kept if r.space_id not in ended_at)
    if max_bytes > 0:
        removable = sorted(
            (r for r in kept if r.space_id in ended_at),
            key=lambda r: (ended_at[r.space_id], r.space_id),
        )
        for recording in removable:
            if total <= max_bytes:
                break
            removals.append(Removal(recording.space_id, BUDGET))
            total -= recording.bytes
    return Plan(
        removals=removals,
        kept_bytes=total,
        live_bytes=live_bytes,
        over_budget=max_bytes > 0 and total > max_bytes,
    )


@dataclass
class RetentionStatus:
    """What the last pass found, for /metrics (the node keeps one, its loop updates it)."""

    keep_seconds: float = 0.0
    max_bytes: int = 0
    bytes: int = 0
    recordings: int = 0
    live_bytes: int = 0
    over_budget: bool = False
    removed: dict[str, int] = field(default_factory=lambda: {AGE: 0, BUDGET: 0, TAKEDOWN: 0})
    """Recordings removed since the node started, by reason (counters)."""


# The disk (blocking: run these in a worker thread)


def measure(root: Path) -> list[OnDisk]:
    """Every space directory under `root` (DATA/recordings), with what it takes."""
    found: list[OnDisk] = []
    try:
        entries = list(os.scandir(root))
    except FileNotFoundError:
        return []
    for entry in entries:
        if not (entry.is_dir(follow_symlinks=False) and SAFE_ID.fullmatch(entry.name)):
            continue
        directory = Path(entry.path)
        removed = (directory / REMOVED_NAME).is_file()
        size = _disk_usage(directory, skip=REMOVED_NAME if removed else None)
        try:
            written = (directory / INDEX_NAME).stat().st_mtime
        except FileNotFoundError:
            written = entry.stat(follow_symlinks=False).st_mtime
        found.append(OnDisk(entry.name, size, written, removed))
    return found


def _disk_usage(directory: Path, skip: str | None) -> int:
    total = 0
    for folder, _, files in os.walk(directory):
        for name in files:
            if skip is not None and name == skip and folder == str(directory):
                continue
            # A file may go meanwhile (a clip's partial file renamed, say).
            with contextlib.suppress(FileNotFoundError):
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
    return total


@dataclass(frozen=True)
class Tombstone:
    """What is left of a removed recording: when, why, and what to tell people."""

    removed_at: datetime
    reason: str
    message: str


def takedown_message(taken_down_at: datetime) -> str:
    """The sentence a replay taken down by an operator answers with (410). The operator's own
    reason stays in the audit log: it may name people."""
    day = taken_down_at.strftime("%Y-%m-%d")
    return f"the recording of this space was taken down on {day} by this server's operators"


def removal_message(reason: str, removed_at: datetime, keep_seconds: float) -> str:
    """The sentence a removed recording's replay answers with (410)."""
    day = removed_at.strftime("%Y-%m-%d")
    if reason == TAKEDOWN:
        return takedown_message(removed_at)
    if reason == AGE:
        days = keep_seconds / 86400
        kept = f"{days:g} days" if days >= 1 else f"{keep_seconds:g} seconds"
        return f"the recording of this space was removed on {day}: this server keeps them {kept}"
    return (
        f"the recording of this space was removed on {day} to keep recordings within this "
        "server's disk budget"
    )


def remove(root: Path, space_id: str, stone: Tombstone) -> int:
    """Remove a space's recording, leaving its tombstone; the bytes freed. Idempotent."""
    directory = space_directory(root, space_id)
    if not directory.is_dir():
        return 0
    before = _disk_usage(directory, skip=REMOVED_NAME)
    body = {
        "removed_at": stone.removed_at.isoformat(),
        "reason": stone.reason,
        "message": stone.message,
    }
    # The tombstone first (written whole, then renamed), so that from now on the replay says
    # 410, and an interrupted removal is seen and finished at the next pass.
    if not (directory / REMOVED_NAME).is_file():
        partial = directory / f".{REMOVED_NAME}.part"
        partial.write_text(json.dumps(body) + "\n", encoding="utf-8")
        os.replace(partial, directory / REMOVED_NAME)
    # Then the index, which is what says a recording exists (views.replay_links), then the rest.
    (directory / INDEX_NAME).unlink(missing_ok=True)
    for entry in os.scandir(directory):
        if entry.name == REMOVED_NAME:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            Path(entry.path).unlink(missing_ok=True)
    return before - _disk_usage(directory, skip=REMOVED_NAME)


def tombstone(root: Path, space_id: str) -> Tombstone | None:
    """The tombstone of a removed recording, or None (never removed, or an unreadable one)."""
    path = space_directory(root, space_id) / REMOVED_NAME  # ValueError for a bad id
    try:
        body = json.loads(path.read_text("utf-8"))
        return Tombstone(
            removed_at=datetime.fromisoformat(body["removed_at"]).astimezone(UTC),
            reason=str(body["reason"]),
            message=str(body["message"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        # Damaged (a disk error): the recording is gone all the same.
        log.warning("space %s: unreadable %s", space_id, REMOVED_NAME)
        return Tombstone(datetime.now(UTC), "unknown", "the recording of this space was removed")
