"""Retention of recordings: the plan (pure: ages, the disk budget, live ones) and the disk."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from causerie.media import retention
from causerie.media.recorder import INDEX_NAME
from causerie.media.retention import OnDisk, Removal, Tombstone

DAY = 86400.0
NOW = 1_800_000_000.0
KEEP = 30 * DAY


def on_disk(space_id: str, size: int = 100) -> OnDisk:
    return OnDisk(space_id, size, NOW - DAY)


def test_a_recording_is_removed_once_kept_its_time_and_not_a_second_before():
    recordings = [on_disk("old"), on_disk("young"), on_disk("exact")]
    ended = {"old": NOW - KEEP - 1, "young": NOW - KEEP + 1, "exact": NOW - KEEP}
    plan = retention.plan(recordings, ended_at=ended, now=NOW, keep_seconds=KEEP, max_bytes=0)
    assert plan.removals == [Removal("old", "age"), Removal("exact", "age")]
    assert plan.kept_bytes == 100
    assert not plan.over_budget


def test_keeping_forever_and_no_budget_remove_nothing():
    recordings = [on_disk("a", 10**12)]
    plan = retention.plan(recordings, ended_at={"a": 0.0}, now=NOW, keep_seconds=0, max_bytes=0)
    assert plan.removals == []
    assert plan.kept_bytes == 10**12


def test_over_budget_the_recordings_that_ended_first_go_first_until_it_fits():
    recordings = [on_disk("b", 300), on_disk("a", 300), on_disk("c", 300), on_disk("live", 300)]
    ended = {"a": NOW - 3 * DAY, "b": NOW - 2 * DAY, "c": NOW - DAY}  # "live" is not ended
    plan = retention.plan(recordings, ended_at=ended, now=NOW, keep_seconds=KEEP, max_bytes=700)
    assert plan.removals == [Removal("a", "budget"), Removal("b", "budget")]
    assert plan.kept_bytes == 600
    assert plan.live_bytes == 300
    assert not plan.over_budget


def test_a_live_recording_is_never_removed_even_alone_over_the_budget():
    recordings = [on_disk("live", 5000), on_disk("ended", 10)]
    plan = retention.plan(
        recordings, ended_at={"ended": NOW - DAY}, now=NOW, keep_seconds=KEEP, max_bytes=1000
    )
    assert plan.removals == [Removal("ended", "budget")]
    assert plan.kept_bytes == plan.live_bytes == 5000
    assert plan.over_budget


def test_age_removals_count_before_the_budget_is_checked():
    recordings = [on_disk("old", 800), on_disk("new", 300)]
    ended = {"old": NOW - KEEP - DAY, "new": NOW - DAY}
    plan = retention.plan(recordings, ended_at=ended, now=NOW, keep_seconds=KEEP, max_bytes=500)
    assert plan.removals == [Removal("old", "age")]  # "new" fits once "old" is gone


def test_removed_recordings_are_not_planned_again():
    recordings = [OnDisk("gone", 0, NOW - KEEP * 2, removed=True)]
    plan = retention.plan(
        recordings, ended_at={"gone": 0.0}, now=NOW, keep_seconds=KEEP, max_bytes=1
    )
    assert plan.removals == []
    assert plan.kept_bytes == 0


def make_recording(root: Path, space_id: str) -> Path:
    directory = root / space_id
    (directory / "run1").mkdir(parents=True)
    (directory / "run1" / "init.mp4").write_bytes(b"i" * 700)
    (directory / "run1" / "7.m4s").write_bytes(b"s" * 20_000)
    (directory / "clips").mkdir()
    (directory / "clips" / f"{space_id}.0-1000.m4a").write_bytes(b"c" * 5000)
    line = {"run_id": "run1", "msn": 7, "duration": 1.92, "program_date_time": NOW}
    (directory / INDEX_NAME).write_text(json.dumps(line) + "\n")
    return directory


def test_measure_counts_the_disk_each_recording_takes_and_ignores_strangers(tmp_path: Path):
    make_recording(tmp_path, "space-1")
    (tmp_path / "not a space").mkdir()
    (tmp_path / "stray-file").write_bytes(b"x")
    found = retention.measure(tmp_path)
    assert [r.space_id for r in found] == ["space-1"]
    assert found[0].bytes >= 700 + 20_000 + 5000 + 60  # allocated blocks: at least the sizes
    assert not found[0].removed
    assert retention.measure(tmp_path / "missing") == []


def test_remove_leaves_a_tombstone_that_says_when_and_why(tmp_path: Path):
    directory = make_recording(tmp_path, "space-1")
    when = datetime(2027, 1, 2, 3, 4, tzinfo=UTC)
    message = retention.removal_message("age", when, KEEP)
    assert message == (
        "the recording of this space was removed on 2027-01-02: this server keeps them 30 days"
    )
    freed = retention.remove(tmp_path, "space-1", Tombstone(when, "age", message))
    assert freed >= 25_000
    assert [p.name for p in directory.iterdir()] == [retention.REMOVED_NAME]
    assert retention.tombstone(tmp_path, "space-1") == Tombstone(when, "age", message)
    found = retention.measure(tmp_path)
    assert found == [OnDisk("space-1", 0, found[0].last_written, removed=True)]
    # Again: nothing to do, nothing broken.
    assert retention.remove(tmp_path, "space-1", Tombstone(when, "age", message)) == 0
    assert retention.tombstone(tmp_path, "space-1") == Tombstone(when, "age", message)


def test_an_interrupted_removal_is_seen_and_can_be_finished(tmp_path: Path):
    directory = make_recording(tmp_path, "space-1")
    stone = Tombstone(datetime(2027, 1, 2, tzinfo=UTC), "budget", "removed for room")
    (directory / retention.REMOVED_NAME).write_text(
        json.dumps({"removed_at": stone.removed_at.isoformat(), "reason": "budget", "message": "x"})
    )
    [found] = retention.measure(tmp_path)
    assert found.removed and found.bytes > 0  # the crash left files beside the tombstone
    retention.remove(tmp_path, "space-1", stone)
    [found] = retention.measure(tmp_path)
    assert found.bytes == 0
    # The first tombstone stays (its reason and date are what happened).
    assert retention.tombstone(tmp_path, "space-1").message == "x"


def test_tombstone_of_a_recording_never_removed_is_none_and_bad_ids_are_refused(
    tmp_path: Path,
):
    make_recording(tmp_path, "space-1")
    assert retention.tombstone(tmp_path, "space-1") is None
    assert retention.tombstone(tmp_path, "never-recorded") is None
    with pytest.raises(ValueError):
        retention.tombstone(tmp_path, "../etc")


def test_budget_message_names_the_budget():
    message = retention.removal_message("budget", datetime(2027, 5, 6, tzinfo=UTC), KEEP)
    assert "2027-05-06" in message and "disk budget" in message
