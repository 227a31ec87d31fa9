"""The space lifecycle and stage rules, with the clock passed in."""

from datetime import UTC, datetime, timedelta

import pytest

from causerie.domain import (
    Conflict,
    Invalid,
    LimitReached,
    NotAllowed,
    NotFound,
    Role,
    SiteRole,
    Space,
    SpaceLimits,
    SpaceState,
    as_operator,
)

NOW = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=30)


def new_space(**kwargs) -> Space:
    options = {
        "space_id": "sp1",
        "host_id": "host",
        "host_name": "Hana",
        "title": "Launch night",
        "now": NOW,
    } | kwargs
    return Space.create(**options)


def live_space(**kwargs) -> Space:
    space = new_space(**kwargs)
    space.start("host", NOW)
    return space


def with_stage(space: Space) -> Space:
    """A live space with a co-host 'co' and a speaker 'sp'."""
    space.make_cohost("host", "co", "Cora")
    space.request_to_speak("sp", "Sam", NOW)
    space.answer_request("host", "sp", approve=True)
    return space


# -- creation -----------------------------------------------------------------------------


def test_created_space_is_scheduled_with_its_creator_as_host() -> None:
    space = new_space(description="  About launch  ", scheduled_start=LATER)
    assert space.state is SpaceState.SCHEDULED
    assert space.role_of("host") is Role.HOST
    assert space.host.name == "Hana"
    assert space.description == "About launch"
    assert space.scheduled_start == LATER
    assert space.role_of("someone") is Role.LISTENER


@pytest.mark.parametrize(
    ("title", "message"),
    [
        ("", "must not be empty"),
        ("   ", "must not be empty"),
        ("x" * 141, "too long"),
        ("bell\x07", "control character"),
    ],
)
def test_bad_titles_are_refused(title: str, message: str) -> None:
    with pytest.raises(Invalid, match=message):
        new_space(title=title)


def test_unicode_titles_are_kept_as_written() -> None:
    title = "مرحبا \u200b👋 <b>hi</b>"
    assert new_space(title=title).title == title


def test_start_time_needs_a_time_zone() -> None:
    with pytest.raises(Invalid, match="time zone"):
        new_space(scheduled_start=datetime(2026, 11, 21, 18, 0))


def test_limits_must_not_be_negative() -> None:
    with pytest.raises(Invalid):
        SpaceLimits(max_speakers=-1)


# -- lifecycle ----------------------------------------------------------------------------


def test_scheduled_to_live_to_ended() -> None:
    space = new_space()
    space.start("host", NOW)
    assert (space.state, space.started_at) == (SpaceState.LIVE, NOW)
    space.end("host", LATER)
    assert (space.state, space.ended_at) == (SpaceState.ENDED, LATER)


def test_a_scheduled_space_can_be_cancelled() -> None:
    space = new_space()
    space.end("host", NOW)
    assert space.state is SpaceState.ENDED
    assert space.started_at is None


def test_cohost_may_start_but_not_end() -> None:
    space = new_space()
    space.make_cohost("host", "co")
    space.start("co", NOW)
    assert space.state is SpaceState.LIVE
    with pytest.raises(NotAllowed):
        space.end("co", LATER)


@pytest.mark.parametrize("actor", ["sp", "stranger"])
def test_speakers_and_listeners_cannot_start_or_end(actor: str) -> None:
    space = with_stage(live_space())
    with pytest.raises(NotAllowed):
        space.end(actor, LATER)
    fresh = new_space()
    with pytest.raises(NotAllowed):
        fresh.start(actor, NOW)


def test_invalid_transitions_conflict() -> None:
    space = live_space()
    with pytest.raises(Conflict, match="only a scheduled space"):
        space.start("host", NOW)
    space.end("host", LATER)
    with pytest.raises(Conflict, match="already ended"):
        space.end("host", LATER)
    with pytest.raises(Conflict):
        space.start("host", LATER)
    with pytest.raises(Conflict):
        space.edit("host", title="again")


def test_edit_details() -> None:
    space = new_space()
    space.edit("host", title="New title", description="", scheduled_start=LATER)
    assert (space.title, space.description, space.scheduled_start) == ("New title", "", LATER)
    space.start("host", NOW)
    with pytest.raises(Conflict, match="before the space starts"):
        space.edit("host", scheduled_start=LATER)
    with pytest.raises(NotAllowed):
        space.edit("stranger", title="mine now")


def test_ending_clears_the_queue() -> None:
    space = live_space()
    space.request_to_speak("l1", "Lou", NOW)
    space.invite_speaker("host", "l2")
    space.end("host", LATER)
    assert not space.speak_requests and not space.invited


# -- the stage ----------------------------------------------------------------------------


def test_request_approve_makes_a_speaker() -> None:
    space = live_space()
    space.request_to_speak("l1", "Lou", NOW)
    space.request_to_speak("l1", "Lou", LATER)  # twice is once
    assert list(space.speak_requests) == ["l1"]
    space.answer_request("host", "l1", approve=True)
    assert space.role_of("l1") is Role.SPEAKER
    assert space.may_publish("l1")
    assert not space.speak_requests


def test_deny_and_withdraw() -> None:
    space = live_space()
    space.request_to_speak("l1", "Lou", NOW)
    space.answer_request("host", "l1", approve=False)
    assert space.role_of("l1") is Role.LISTENER and not space.speak_requests
    space.request_to_speak("l2", "", NOW)
    assert space.speak_requests["l2"].name == "Guest"
    space.withdraw_request("l2")
    assert not space.speak_requests
    with pytest.raises(NotFound):
        space.answer_request("host", "l2", approve=True)


def test_requests_need_a_live_space() -> None:
    space = new_space()
    with pytest.raises(Conflict, match="not live"):
        space.request_to_speak("l1", "Lou", NOW)


def test_only_moderators_answer_requests() -> None:
    space = with_stage(live_space())
    space.request_to_speak("l1", "Lou", NOW)
    for actor in ("sp", "l2"):
        with pytest.raises(NotAllowed):
            space.answer_request(actor, "l1", approve=True)
    space.answer_request("co", "l1", approve=True)
    assert space.role_of("l1") is Role.SPEAKER


def test_speaker_limit() -> None:
    space = live_space(limits=SpaceLimits(max_speakers=1))
    space.request_to_speak("l1", "Lou", NOW)
    space.request_to_speak("l2", "Lia", NOW)
    space.answer_request("host", "l1", approve=True)
    with pytest.raises(LimitReached, match="at most 1 speakers"):
        space.answer_request("host", "l2", approve=True)
    assert "l2" in space.speak_requests  # still waiting, nothing lost


def test_request_queue_limit() -> None:
    space = live_space(limits=SpaceLimits(max_speak_requests=1))
    space.request_to_speak("l1", "Lou", NOW)
    with pytest.raises(LimitReached):
        space.request_to_speak("l2", "Lia", NOW)


def test_stage_members_cannot_request() -> None:
    space = with_stage(live_space())
    for actor in ("host", "co", "sp"):
        with pytest.raises(NotAllowed):
            space.request_to_speak(actor, "x", NOW)


def test_invitation_accepted() -> None:
    space = live_space()
    space.invite_speaker("host", "l1", "Lou")
    space.accept_invitation("l1")
    assert space.role_of("l1") is Role.SPEAKER
    with pytest.raises(NotFound):
        space.accept_invitation("l9")
    with pytest.raises(Conflict, match="already on stage"):
        space.invite_speaker("host", "l1")


def test_cohosts_managed_by_the_host_only() -> None:
    space = with_stage(live_space(limits=SpaceLimits(max_cohosts=2)))
    with pytest.raises(NotAllowed):
        space.make_cohost("co", "sp")
    space.make_cohost("host", "sp")
    assert space.role_of("sp") is Role.COHOST
    with pytest.raises(LimitReached, match="at most 2 co-hosts"):
        space.make_cohost("host", "l1")
    space.unmake_cohost("host", "sp")
    assert space.role_of("sp") is Role.SPEAKER
    with pytest.raises(Conflict):
        space.unmake_cohost("host", "sp")
    with pytest.raises(Conflict):
        space.make_cohost("host", "host")


def test_move_to_audience_and_leave_stage() -> None:
    space = with_stage(live_space())
    space.move_to_audience("co", "sp")
    assert space.role_of("sp") is Role.LISTENER
    space.make_cohost("host", "co2")
    with pytest.raises(NotAllowed, match="only the host can act on a co-host"):
        space.move_to_audience("co2", "co")
    space.move_to_audience("co", "co")  # leaving oneself
    assert space.role_of("co") is Role.LISTENER
    with pytest.raises(NotAllowed, match="nobody can act on the host"):
        space.move_to_audience("co2", "host")
    with pytest.raises(NotAllowed):
        space.move_to_audience("host", "host")  # the host stays on stage
    with pytest.raises(Conflict, match="not on stage"):
        space.move_to_audience("host", "sp")


def test_mute_rules() -> None:
    space = with_stage(live_space())
    space.set_muted("sp", "sp", True)
    assert space.members["sp"].muted
    space.set_muted("co", "sp", False)
    assert not space.members["sp"].muted
    space.set_muted("host", "co", True)
    with pytest.raises(NotAllowed):
        space.set_muted("sp", "co", False)
    with pytest.raises(NotFound):
        space.set_muted("host", "nobody", True)


def test_removed_people_stay_out() -> None:
    space = with_stage(live_space())
    space.remove("co", "sp")
    assert space.role_of("sp") is Role.LISTENER
    with pytest.raises(NotAllowed, match="removed"):
        space.request_to_speak("sp", "Sam", NOW)
    with pytest.raises(NotAllowed, match="removed"):
        space.invite_speaker("host", "sp")
    with pytest.raises(NotAllowed):
        space.remove("co", "host")
    with pytest.raises(Conflict):
        space.remove("host", "host")
    with pytest.raises(NotAllowed):
        space.remove("sp", "co")
    space.make_cohost("host", "co2")
    with pytest.raises(NotAllowed, match="only the host can act on a co-host"):
        space.remove("co", "co2")


def test_storage_round_trip_keeps_everything() -> None:
    space = with_stage(live_space(scheduled_start=LATER, limits=SpaceLimits(3, 4, 5)))
    space.request_to_speak("l1", "Lou", NOW)
    space.invite_speaker("host", "l2", "Lia")
    space.remove("host", "bad")
    space.set_muted("host", "sp", True)
    space.version = 7
    again = Space.from_dict(space.to_dict())
    assert again == space
    assert again.copy() == space


# -- an operator, who is no member of the space ----------------------------------------------


def operator(user_id: str = "op") -> str:
    return as_operator(user_id, SiteRole.OPERATOR)


def test_an_operator_takes_down_what_must_go_without_being_a_member() -> None:
    space = with_stage(live_space())
    space.set_muted(operator(), "sp", True)
    assert space.members["sp"].muted
    space.remove(operator(), "co")  # a co-host too: only the host is beyond reach
    space.move_to_audience(operator(), "sp")
    assert space.role_of("co") is Role.LISTENER and "co" in space.removed
    assert "op" not in space.members
    space.end(operator(), LATER)
    assert space.state is SpaceState.ENDED and space.ended_at == LATER


def test_an_operator_does_not_speak_for_the_host() -> None:
    space = with_stage(live_space())
    for attempt in (
        lambda: space.edit(operator(), title="Mine"),
        lambda: space.invite_speaker(operator(), "l1", "Lou"),
        lambda: space.make_cohost(operator(), "l2", "Lee"),
    ):
        with pytest.raises(NotAllowed, match="a listener may not"):
            attempt()
    with pytest.raises(NotAllowed, match="nobody can act on the host"):
        space.remove(operator(), "host")
    with pytest.raises(NotAllowed, match="a listener may not start"):
        new_space().start(operator(), NOW)
    # In the audience, they are a listener like any other.
    space.request_to_speak(operator(), "Olga", NOW)
    assert "op" in space.speak_requests


def test_the_same_id_without_the_operator_role_is_a_listener() -> None:
    space = with_stage(live_space())
    with pytest.raises(NotAllowed, match="a listener may not end"):
        space.end("op", LATER)
    with pytest.raises(NotAllowed, match="a listener may not remove member"):
        space.remove("op", "sp")


def test_an_operator_on_a_stage_keeps_both_roles_and_is_not_barred_by_a_removal() -> None:
    space = new_space(host_id="op")
    # Their own space: the host's powers (start, edit) and the operator's are both theirs.
    space.start(operator(), NOW)
    space.edit(operator(), title="Still mine")
    other = with_stage(live_space())
    other.request_to_speak("op", "Olga", NOW)
    other.answer_request("host", "op", approve=True)
    other.remove("host", "op")
    # Removed as a speaker here, an operator may still end the space (a takedown).
    with pytest.raises(NotAllowed, match="removed"):
        other.end("op", LATER)
    other.end(operator(), LATER)
    assert other.state is SpaceState.ENDED


def test_only_an_operator_takes_a_replay_down() -> None:
    from causerie.domain import Operator

    space = Space.create(space_id="s", host_id="h", host_name="H", title="T", now=NOW)
    space.start("h", NOW)
    with pytest.raises(NotAllowed):
        space.take_down_replay("h", NOW)  # not even its host
    operator = Operator("u-op")
    later = NOW + timedelta(minutes=5)
    space.take_down_replay(operator, later)  # a live space ends first
    assert (space.state, space.ended_at, space.replay_taken_down_at) == (
        SpaceState.ENDED,
        later,
        later,
    )
    assert Space.from_dict(space.to_dict()).replay_taken_down_at == later
    with pytest.raises(Conflict):
        space.take_down_replay(operator, later)
