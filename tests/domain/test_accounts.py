"""Invites and accounts: the rules, with the clock passed in."""

from datetime import UTC, datetime, timedelta

import pytest

from causerie.domain import Conflict, Invalid, NotFound, SiteRole
from causerie.domain.accounts import (
    MAX_INVITE_HOURS,
    Invite,
    InviteState,
    check_revocation,
    invite_id,
    new_invite_code,
)

NOW = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


def make(**kwargs) -> Invite:
    options = {"code": new_invite_code(), "role": SiteRole.HOST, "created_by": "u-op", "now": NOW}
    return Invite.create(**(options | kwargs))


def test_only_a_hash_of_the_code_is_kept() -> None:
    code = new_invite_code()
    made = make(code=code)
    assert made.id == invite_id(code) and code not in str(made.to_dict())
    assert Invite.from_dict(made.to_dict()) == made


@pytest.mark.parametrize(
    "code", ["", "short", "x" * 33, "a" * 31 + "!", "../" + "a" * 29, "é" * 32, "a" * 31 + "\n"]
)
def test_a_malformed_code_is_no_invite(code: str) -> None:
    with pytest.raises(NotFound):
        invite_id(code)


def test_an_invite_expires_and_is_used_once() -> None:
    made = make(hours=1)
    assert made.state(NOW) is InviteState.OPEN
    assert made.state(NOW + timedelta(hours=1)) is InviteState.EXPIRED
    account = made.redeem("  Ada  ", NOW + timedelta(minutes=59))
    assert (account.name, account.role, account.invited_by) == ("Ada", SiteRole.HOST, "u-op")
    assert made.state(NOW) is InviteState.USED and made.account_id == account.id
    with pytest.raises(Conflict, match="used already"):
        made.redeem("Eve", NOW)
    with pytest.raises(Conflict, match="revoke the account"):
        made.revoke(NOW)


def test_an_expired_or_revoked_invite_is_refused() -> None:
    with pytest.raises(Conflict, match="expired"):
        make(hours=1).redeem("Ada", NOW + timedelta(hours=2))
    taken_back = make()
    taken_back.revoke(NOW)
    assert taken_back.state(NOW) is InviteState.REVOKED
    with pytest.raises(Conflict, match="revoked"):
        taken_back.redeem("Ada", NOW)
    with pytest.raises(Conflict, match="revoked already"):
        taken_back.revoke(NOW)


def test_an_operator_invite_makes_an_operator() -> None:
    assert make(role=SiteRole.OPERATOR).redeem("Olga", NOW).role is SiteRole.OPERATOR


@pytest.mark.parametrize(
    "kwargs",
    [
        {"role": SiteRole.LISTENER},
        {"hours": 0},
        {"hours": -1},
        {"hours": MAX_INVITE_HOURS + 1},
        {"note": "x" * 201},
        {"note": "bad\x00byte"},
    ],
)
def test_bad_invites_are_refused(kwargs) -> None:
    with pytest.raises(Invalid):
        make(**kwargs)


def test_an_operator_cannot_revoke_themselves() -> None:
    with pytest.raises(Conflict, match="your own"):
        check_revocation("u-op", "u-op")
    with pytest.raises(NotFound):
        check_revocation("u-op", "no spaces allowed")
    check_revocation("u-op", "u-other")
