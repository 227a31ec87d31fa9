"""Roles in a space and what each may do.

The table below is the single source of truth for role permissions; rules that also depend
on the target of an action (nobody may act on the host, only the host manages co-hosts) live
with the operations in `spaces.py`.
"""

from enum import StrEnum

from .errors import NotAllowed


class Role(StrEnum):
    """A person's role in one space, from most to least powerful."""

    HOST = "host"
    COHOST = "cohost"
    SPEAKER = "speaker"
    LISTENER = "listener"


class Action(StrEnum):
    """Everything someone can try to do in a space."""

    LISTEN = "listen"
    REACT = "react"
    ASK_QUESTION = "ask_question"
    VOTE_QUESTION = "vote_question"
    REQUEST_TO_SPEAK = "request_to_speak"
    PUBLISH = "publish"
    MUTE_SELF = "mute_self"
    LEAVE_STAGE = "leave_stage"
    START = "start"
    END = "end"
    EDIT = "edit"
    INVITE_SPEAKER = "invite_speaker"
    ANSWER_SPEAK_REQUEST = "answer_speak_request"
    MOVE_TO_AUDIENCE = "move_to_audience"
    MUTE_OTHERS = "mute_others"
    REMOVE_MEMBER = "remove_member"
    MODERATE_QUESTIONS = "moderate_questions"
    MANAGE_COHOSTS = "manage_cohosts"
    SET_CAPTIONS = "set_captions"


_AUDIENCE = frozenset(
    {
        Action.LISTEN,
        Action.REACT,
        Action.ASK_QUESTION,
        Action.VOTE_QUESTION,
    }
)
_LISTENER = _AUDIENCE | {Action.REQUEST_TO_SPEAK}
_SPEAKER = _AUDIENCE | {Action.PUBLISH, Action.MUTE_SELF, Action.LEAVE_STAGE}
_COHOST = _SPEAKER | {
    Action.START,
    Action.EDIT,
    Action.INVITE_SPEAKER,
    Action.ANSWER_SPEAK_REQUEST,
    Action.MOVE_TO_AUDIENCE,
    Action.MUTE_OTHERS,
    Action.REMOVE_MEMBER,
    Action.MODERATE_QUESTIONS,
    Action.SET_CAPTIONS,
}
# The host may do everything a co-host may, and also end the space and manage co-hosts.
# The host cannot leave the stage: a space always has its host on stage.
_HOST = (_COHOST - {Action.LEAVE_STAGE}) | {Action.END, Action.MANAGE_COHOSTS}

PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.HOST: frozenset(_HOST),
    Role.COHOST: frozenset(_COHOST),
    Role.SPEAKER: frozenset(_SPEAKER),
    Role.LISTENER: frozenset(_LISTENER),
}

ON_STAGE = frozenset({Role.HOST, Role.COHOST, Role.SPEAKER})
"""Roles that publish audio."""


def can(role: Role, action: Action) -> bool:
    """Whether `role` may perform `action` at all (target rules aside)."""
    return action in PERMISSIONS[role]


def require(role: Role, action: Action) -> None:
    """Raise `NotAllowed` unless `role` may perform `action`."""
    if not can(role, action):
        raise NotAllowed(f"a {role.value} may not {action.value.replace('_', ' ')}")
