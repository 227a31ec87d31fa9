"""What the operator's accounts need from storage: invites, the accounts they made, and the
ids revoked. Two implementations: SQLite (the embedded store's file) and Redis.

Every node asks `is_revoked` on each request made with an account token, so a revocation takes
effect on every node at once; it is one indexed read (SQLite) or one SISMEMBER (Redis). Listener
tokens (the join storm, heartbeats) never come here.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Protocol, TypeVar

from ..domain import Conflict
from ..domain.accounts import Account, Invite

T = TypeVar("T")

LIST_LIMIT = 500
"""Invites and accounts listed at most (newest first)."""


class Accounts(Protocol):
    """Invites (saved whole, with a version), accounts, and revoked account ids."""

    async def add_invite(self, invite: Invite) -> None:
        """Save a new invite; `Conflict` if its id is taken."""

    async def get_invite(self, invite_id: str) -> Invite:
        """The invite, or `NotFound`."""

    async def list_invites(self, limit: int = LIST_LIMIT) -> list[Invite]:
        """Invites, newest first."""

    async def replace_invite(self, invite: Invite, expected_version: int) -> bool:
        """Save `invite` (its version becomes expected_version + 1) unless it changed since."""

    async def redeem_invite(self, invite: Invite, expected_version: int, account: Account) -> bool:
        """Like `replace_invite`, and save the account it made, both or neither."""

    async def list_accounts(self, limit: int = LIST_LIMIT) -> list[Account]:
        """Accounts made by invites, newest first."""

    async def revoke(self, account_id: str, at: datetime) -> None:
        """Refuse `account_id` for good (and mark it in the list, if an invite made it)."""

    async def is_revoked(self, account_id: str) -> bool:
        """Whether `account_id` was revoked."""

    async def close(self) -> None:
        """Release connections and files."""


async def update_invite(
    accounts: Accounts, invite_id: str, change: Callable[[Invite], T], *, attempts: int = 10
) -> tuple[Invite, T]:
    """Load an invite, apply `change` (which may raise a DomainError) and save it atomically;
    if someone else saved it meanwhile, the change is applied again to the new version."""
    for _ in range(attempts):
        invite = await accounts.get_invite(invite_id)
        version = invite.version
        result = change(invite)
        if await accounts.replace_invite(invite, version):
            return invite, result
    raise Conflict("the invite is changing too fast; try again")


async def redeem(
    accounts: Accounts, invite_id: str, name: str, now: datetime, *, attempts: int = 10
) -> Account:
    """Use an invite: the account it made. Of two nodes redeeming one invite at once, one
    saves first; the other reads it again, finds it used, and gets `Conflict`."""
    for _ in range(attempts):
        invite = await accounts.get_invite(invite_id)
        version = invite.version
        account = invite.redeem(name, now)
        if await accounts.redeem_invite(invite, version, account):
            return account
    raise Conflict("the invite is changing too fast; try again")
