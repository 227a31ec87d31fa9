"""The SQLite store: save, read, list, optimistic concurrency."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from causerie.domain import Conflict, NotFound, Space, SpaceState
from causerie.store import SqliteStore, update_space

NOW = datetime(2026, 11, 21, 18, 0, tzinfo=UTC)


def make(space_id: str, minutes: int = 0) -> Space:
    return Space.create(
        space_id=space_id,
        host_id="host",
        host_name="Hana",
        title=f"Space {space_id}",
        now=NOW,
        scheduled_start=NOW + timedelta(minutes=minutes),
    )


@pytest.fixture
async def store(tmp_path):
    store = SqliteStore(tmp_path / "db.sqlite3")
    yield store
    await store.close()


async def test_create_and_read(store) -> None:
    space = make("a")
    await store.create_space(space)
    assert await store.get_space("a") == space
    with pytest.raises(Conflict):
        await store.create_space(make("a"))
    with pytest.raises(NotFound):
        await store.get_space("missing")


async def test_list_live_first_then_by_start(store) -> None:
    for space_id, minutes in (("late", 60), ("soon", 5), ("live", 120)):
        await store.create_space(make(space_id, minutes))
    await update_space(store, "live", lambda s: s.start("host", NOW))
    listed = await store.list_spaces([SpaceState.LIVE, SpaceState.SCHEDULED])
    assert [s.id for s in listed] == ["live", "soon", "late"]
    assert [s.id for s in await store.list_spaces([SpaceState.ENDED])] == []
    assert await store.list_spaces([]) == []


async def test_survives_reopening(tmp_path) -> None:
    first = SqliteStore(tmp_path / "db.sqlite3")
    await first.create_space(make("a"))
    await update_space(first, "a", lambda s: s.start("host", NOW))
    await first.close()
    second = SqliteStore(tmp_path / "db.sqlite3")
    assert (await second.get_space("a")).state is SpaceState.LIVE
    await second.close()


async def test_stale_writes_are_refused_and_retried(store) -> None:
    await store.create_space(make("a"))
    stale = await store.get_space("a")
    await update_space(store, "a", lambda s: s.make_cohost("host", "co"))
    stale.make_cohost("host", "other")
    assert not await store.replace_space(stale, 0)
    # update_space re-reads and applies again: both changes survive.
    space, _ = await update_space(store, "a", lambda s: s.make_cohost("host", "other"))
    assert {"co", "other"} <= set(space.members)
    assert space.version == 2


async def test_concurrent_updates_lose_nothing(store) -> None:
    await store.create_space(make("a"))
    await update_space(store, "a", lambda s: s.start("host", NOW))

    async def raise_hand(i: int) -> None:
        await asyncio.sleep(0)
        await update_space(store, "a", lambda s: s.request_to_speak(f"l{i}", "x", NOW))

    await asyncio.gather(*(raise_hand(i) for i in range(20)))
    assert len((await store.get_space("a")).speak_requests) == 20
