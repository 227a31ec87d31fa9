"""Accounts and the invites that make them: how an operator gives someone a host account
without shell access, and takes it back.

An invite is a link with a secret code, for one role (host, or operator), made by an operator:
single-use, expiring, revocable. Only a hash of the code is kept (the invite's id), so what a
store holds does not open any account; the code itself is shown once, when the invite is made.
Opening the link with a name makes an account and gives its token. Revoking an account refuses
every token it holds, on every node, from the next request (the node checks each request made
with an account token against the revoked ids; listener tokens are never looked up).

Pure: no I/O, the time is passed in. Stored whole with a version, like a space, so that two
nodes redeeming one invite at once cannot both succeed (optimistic concurrency).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from .errors import Conflict, Invalid, NotFound
from .roles import SiteRole
from .spaces import NAME_MAX
from .text import clean_text

INVITE_CODE = re.compile(r"^[A-Za-z0-9_-]{32}$")
"""What an invite code looks like: 24 random bytes, base64url (192 bits)."""
INVITE_ID = re.compile(r"^[0-9a-f]{32}$")
ACCOUNT_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

DEFAULT_INVITE_HOURS = 72
MAX_INVITE_HOURS = 30 * 24
"""An invite lives three days by default, a month at most: a link lying in a mailbox for
longer is a standing key to the site."""
ACCOUNT_TOKEN_DAYS = 90
"""How long the token given when an invite is opened is valid (the operator can revoke it)."""
NOTE_MAX = 200


def new_invite_code() -> str:
    """A fresh secret invite code (what the link carries)."""
    return secrets.token_urlsafe(24)


def invite_id(code: str) -> str:
    """The id an invite is kept under: a hash of its code. `NotFound` for a text that cannot
    be any invite's code (before any store is asked)."""
    if not INVITE_CODE.match(code):
        raise NotFound("no such invite")
    return hashlib.sha256(code.encode()).hexdigest()[:32]


def check_invite_id(text: str) -> None:
    """`NotFound` for a text that cannot be any invite's id."""
    if not INVITE_ID.match(text):
        raise NotFound("no such invite")


def check_account_id(text: str) -> None:
    """`NotFound` for a text that cannot be any account's id."""
    if not ACCOUNT_ID.match(text):
        raise NotFound("no such account")


def new_account_id() -> str:
    """A new account id, shaped like those `causerie token` makes."""
    return "u-" + secrets.token_urlsafe(9)


class InviteState(StrEnum):
    OPEN = "open"
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass
class Invite:
    """A single-use, expiring, revocable link to an account. Build with `Invite.create`."""

    id: str
    role: SiteRole
    created_by: str
    created_at: datetime
    expires_at: datetime
    note: str = ""
    """Who it is for, in the operator's words (shown in the list, never to the invitee)."""
    used_at: datetime | None = None
    account_id: str | None = None
    revoked_at: datetime | None = None
    version: int = 0

    @classmethod
    def create(
        cls,
        *,
        code: str,
        role: SiteRole,
        created_by: str,
        now: datetime,
        hours: float = DEFAULT_INVITE_HOURS,
        note: str = "",
    ) -> Invite:
        """A new open invite for `code`, valid `hours` from `now`."""
        if role is SiteRole.LISTENER:
            raise Invalid("an invite is for a host or an operator account")
        if not 0 < hours <= MAX_INVITE_HOURS:
            raise Invalid(f"an invite lives more than 0 and at most {MAX_INVITE_HOURS} hours")
        return cls(
            id=invite_id(code),
            role=role,
            created_by=created_by,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
            note=clean_text(note, field="note", max_length=NOTE_MAX, required=False),
        )

    def state(self, now: datetime) -> InviteState:
        if self.revoked_at is not None:
            return InviteState.REVOKED
        if self.used_at is not None:
            return InviteState.USED
        if now >= self.expires_at:
            return InviteState.EXPIRED
        return InviteState.OPEN

    def require_open(self, now: datetime) -> None:
        """`Conflict`, saying why, unless the invite can still be used."""
        state = self.state(now)
        if state is InviteState.USED:
            raise Conflict("this invite was used already; ask the operator for a new one")
        if state is InviteState.EXPIRED:
            raise Conflict("this invite has expired; ask the operator for a new one")
        if state is InviteState.REVOKED:
            raise Conflict("this invite was revoked")

    def redeem(self, name: str, now: datetime, account_id: str | None = None) -> Account:
        """Use the invite: the new account it gives (once)."""
        self.require_open(now)
        account = Account(
            id=account_id or new_account_id(),
            name=clean_text(name, field="name", max_length=NAME_MAX),
            role=self.role,
            created_at=now,
            invited_by=self.created_by,
            invite_id=self.id,
        )
        self.used_at = now
        self.account_id = account.id
        return account

    def revoke(self, now: datetime) -> None:
        """Take the link back before anyone uses it."""
        state = self.state(now)
        if state is InviteState.USED:
            raise Conflict("this invite was used already: revoke the account it made instead")
        if state is InviteState.REVOKED:
            raise Conflict("this invite was revoked already")
        self.revoked_at = now

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role.value,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "note": self.note,
            "used_at": _iso(self.used_at),
            "account_id": self.account_id,
            "revoked_at": _iso(self.revoked_at),
            "version": self.version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Invite:
        return cls(
            id=data["id"],
            role=SiteRole(data["role"]),
            created_by=data["created_by"],
            created_at=datetime.fromisoformat(data["created_at"]),
            expires_at=datetime.fromisoformat(data["expires_at"]),
            note=data["note"],
            used_at=_from_iso(data["used_at"]),
            account_id=data["account_id"],
            revoked_at=_from_iso(data["revoked_at"]),
            version=data["version"],
        )


@dataclass
class Account:
    """An account made by an invite (accounts from `causerie token` are not listed anywhere:
    they exist only in their tokens, and can be revoked by id all the same)."""

    id: str
    name: str
    role: SiteRole
    created_at: datetime
    invited_by: str
    invite_id: str
    revoked_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "created_at": self.created_at.isoformat(),
            "invited_by": self.invited_by,
            "invite_id": self.invite_id,
            "revoked_at": _iso(self.revoked_at),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Account:
        return cls(
            id=data["id"],
            name=data["name"],
            role=SiteRole(data["role"]),
            created_at=datetime.fromisoformat(data["created_at"]),
            invited_by=data["invited_by"],
            invite_id=data["invite_id"],
            revoked_at=_from_iso(data["revoked_at"]),
        )


def check_revocation(operator_id: str, account_id: str) -> None:
    """An operator revokes any account but their own (that would lock them out mid-action;
    another operator can). A revocation is for good: the id never works again."""
    check_account_id(account_id)
    if account_id == operator_id:
        raise Conflict("you cannot revoke your own account")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
