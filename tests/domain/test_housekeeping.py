"""Housekeeping, with the clock passed in: a live space nobody is on the microphone in ends by
itself, its end announced first; someone going on air cancels it."""

from datetime import UTC, datetime, timedelta

import pytest

from causerie.domain import Conflict, SpaceState
from causerie.domain.housekeeping import IdleAction, IdleVerdict, IdleWatch, warn_before
from tests.domain.test_spaces import NOW, live_space, new_space

MINUTE = 60.0
T0 = 1_800_000_000.0


def test_the_host_is_told_five_minutes_before_or_a_third_of_a_short_wait():
    assert warn_before(15 * MINUTE) == 5 * MINUTE
    assert warn_before(60 * MINUTE) == 5 * MINUTE
    assert warn_before(3 * MINUTE) == MINUTE


def test_quiet_for_the_time_announces_then_ends():
    watch = IdleWatch(15 * MINUTE)
    nothing = IdleVerdict(IdleAction.NONE)
    assert watch.observe("s", speakers=False, announced=None, now=T0) == nothing
    assert watch.observe("s", speakers=False, announced=None, now=T0 + 9 * MINUTE) == nothing
    announce = watch.observe("s", speakers=False, announced=None, now=T0 + 10 * MINUTE)
    assert announce == IdleVerdict(IdleAction.ANNOUNCE, T0 + 15 * MINUTE)
    ends = T0 + 15 * MINUTE
    assert watch.observe("s", speakers=False, announced=ends, now=ends - 1) == nothing
    assert watch.observe("s", speakers=False, announced=ends, now=ends) == IdleVerdict(
        IdleAction.END, ends
    )


def test_a_speaker_resets_the_wait_and_cancels_an_announced_end():
    watch = IdleWatch(15 * MINUTE)
    watch.observe("s", speakers=False, announced=None, now=T0)
    ends = T0 + 15 * MINUTE
    assert watch.observe("s", speakers=True, announced=ends, now=T0 + 11 * MINUTE) == (
        IdleVerdict(IdleAction.CANCEL)
    )
    assert watch.observe("s", speakers=True, announced=None, now=T0 + 12 * MINUTE).action is (
        IdleAction.NONE
    )
    # Quiet again: a full wait from now, not from the first silence.
    later = T0 + 20 * MINUTE
    assert watch.observe("s", speakers=False, announced=None, now=later).action is IdleAction.NONE
    assert watch.observe("s", speakers=False, announced=None, now=later + 9 * MINUTE).action is (
        IdleAction.NONE
    )
    assert watch.observe("s", speakers=False, announced=None, now=later + 10 * MINUTE) == (
        IdleVerdict(IdleAction.ANNOUNCE, later + 15 * MINUTE)
    )


def test_a_space_looked_at_late_still_gets_the_whole_notice():
    watch = IdleWatch(15 * MINUTE)
    watch.observe("s", speakers=False, announced=None, now=T0)
    late = T0 + 30 * MINUTE  # the loop stalled, or the node was busy
    assert watch.observe("s", speakers=False, announced=None, now=late) == IdleVerdict(
        IdleAction.ANNOUNCE, late + 5 * MINUTE
    )


def test_an_end_announced_before_a_restart_keeps_its_time():
    watch = IdleWatch(15 * MINUTE)  # a new node: it never saw this space
    ends = T0 + 2 * MINUTE
    assert watch.observe("s", speakers=False, announced=ends, now=T0).action is IdleAction.NONE
    assert watch.observe("s", speakers=False, announced=ends, now=ends).action is IdleAction.END


def test_never_when_disabled_and_spaces_gone_are_forgotten():
    watch = IdleWatch(0)
    for minutes in (0, 60, 6000):
        verdict = watch.observe("s", speakers=False, announced=None, now=T0 + minutes * MINUTE)
        assert verdict.action is IdleAction.NONE
    # Switched off with an end announced (the node restarted with 0): it is cancelled.
    assert watch.observe("s", speakers=False, announced=T0, now=T0).action is IdleAction.CANCEL
    watch = IdleWatch(15 * MINUTE)
    watch.observe("a", speakers=False, announced=None, now=T0)
    watch.keep_only(["b"])
    # "a" came back live later: its wait starts again.
    later = T0 + 14 * MINUTE
    assert watch.observe("a", speakers=False, announced=None, now=later).action is IdleAction.NONE


def test_the_space_ends_by_itself_only_once_its_end_was_announced_and_came():
    space = live_space()
    with pytest.raises(Conflict, match="must be told first"):
        space.end_idle(NOW)
    ends = NOW + timedelta(minutes=5)
    space.announce_idle_end(ends)
    assert space.ending_at == ends
    with pytest.raises(Conflict, match="announced to end at"):
        space.end_idle(ends - timedelta(seconds=1))
    space.end_idle(ends)
    assert space.state is SpaceState.ENDED
    assert space.ended_at == ends
    assert space.ending_at is None
    with pytest.raises(Conflict):
        space.end_idle(ends)


def test_announcing_needs_a_live_space_and_survives_storage_and_the_hosts_end_clears_it():
    with pytest.raises(Conflict):
        new_space().announce_idle_end(NOW)
    space = live_space()
    space.announce_idle_end(datetime(2026, 11, 21, 18, 15, tzinfo=UTC))
    copy = space.copy()
    assert copy.ending_at == space.ending_at
    space.cancel_idle_end()
    assert space.ending_at is None
    copy.end("host", NOW)
    assert copy.ending_at is None
    stored = copy.to_dict()
    del stored["ending_at"]  # a space stored before housekeeping existed
    assert type(copy).from_dict(stored).ending_at is None
