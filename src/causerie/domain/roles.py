"""Roles, in a space and across the site, and what each may do.

Two tables are the single source of truth for permissions: `PERMISSIONS` (a role in one
space) and `SITE_PERMISSIONS` (what an account may do on the whole site: create spaces, run
the admin console). Rules that also depend on the target of an action (nobody may act on the
host, only the host manages co-hosts) live with the operations in `spaces.py`.
"""

from enum import StrEnum

from .errors import NotAllowed


class Role(StrEnum):
    """A person's role in one space, from most to least powerful.

    `OPERATOR` is nobody's role on a stage: it is the role an operator acts with in a space
    they are not a member of (see `SiteRole.OPERATOR` and `spaces.Operator`).
    """

    OPERATOR = "operator"
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
    TAKE_DOWN_REPLAY = "take_down_replay"
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

# An operator answers for the whole site: in any space they may take down what must go (end
# it, remove or mute people, take them off stage, hide questions), never speak for its host
# (start it, edit it, bring people on stage, name co-hosts).
_OPERATOR = frozenset(
    {
        Action.LISTEN,
        Action.END,
        Action.MOVE_TO_AUDIENCE,
        Action.MUTE_OTHERS,
        Action.REMOVE_MEMBER,
        Action.MODERATE_QUESTIONS,
        Action.TAKE_DOWN_REPLAY,
    }
)

PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.OPERATOR: _OPERATOR,
    Role.HOST: frozenset(_HOST),
    Role.COHOST: frozenset(_COHOST),
    Role.SPEAKER: frozenset(_SPEAKER),
    Role.LISTENER: frozenset(_LISTENER),
}

ON_STAGE = frozenset({Role.HOST, Role.COHOST, Role.SPEAKER})
"""Roles that publish audio."""


def _a(noun: str) -> str:
    return f"an {noun}" if noun[0] in "aeiou" else f"a {noun}"


class SiteRole(StrEnum):
    """What someone is on the site as a whole, whatever space they are in.

    `LISTENER`: an anonymous member of one space (a listener token); `HOST`: an account, which
    creates spaces and hosts them (a token from `causerie token` or from a host invite);
    `OPERATOR`: an account that runs the site (`causerie token --operator` for the first one).
    """

    OPERATOR = "operator"
    HOST = "host"
    LISTENER = "listener"


class SiteAction(StrEnum):
    """What someone may try to do on the site, beyond one space."""

    CREATE_SPACE = "create_space"
    VIEW_CONSOLE = "view_console"
    """See every space, node and the disk in the admin console."""
    MODERATE_ANY_SPACE = "moderate_any_space"
    """Act in any space with the `Role.OPERATOR` permissions."""
    MANAGE_ACCOUNTS = "manage_accounts"
    """Invite hosts, list accounts, revoke them."""


SITE_PERMISSIONS: dict[SiteRole, frozenset[SiteAction]] = {
    SiteRole.OPERATOR: frozenset(SiteAction),
    SiteRole.HOST: frozenset({SiteAction.CREATE_SPACE}),
    SiteRole.LISTENER: frozenset(),
}


def can_on_site(role: SiteRole, action: SiteAction) -> bool:
    """Whether `role` may perform the site-wide `action`."""
    return action in SITE_PERMISSIONS[role]


def require_on_site(role: SiteRole, action: SiteAction) -> None:
    """Raise `NotAllowed` unless `role` may perform the site-wide `action`."""
    if not can_on_site(role, action):
        who = "an anonymous listener" if role is SiteRole.LISTENER else _a(role.value)
        raise NotAllowed(f"{who} may not {action.value.replace('_', ' ')}")


class Operator(str):
    """The account id of an operator acting as one (`SiteRole.OPERATOR`), as the actor of a
    `Space` method.

    A `str`, so it is the same person as that id on a stage; a space lets it act with
    `Role.OPERATOR` where that id has no role allowing the action. Made by `as_operator`, which
    checks the site role first.
    """

    __slots__ = ()


def as_operator(user_id: str, site_role: SiteRole) -> Operator:
    """`user_id` acting as an operator; `NotAllowed` unless their site role is operator."""
    require_on_site(site_role, SiteAction.MODERATE_ANY_SPACE)
    return Operator(user_id)


def can(role: Role, action: Action) -> bool:
    """Whether `role` may perform `action` at all (target rules aside)."""
    return action in PERMISSIONS[role]


def require(role: Role, action: Action) -> None:
    """Raise `NotAllowed` unless `role` may perform `action`."""
    if not can(role, action):
        raise NotAllowed(f"{_a(role.value)} may not {action.value.replace('_', ' ')}")
