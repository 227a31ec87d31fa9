"""Every role x every action, against tables written out by hand (not derived from the code):
roles in a space, then roles on the site."""

import pytest

from causerie.domain import (
    Action,
    NotAllowed,
    Role,
    SiteAction,
    SiteRole,
    as_operator,
    can,
    can_on_site,
    require,
    require_on_site,
)

OP, H, C, S, L = Role.OPERATOR, Role.HOST, Role.COHOST, Role.SPEAKER, Role.LISTENER

EXPECTED: dict[Action, set[Role]] = {
    Action.LISTEN: {OP, H, C, S, L},
    Action.REACT: {H, C, S, L},
    Action.ASK_QUESTION: {H, C, S, L},
    Action.VOTE_QUESTION: {H, C, S, L},
    Action.REQUEST_TO_SPEAK: {L},
    Action.PUBLISH: {H, C, S},
    Action.MUTE_SELF: {H, C, S},
    Action.LEAVE_STAGE: {C, S},
    Action.START: {H, C},
    Action.END: {OP, H},
    Action.EDIT: {H, C},
    Action.INVITE_SPEAKER: {H, C},
    Action.ANSWER_SPEAK_REQUEST: {H, C},
    Action.MOVE_TO_AUDIENCE: {OP, H, C},
    Action.MUTE_OTHERS: {OP, H, C},
    Action.REMOVE_MEMBER: {OP, H, C},
    Action.MODERATE_QUESTIONS: {OP, H, C},
    Action.MANAGE_COHOSTS: {H},
    Action.TAKE_DOWN_REPLAY: {OP},
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


SITE_EXPECTED: dict[SiteAction, set[SiteRole]] = {
    SiteAction.CREATE_SPACE: {SiteRole.OPERATOR, SiteRole.HOST},
    SiteAction.VIEW_CONSOLE: {SiteRole.OPERATOR},
    SiteAction.MODERATE_ANY_SPACE: {SiteRole.OPERATOR},
    SiteAction.MANAGE_ACCOUNTS: {SiteRole.OPERATOR},
}


def test_the_site_table_covers_every_site_action() -> None:
    assert set(SITE_EXPECTED) == set(SiteAction)


@pytest.mark.parametrize("role", list(SiteRole))
@pytest.mark.parametrize("action", list(SiteAction))
def test_site_permission(role: SiteRole, action: SiteAction) -> None:
    allowed = role in SITE_EXPECTED[action]
    assert can_on_site(role, action) is allowed
    if allowed:
        require_on_site(role, action)
    else:
        with pytest.raises(NotAllowed, match=action.value.replace("_", " ")):
            require_on_site(role, action)


@pytest.mark.parametrize("role", [SiteRole.HOST, SiteRole.LISTENER])
def test_only_an_operator_acts_as_one(role: SiteRole) -> None:
    with pytest.raises(NotAllowed):
        as_operator("u-x", role)
    acting = as_operator("u-op", SiteRole.OPERATOR)
    assert acting == "u-op"
