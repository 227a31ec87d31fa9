"""Raised hands: they expire, are bounded per client address, and are ordered for moderators
(docs/roles.md). The clock is passed in."""

from datetime import UTC, datetime, timedelta

import pytest

from causerie.domain import LimitReached, NotFound, Space, SpaceLimits, hand_order
from causerie.domain.spaces import SpeakRequest

NOW = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


def live_space(**limits: int) -> Space:
    space = Space.create(
        space_id="sp1",
        host_id="host",
        host_name="Hana",
        title="Launch night",
        now=NOW,
        limits=SpaceLimits(**limits),
    )
    space.start("host", NOW)
    return space


def later(seconds: float) -> datetime:
    return NOW + timedelta(seconds=seconds)


def test_a_hand_nobody_answers_is_lowered_after_ten_minutes() -> None:
    space = live_space()
    assert space.limits.hand_ttl_seconds == 600
    space.request_to_speak("l1", "Lou", NOW)
    space.request_to_speak("l2", "Lia", later(300))
    assert [h.user_id for h in space.raised_hands(later(599))] == ["l1", "l2"]
    assert [h.user_id for h in space.raised_hands(later(600))] == ["l2"]
    assert space.hands_waiting(later(600)) == 1
    with pytest.raises(NotFound, match="lowered after a while"):
        space.answer_request("host", "l1", approve=True, now=later(600))
    assert "l1" not in space.speak_requests  # pruned by the answer
    # Raising it again is a new hand, with a new age.
    space.request_to_speak("l1", "Lou", later(700))
    assert [h.user_id for h in space.raised_hands(later(1000))] == ["l1"]


def test_expired_hands_free_the_queue() -> None:
    space = live_space(max_speak_requests=2, hand_ttl_seconds=60)
    space.request_to_speak("l1", "Lou", NOW, address="a")
    space.request_to_speak("l2", "Lia", NOW, address="b")
    with pytest.raises(LimitReached, match="too many people"):
        space.request_to_speak("l3", "Leo", later(59), address="c")
    space.request_to_speak("l3", "Leo", later(60), address="c")
    assert list(space.speak_requests) == ["l3"]


def test_one_address_holds_a_bounded_number_of_hands() -> None:
    space = live_space(max_hands_per_address=5)
    for n in range(5):
        space.request_to_speak(f"bot{n}", "Bot", NOW, address="one-machine")
    with pytest.raises(LimitReached, match="5 hands are already raised from your network"):
        space.request_to_speak("bot5", "Bot", NOW, address="one-machine")
    space.request_to_speak("bot0", "Bot", NOW, address="one-machine")  # twice is once
    space.request_to_speak("honest", "Ana", NOW, address="elsewhere")
    space.answer_request("host", "bot0", approve=False)
    space.request_to_speak("bot5", "Bot", NOW, address="one-machine")  # room again
    assert len(space.speak_requests) == 6


def test_moderators_see_accounts_then_small_addresses_then_the_oldest() -> None:
    space = live_space()
    space.request_to_speak("bot1", "Bot", later(1), address="farm")
    space.request_to_speak("bot2", "Bot", later(2), address="farm")
    space.request_to_speak("bot3", "Bot", later(3), address="farm")
    space.request_to_speak("ana", "Ana", later(10), address="home")
    space.request_to_speak("bea", "Bea", later(5), address="office")
    space.request_to_speak("cat", "Cat", later(20), address="farm", account=True)
    order = [h.user_id for h in space.raised_hands(later(30))]
    assert order == ["cat", "bea", "ana", "bot1", "bot2", "bot3"]


def test_hand_order_without_addresses_is_oldest_first() -> None:
    hands = [SpeakRequest(f"l{n}", "x", later(10 - n)) for n in range(4)]
    assert [h.user_id for h in hand_order(hands)] == ["l3", "l2", "l1", "l0"]


def test_hands_keep_their_address_and_kind_in_storage() -> None:
    space = live_space(hand_ttl_seconds=120, max_hands_per_address=2)
    space.request_to_speak("l1", "Lou", NOW, address="xyz", account=True)
    copy = Space.from_dict(space.to_dict())
    assert copy.speak_requests["l1"] == space.speak_requests["l1"]
    assert copy.limits == space.limits
    # A space stored before hands had an address or an expiry reads with the defaults.
    old = space.to_dict()
    del old["limits"]["hand_ttl_seconds"], old["limits"]["max_hands_per_address"]
    for hand in old["speak_requests"]:
        del hand["address"], hand["account"]
    legacy = Space.from_dict(old)
    assert legacy.limits.hand_ttl_seconds == 600
    assert legacy.speak_requests["l1"].address == "" and not legacy.speak_requests["l1"].account


@pytest.mark.parametrize("bad", [{"hand_ttl_seconds": 0}, {"max_hands_per_address": 0}])
def test_bad_hand_limits(bad: dict) -> None:
    with pytest.raises(Exception, match="at least 1"):
        SpaceLimits(**bad)
