"""Invites, accounts and revocations, SQLite and Redis alike: single use under a race,
expiry, revocation, listing (two stores on the same data stand for two nodes)."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from causerie.accounts import RedisAccounts, SqliteAccounts, redeem, update_invite
from causerie.domain import Conflict, NotFound, SiteRole
from causerie.domain.accounts import Invite, InviteState, new_invite_code

NOW = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "redis"])
async def stores(request, tmp_path):
    """Opens stores on the same data (one file, or one Redis); all closed when the test ends."""
    made = []
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    def new():
        store = SqliteAccounts(tmp_path / "db.sqlite3") if url is None else RedisAccounts(url)
        made.append(store)
        return store

    yield new
    for store in made:
        await store.close()


def invite(minutes: int = 0, role: SiteRole = SiteRole.HOST) -> tuple[str, Invite]:
    code = new_invite_code()
    made = Invite.create(
        code=code,
        role=role,
        created_by="u-op",
        now=NOW + timedelta(minutes=minutes),
        note="for Ada",
    )
    return code, made


async def test_an_invite_makes_one_account(stores) -> None:
    store = stores()
    _, made = invite()
    await store.add_invite(made)
    assert (await store.get_invite(made.id)).to_dict() == made.to_dict()
    account = await redeem(store, made.id, "Ada", NOW + timedelta(hours=1))
    assert account.role is SiteRole.HOST and account.name == "Ada"
    used = await store.get_invite(made.id)
    assert used.state(NOW) is InviteState.USED and used.account_id == account.id
    assert [a.to_dict() for a in await store.list_accounts()] == [account.to_dict()]
    with pytest.raises(Conflict, match="used already"):
        await redeem(store, made.id, "Eve", NOW + timedelta(hours=2))
    assert len(await store.list_accounts()) == 1


async def test_two_nodes_redeeming_at_once_make_one_account(stores) -> None:
    first, second = stores(), stores()
    _, made = invite()
    await first.add_invite(made)
    outcomes = await asyncio.gather(
        *(redeem(s, made.id, f"N{i}", NOW) for i, s in enumerate([first, second] * 5)),
        return_exceptions=True,
    )
    accounts = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(accounts) == 1
    assert all(isinstance(o, Conflict) for o in outcomes if o not in accounts)
    assert [a.id for a in await second.list_accounts()] == [accounts[0].id]


async def test_expired_and_revoked_invites_make_nothing(stores) -> None:
    store = stores()
    _, old = invite()
    _, taken_back = invite(minutes=1)
    await store.add_invite(old)
    await store.add_invite(taken_back)
    with pytest.raises(Conflict, match="expired"):
        await redeem(store, old.id, "Ada", old.expires_at)
    await update_invite(store, taken_back.id, lambda i: i.revoke(NOW))
    with pytest.raises(Conflict, match="revoked"):
        await redeem(store, taken_back.id, "Ada", NOW)
    with pytest.raises(Conflict, match="revoked already"):
        await update_invite(store, taken_back.id, lambda i: i.revoke(NOW))
    assert await store.list_accounts() == []
    assert [i.id for i in await store.list_invites()] == [taken_back.id, old.id]
    with pytest.raises(NotFound):
        await store.get_invite("0" * 32)
    old.note = "another invite with the same id"
    with pytest.raises(Conflict):
        await store.add_invite(old)


async def test_a_revocation_is_seen_by_every_node_at_once(stores) -> None:
    first, second = stores(), stores()
    _, made = invite()
    await first.add_invite(made)
    account = await redeem(first, made.id, "Ada", NOW)
    assert not await second.is_revoked(account.id)
    await first.revoke(account.id, NOW)
    assert await second.is_revoked(account.id)
    listed = await second.list_accounts()
    assert listed[0].revoked_at == NOW
    # Twice is once; an account no invite made (from `causerie token`) is revoked by id too.
    await second.revoke(account.id, NOW + timedelta(hours=1))
    assert (await first.list_accounts())[0].revoked_at == NOW
    await second.revoke("u-from-the-cli", NOW)
    assert await first.is_revoked("u-from-the-cli")
    assert len(await first.list_accounts()) == 1
