"""Every role x every action, against a table written out by hand (not derived from the code)."""

import pytest

from causerie.domain import Action, NotAllowed, Role, can, require

H, C, S, L = Role.HOST, Role.COHOST, Role.SPEAKER, Role.LISTENER

EXPECTED: dict[Action, set[Role]] = {
    Action.LISTEN: {H, C, S, L},
    Action.REACT: {H, C, S, L},
    Action.ASK_QUESTION: {H, C, S, L},
    Action.VOTE_QUESTION: {H, C, S, L},
    Action.REQUEST_TO_SPEAK: {L},
    Action.PUBLISH: {H, C, S},
    Action.MUTE_SELF: {H, C, S},
    Action.LEAVE_STAGE: {C, S},
    Action.START: {H, C},
    Action.END: {H},
    Action.EDIT: {H, C},
    Action.INVITE_SPEAKER: {H, C},
    Action.ANSWER_SPEAK_REQUEST: {H, C},
    Action.MOVE_TO_AUDIENCE: {H, C},
    Action.MUTE_OTHERS: {H, C},
    Action.REMOVE_MEMBER: {H, C},
    Action.MODERATE_QUESTIONS: {H, C},
    Action.MANAGE_COHOSTS: {H},
    Action.SET_CAPTIONS: {H, C},
}


def test_the_table_covers_every_action() -> None:
    assert set(EXPECTED) == set(Action)


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_permission(role: Role, action: Action) -> None:
    allowed = role in EXPECTED[action]
    assert can(role, action) is allowed
    if allowed:
        require(role, action)
    else:
        with pytest.raises(NotAllowed, match=role.value):
            require(role, action)
