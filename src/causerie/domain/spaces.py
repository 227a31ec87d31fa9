"""A space: one live audio conversation, its lifecycle and the people on its stage.

`Space` is an aggregate: everything that must change together (state, stage members, speak
requests, removals) lives in one object that the store saves as a whole with a version number,
so concurrent changes are detected (optimistic concurrency) instead of lost. Every method checks
the actor's role and the space's state, then changes the object or raises a `DomainError`.
Listeners are not stored here at all: joining is stateless.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from enum import Enum, StrEnum
from typing import Any

from .errors import Conflict, Invalid, LimitReached, NotAllowed, NotFound
from .roles import ON_STAGE, Action, Operator, Role, can, require
from .text import clean_text
from .waiting_room import check_capacity

SPACE_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
"""What a space id looks like (new ids are 11 URL-safe characters)."""


def new_space_id() -> str:
    """A new space id: 11 random URL-safe characters (64 bits)."""
    return secrets.token_urlsafe(8)


def check_space_id(space_id: str) -> None:
    """`NotFound` for a text that cannot be any space's id (before any store is asked)."""
    if not SPACE_ID.match(space_id):
        raise NotFound("no such space")


TITLE_MAX = 140
DESCRIPTION_MAX = 2000
NAME_MAX = 60


class Unchanged(Enum):
    """The value of an edit's field that was left out."""

    UNCHANGED = "unchanged"


UNCHANGED = Unchanged.UNCHANGED


class SpaceState(StrEnum):
    """scheduled -> live -> ended; a scheduled space may also be cancelled (ended)."""

    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"


@dataclass(frozen=True)
class SpaceLimits:
    """How many people may hold each stage role (the host is not counted)."""

    max_cohosts: int = 2
    max_speakers: int = 10
    max_speak_requests: int = 1000
    hand_ttl_seconds: int = 600
    """A raised hand nobody answered is lowered after this long (the listener may raise it
    again): a queue of hands from people long gone is no queue."""
    max_hands_per_address: int = 5
    """Raised hands open at once from one client address: one machine minting listener
    tokens (they are free) cannot fill the queue. Generous for a shared address (a campus,
    a carrier's NAT): raising a hand is rare."""

    def __post_init__(self) -> None:
        if min(self.max_cohosts, self.max_speakers, self.max_speak_requests) < 0:
            raise Invalid("limits must not be negative")
        if self.hand_ttl_seconds < 1 or self.max_hands_per_address < 1:
            raise Invalid("hand_ttl_seconds and max_hands_per_address must be at least 1")


@dataclass
class Member:
    """Someone on stage (host, co-host or speaker)."""

    user_id: str
    name: str
    role: Role
    muted: bool = False


@dataclass
class SpeakRequest:
    """A listener's raised hand."""

    user_id: str
    name: str
    at: datetime
    address: str = ""
    """An opaque name for the client address it came from (never the address itself)."""
    account: bool = False
    """Raised by an account holder (a token the operator issued), not an anonymous listener."""


def hand_order(hands: list[SpeakRequest]) -> list[SpeakRequest]:
    """The order moderators see raised hands in (docs/roles.md):

    1. account holders before anonymous listeners (listener tokens are free to mint);
    2. then hands from addresses with fewer open hands first, so one machine's many hands
       come after everyone else's;
    3. then oldest first.
    """
    per_address: dict[str, int] = {}
    for hand in hands:
        per_address[hand.address] = per_address.get(hand.address, 0) + 1
    return sorted(
        hands,
        key=lambda h: (not h.account, per_address[h.address] if h.address else 1, h.at),
    )


def clean_name(name: str) -> str:
    """A display name; empty names become "Guest"."""
    return clean_text(name, field="name", max_length=NAME_MAX, required=False) or "Guest"


@dataclass
class Space:
    """One live audio conversation. Build new ones with `Space.create`."""

    id: str
    title: str
    description: str
    host_id: str
    created_at: datetime
    scheduled_start: datetime | None = None
    state: SpaceState = SpaceState.SCHEDULED
    started_at: datetime | None = None
    ended_at: datetime | None = None
    limits: SpaceLimits = field(default_factory=SpaceLimits)
    members: dict[str, Member] = field(default_factory=dict)
    speak_requests: dict[str, SpeakRequest] = field(default_factory=dict)
    invited: dict[str, str] = field(default_factory=dict)
    removed: set[str] = field(default_factory=set)
    recording: bool = True
    capacity: int | None = None
    """The most listeners at once; joiners beyond it wait in line (see waiting_room)."""
    ending_at: datetime | None = None
    """When the space ends by itself, nobody having been on the microphone for a while
    (housekeeping.py); announced to the host beforehand, cancelled when someone goes on air."""
    replay_taken_down_at: datetime | None = None
    """When an operator took the recording down (its replay then answers 410 Gone)."""
    captions: bool = True
    """Whether the node captions the space live (and makes its transcript); its host's choice."""
    version: int = 0

    # -- creation ---------------------------------------------------------------------------

    @classmethod
    def create(
        cls,
        *,
        space_id: str,
        host_id: str,
        host_name: str,
        title: str,
        now: datetime,
        description: str = "",
        scheduled_start: datetime | None = None,
        limits: SpaceLimits | None = None,
        recording: bool = True,
        capacity: int | None = None,
    ) -> Space:
        """A new scheduled space with its creator as host."""
        _require_aware(now, "now")
        if scheduled_start is not None:
            _require_aware(scheduled_start, "scheduled_start")
        space = cls(
            id=space_id,
            title=clean_text(title, field="title", max_length=TITLE_MAX),
            description=clean_text(
                description,
                field="description",
                max_length=DESCRIPTION_MAX,
                required=False,
                multiline=True,
            ),
            host_id=host_id,
            created_at=now,
            scheduled_start=scheduled_start,
            limits=limits or SpaceLimits(),
            recording=recording,
            capacity=check_capacity(capacity),
        )
        space.members[host_id] = Member(host_id, clean_name(host_name), Role.HOST)
        return space

    # -- who is who -------------------------------------------------------------------------

    def role_of(self, user_id: str) -> Role:
        """The role of `user_id` here; anyone not on stage is a listener."""
        member = self.members.get(user_id)
        return member.role if member else Role.LISTENER

    @property
    def host(self) -> Member:
        return self.members[self.host_id]

    def count(self, role: Role) -> int:
        return sum(1 for m in self.members.values() if m.role is role)

    def on_stage(self) -> list[Member]:
        """Host first, then co-hosts, then speakers."""
        order = {Role.HOST: 0, Role.COHOST: 1, Role.SPEAKER: 2}
        return sorted(self.members.values(), key=lambda m: order[m.role])

    def may_publish(self, user_id: str) -> bool:
        """Whether `user_id` may send audio right now."""
        return self.state is SpaceState.LIVE and self.role_of(user_id) in ON_STAGE

    # -- lifecycle --------------------------------------------------------------------------

    def start(self, actor: str, now: datetime) -> None:
        """Go live. Host or co-host."""
        self._require(actor, Action.START)
        if self.state is not SpaceState.SCHEDULED:
            raise Conflict(f"the space is {self.state.value}; only a scheduled space can start")
        self.state = SpaceState.LIVE
        self.started_at = now

    def end(self, actor: str, now: datetime) -> None:
        """End the space (or cancel it before it starts). Host only."""
        self._require(actor, Action.END)
        if self.state is SpaceState.ENDED:
            raise Conflict("the space has already ended")
        self._close(now)

    def announce_idle_end(self, at: datetime) -> None:
        """Say when this live space will end by itself if nobody goes on the microphone (the
        node's housekeeping, housekeeping.py: no actor). Its host sees it in the studio."""
        _require_aware(at, "at")
        self._require_live()
        self.ending_at = at

    def cancel_idle_end(self) -> None:
        """Someone is on the microphone again: the announced end is off."""
        self.ending_at = None

    def end_idle(self, now: datetime) -> None:
        """The node ends a live space nobody spoke in for a while (housekeeping.py): only once
        that end was announced (`announce_idle_end`) and its time has come, so the host was
        always told first."""
        self._require_live()
        if self.ending_at is None:
            raise Conflict("no end was announced for this space: its host must be told first")
        if now < self.ending_at:
            raise Conflict(f"the space is announced to end at {self.ending_at.isoformat()}")
        self._close(now)

    def _close(self, now: datetime) -> None:
        self.state = SpaceState.ENDED
        self.ended_at = now
        self.ending_at = None
        self.speak_requests.clear()
        self.invited.clear()

    def take_down_replay(self, actor: str, now: datetime) -> None:
        """Take the recording down (an operator, after a report): from now on its replay,
        download and clips answer 410 Gone, and the nodes remove its files. A live space ends
        first: nothing of it may stay available."""
        self._require(actor, Action.TAKE_DOWN_REPLAY)
        if self.replay_taken_down_at is not None:
            raise Conflict("the recording of this space was taken down already")
        if self.state is not SpaceState.ENDED:
            self._close(now)
        self.replay_taken_down_at = now

    def edit(
        self,
        actor: str,
        *,
        title: str | None = None,
        description: str | None = None,
        scheduled_start: datetime | None = None,
        capacity: int | Unchanged | None = UNCHANGED,
    ) -> None:
        """Change the details (None: unchanged; for `capacity`, None removes the cap).

        Host or co-host, before the end."""
        self._require(actor, Action.EDIT)
        self._require_not_ended()
        if title is not None:
            self.title = clean_text(title, field="title", max_length=TITLE_MAX)
        if description is not None:
            self.description = clean_text(
                description,
                field="description",
                max_length=DESCRIPTION_MAX,
                required=False,
                multiline=True,
            )
        if scheduled_start is not None:
            _require_aware(scheduled_start, "scheduled_start")
            if self.state is not SpaceState.SCHEDULED:
                raise Conflict("the start time can only change before the space starts")
            self.scheduled_start = scheduled_start
        if not isinstance(capacity, Unchanged):
            self.capacity = check_capacity(capacity)

    def set_captions(self, actor: str, enabled: bool) -> None:
        """Turn live captions (and the transcript) on or off. Host or co-host, before the end:
        a transcript is made of what was captioned while the space was live."""
        self._require(actor, Action.SET_CAPTIONS)
        self._require_not_ended()
        self.captions = enabled

    # -- the stage --------------------------------------------------------------------------

    def request_to_speak(
        self,
        actor: str,
        name: str,
        now: datetime,
        *,
        address: str = "",
        account: bool = False,
    ) -> None:
        """A listener raises their hand; `address` names (opaquely) where the request came
        from, at most `max_hands_per_address` open hands each; `account`: an account holder."""
        self._require_not_removed(actor)
        self._require(actor, Action.REQUEST_TO_SPEAK)
        self._require_live()
        self.lower_expired_hands(now)
        if actor in self.speak_requests:
            return  # asking twice is asking once
        if len(self.speak_requests) >= self.limits.max_speak_requests:
            raise LimitReached("too many people are waiting to speak; try again later")
        if address:
            same = sum(1 for r in self.speak_requests.values() if r.address == address)
            if same >= self.limits.max_hands_per_address:
                raise LimitReached(
                    f"{same} hands are already raised from your network address; "
                    "try again once one of them has been answered"
                )
        self.speak_requests[actor] = SpeakRequest(actor, clean_name(name), now, address, account)

    def lower_expired_hands(self, now: datetime) -> None:
        """Drop the hands raised `hand_ttl_seconds` or more before `now`."""
        for hand in [h for h in self.speak_requests.values() if self._expired(h, now)]:
            del self.speak_requests[hand.user_id]

    def raised_hands(self, now: datetime) -> list[SpeakRequest]:
        """The hands still raised at `now`, in the order moderators see them (`hand_order`)."""
        return hand_order([h for h in self.speak_requests.values() if not self._expired(h, now)])

    def hands_waiting(self, now: datetime) -> int:
        """How many hands are still raised at `now`."""
        return sum(1 for h in self.speak_requests.values() if not self._expired(h, now))

    def _expired(self, hand: SpeakRequest, now: datetime) -> bool:
        return (now - hand.at).total_seconds() >= self.limits.hand_ttl_seconds

    def withdraw_request(self, actor: str) -> None:
        """A listener lowers their hand (a no-op if it was not raised)."""
        self.speak_requests.pop(actor, None)

    def answer_request(
        self, actor: str, user_id: str, *, approve: bool, now: datetime | None = None
    ) -> None:
        """Approve (the requester becomes a speaker) or deny a raised hand; given `now`, a
        hand that has expired by then is gone (404)."""
        self._require(actor, Action.ANSWER_SPEAK_REQUEST)
        self._require_live()
        if now is not None:
            self.lower_expired_hands(now)
        request = self.speak_requests.get(user_id)
        if request is None:
            raise NotFound("no such request to speak (hands are lowered after a while)")
        if approve:
            self._add_to_stage(user_id, request.name, Role.SPEAKER)
        del self.speak_requests[user_id]

    def invite_speaker(self, actor: str, user_id: str, name: str = "") -> None:
        """Invite a listener on stage; they become a speaker when they accept."""
        self._require(actor, Action.INVITE_SPEAKER)
        self._require_not_ended()
        self._require_not_removed(user_id)
        if self.role_of(user_id) is not Role.LISTENER:
            raise Conflict("that person is already on stage")
        self.invited[user_id] = clean_name(name)

    def accept_invitation(self, actor: str) -> None:
        """An invited listener steps on stage."""
        self._require_live()
        name = self.invited.get(actor)
        if name is None:
            raise NotFound("there is no invitation for you")
        self._add_to_stage(actor, name, Role.SPEAKER)
        del self.invited[actor]
        self.speak_requests.pop(actor, None)

    def make_cohost(self, actor: str, user_id: str, name: str = "") -> None:
        """Make someone a co-host. Host only."""
        self._require(actor, Action.MANAGE_COHOSTS)
        self._require_not_ended()
        self._require_not_removed(user_id)
        role = self.role_of(user_id)
        if role is Role.HOST:
            raise Conflict("the host is already the host")
        if role is Role.COHOST:
            return
        if self.count(Role.COHOST) >= self.limits.max_cohosts:
            raise LimitReached(f"a space has at most {self.limits.max_cohosts} co-hosts")
        member = self.members.get(user_id)
        if member is None:
            request = self.speak_requests.get(user_id)
            known = request.name if request else self.invited.get(user_id, "")
            member = Member(user_id, known or clean_name(name), Role.COHOST)
            self.members[user_id] = member
        member.role = Role.COHOST
        self.speak_requests.pop(user_id, None)
        self.invited.pop(user_id, None)

    def unmake_cohost(self, actor: str, user_id: str) -> None:
        """A co-host goes back to being a speaker. Host only."""
        self._require(actor, Action.MANAGE_COHOSTS)
        self._require_not_ended()
        member = self.members.get(user_id)
        if member is None or member.role is not Role.COHOST:
            raise Conflict("that person is not a co-host")
        # Going back to speaker must not break the speaker limit: then they leave the stage.
        if self.count(Role.SPEAKER) >= self.limits.max_speakers:
            del self.members[user_id]
        else:
            member.role = Role.SPEAKER

    def move_to_audience(self, actor: str, user_id: str) -> None:
        """Take someone off the stage (a moderator), or leave it oneself."""
        target = self.role_of(user_id)
        if target is Role.LISTENER:
            raise Conflict("that person is not on stage")
        if actor == user_id:
            self._require(actor, Action.LEAVE_STAGE)
        else:
            role = self.check(actor, Action.MOVE_TO_AUDIENCE)
            self._require_outranks(role, user_id)
        self._require_not_ended()
        del self.members[user_id]

    def set_muted(self, actor: str, user_id: str, muted: bool) -> None:
        """Mute or unmute: moderators on anyone, speakers on themselves."""
        member = self.members.get(user_id)
        if member is None:
            raise NotFound("that person is not on stage")
        if actor == user_id:
            self._require(actor, Action.MUTE_SELF)
        else:
            self._require(actor, Action.MUTE_OTHERS)
        self._require_not_ended()
        member.muted = muted

    def remove(self, actor: str, user_id: str) -> None:
        """Remove someone from the space and keep them out of the stage and the queue."""
        role = self.check(actor, Action.REMOVE_MEMBER)
        if actor == user_id:
            raise Conflict("you cannot remove yourself")
        self._require_outranks(role, user_id)
        self._require_not_ended()
        self.members.pop(user_id, None)
        self.speak_requests.pop(user_id, None)
        self.invited.pop(user_id, None)
        self.removed.add(user_id)

    # -- checks -----------------------------------------------------------------------------

    def check(self, actor: str, action: Action) -> Role:
        """Raise `NotAllowed` unless `actor` may do `action` here; returns the role they act
        with. An `Operator` acts with `Role.OPERATOR` wherever their place here (on stage, or
        in the audience) does not allow the action; a removal from this space does not bar
        that (a takedown must never depend on the people it takes down)."""
        role = self.role_of(actor)
        if isinstance(actor, Operator) and not can(role, action) and can(Role.OPERATOR, action):
            return Role.OPERATOR
        self._require_not_removed(actor)
        require(role, action)
        return role

    def _require(self, actor: str, action: Action) -> None:
        self.check(actor, action)

    def _require_outranks(self, actor_role: Role, user_id: str) -> None:
        target = self.role_of(user_id)
        if target is Role.HOST:
            # An operator who must silence a host ends the space instead.
            raise NotAllowed("nobody can act on the host")
        if target is Role.COHOST and actor_role not in (Role.HOST, Role.OPERATOR):
            raise NotAllowed("only the host can act on a co-host")

    def _require_not_removed(self, user_id: str) -> None:
        if user_id in self.removed:
            raise NotAllowed("you were removed from this space")

    def _require_live(self) -> None:
        if self.state is not SpaceState.LIVE:
            raise Conflict(f"the space is {self.state.value}, not live")

    def _require_not_ended(self) -> None:
        if self.state is SpaceState.ENDED:
            raise Conflict("the space has ended")

    def _add_to_stage(self, user_id: str, name: str, role: Role) -> None:
        self._require_not_removed(user_id)
        if self.role_of(user_id) is not Role.LISTENER:
            raise Conflict("that person is already on stage")
        if self.count(Role.SPEAKER) >= self.limits.max_speakers:
            raise LimitReached(f"a space has at most {self.limits.max_speakers} speakers")
        self.members[user_id] = Member(user_id, name, role)

    # -- storage form -----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for stores (not the public API view)."""
        return {
            "id": self.id,
            "title": self.title,
            "description": self.description,
            "host_id": self.host_id,
            "created_at": self.created_at.isoformat(),
            "scheduled_start": _iso(self.scheduled_start),
            "state": self.state.value,
            "started_at": _iso(self.started_at),
            "ended_at": _iso(self.ended_at),
            "limits": {
                "max_cohosts": self.limits.max_cohosts,
                "max_speakers": self.limits.max_speakers,
                "max_speak_requests": self.limits.max_speak_requests,
                "hand_ttl_seconds": self.limits.hand_ttl_seconds,
                "max_hands_per_address": self.limits.max_hands_per_address,
            },
            "members": [
                {"user_id": m.user_id, "name": m.name, "role": m.role.value, "muted": m.muted}
                for m in self.members.values()
            ],
            "speak_requests": [
                {
                    "user_id": r.user_id,
                    "name": r.name,
                    "at": r.at.isoformat(),
                    "address": r.address,
                    "account": r.account,
                }
                for r in self.speak_requests.values()
            ],
            "invited": dict(self.invited),
            "removed": sorted(self.removed),
            "recording": self.recording,
            "capacity": self.capacity,
            "ending_at": _iso(self.ending_at),
            "replay_taken_down_at": _iso(self.replay_taken_down_at),
            "captions": self.captions,
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Space:
        """The inverse of `to_dict`."""
        return cls(
            id=data["id"],
            title=data["title"],
            description=data["description"],
            host_id=data["host_id"],
            created_at=datetime.fromisoformat(data["created_at"]),
            scheduled_start=_from_iso(data["scheduled_start"]),
            state=SpaceState(data["state"]),
            started_at=_from_iso(data["started_at"]),
            ended_at=_from_iso(data["ended_at"]),
            limits=SpaceLimits(**data["limits"]),
            members={
                m["user_id"]: Member(m["user_id"], m["name"], Role(m["role"]), m["muted"])
                for m in data["members"]
            },
            speak_requests={
                r["user_id"]: SpeakRequest(
                    r["user_id"],
                    r["name"],
                    datetime.fromisoformat(r["at"]),
                    r.get("address", ""),  # spaces stored before hands had one
                    r.get("account", False),
                )
                for r in data["speak_requests"]
            },
            invited=dict(data["invited"]),
            removed=set(data["removed"]),
            recording=data["recording"],
            capacity=data.get("capacity"),
            ending_at=_from_iso(data.get("ending_at")),  # spaces stored before housekeeping
            replay_taken_down_at=_from_iso(data.get("replay_taken_down_at")),
            captions=data.get("captions", True),  # spaces stored before captions
            version=data["version"],
        )

    def copy(self) -> Space:
        """A deep copy, so a failed change never leaks into a cached object."""
        return Space.from_dict(self.to_dict())


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise Invalid(f"{name} must include a time zone (for example 2026-11-21T18:00:00Z)")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


__all__ = [
    "SPACE_ID",
    "UNCHANGED",
    "Member",
    "Space",
    "SpaceLimits",
    "SpaceState",
    "SpeakRequest",
    "Unchanged",
    "check_space_id",
    "clean_name",
    "hand_order",
    "new_space_id",
]
