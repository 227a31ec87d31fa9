"""The waiting room's rules: how the watermark moves, what waiting people are told, tickets."""

from __future__ import annotations

from dataclasses import replace

import pytest

from causerie.domain import Invalid
from causerie.domain.waiting_room import (
    MAX_CAPACITY,
    Line,
    Policy,
    advance,
    check_capacity,
    due,
    place,
)

POLICY = Policy(admit_every=2.0, reserve=40.0, max_retry=30)
WINDOW = 30.0  # the presence window


@pytest.mark.parametrize("capacity", [1, 500, MAX_CAPACITY, None])
def test_valid_capacities(capacity) -> None:
    assert check_capacity(capacity) == capacity


@pytest.mark.parametrize("capacity", [0, -1, MAX_CAPACITY + 1, True, 2.5, "10"])
def test_invalid_capacities(capacity) -> None:
    with pytest.raises(Invalid, match="capacity"):
        check_capacity(capacity)


def test_first_step_opens_the_whole_room() -> None:
    line = Line(epoch="e", issued=1)
    assert due(line, 100.0, POLICY)
    stepped = advance(line, capacity=3, listening=0, now=100.0, policy=POLICY)
    assert (stepped.admitted, stepped.advanced_at, stepped.granted_at) == (3, 100.0, 100.0)
    assert not due(stepped, 101.9, POLICY) and due(stepped, 102.0, POLICY)
    for number in (1, 2, 3):
        assert place(number, stepped, capacity=3, presence_window=WINDOW, policy=POLICY) is None
    waiting = place(5, stepped, capacity=3, presence_window=WINDOW, policy=POLICY)
    assert waiting is not None and waiting.position == 2


def test_places_granted_but_not_taken_are_kept_for_a_while() -> None:
    # Three places granted at t=100, one taken: two people are on their way, not counted yet.
    line = Line(epoch="e", issued=5, admitted=3, arrived=1, advanced_at=100.0, granted_at=100.0)
    stepped = advance(line, capacity=3, listening=1, now=102.0, policy=POLICY)
    assert stepped.admitted == 3  # 3 - 1 listening - 2 on their way
    # After `reserve` seconds they are presumed gone, and their places are given again.
    later = advance(line, capacity=3, listening=1, now=100.0 + POLICY.reserve, policy=POLICY)
    assert later.admitted == 5


def test_the_watermark_never_moves_past_a_full_room() -> None:
    line = Line(epoch="e", issued=10, admitted=3, arrived=3, advanced_at=100.0, granted_at=100.0)
    for listening in (3, 4, 50):
        assert (
            advance(line, capacity=3, listening=listening, now=110.0, policy=POLICY).admitted == 3
        )


def test_rate_and_estimates() -> None:
    line = Line(epoch="e", issued=100, admitted=10, arrived=10, advanced_at=100.0, rate=0.0)
    # Before anything moved: one presence window per full room ahead, plus one step.
    waiting = place(30, line, capacity=10, presence_window=WINDOW, policy=POLICY)
    assert waiting is not None
    assert waiting.position == 20
    assert waiting.estimated_wait == 2 * WINDOW + POLICY.admit_every
    assert waiting.retry_after == 30  # capped
    # Four places freed in two seconds: 2/s, averaged in.
    stepped = advance(line, capacity=10, listening=6, now=102.0, policy=POLICY)
    assert stepped.admitted == 14
    assert stepped.rate == pytest.approx(POLICY.smoothing * 2.0)
    fast = replace(stepped, rate=2.0)
    near = place(16, fast, capacity=10, presence_window=WINDOW, policy=POLICY)
    assert near is not None and near.position == 2
    assert near.estimated_wait == 1.0 and near.retry_after == 1  # never less than a second
    far = place(94, fast, capacity=10, presence_window=WINDOW, policy=POLICY)
    assert far is not None and far.estimated_wait == 40.0 and far.retry_after == 20


def test_in_order() -> None:
    """Numbers are let in strictly in order as the room frees up."""
    line = Line(epoch="e", issued=0)
    now, admitted_order, listening = 0.0, [], 0
    waiting = list(range(1, 9))
    line = replace(line, issued=8)
    for step in range(20):
        now += POLICY.admit_every
        line = advance(line, capacity=2, listening=listening, now=now, policy=POLICY)
        for number in list(waiting):
            if place(number, line, capacity=2, presence_window=WINDOW, policy=POLICY) is None:
                waiting.remove(number)
                admitted_order.append(number)
                line = replace(line, arrived=max(line.arrived, number))
        listening = 2 if step % 2 == 0 else 0  # everyone leaves every other step
    assert admitted_order == list(range(1, 9))
