"""The store, SQLite and Redis alike: save, read, list, optimistic concurrency, questions."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from causerie.domain import Conflict, NotFound, Space, SpaceState
from causerie.domain.questions import Question, QuestionState
from causerie.store import SqliteStore, update_space
from causerie.store.redis import RedisStore

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


def question(question_id: str, space_id: str = "a", text: str | None = None) -> Question:
    return Question(
        id=question_id,
        space_id=space_id,
        author_id="l1",
        author_name="Lou",
        text=text or f"Question {question_id}?",
        created_at=NOW,
    )


@pytest.fixture(params=["sqlite", "redis"])
async def stores(request, tmp_path):
    """Opens stores on the same data (one file, or one Redis); all closed when the test ends."""
    made = []
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    def new():
        store = SqliteStore(tmp_path / "db.sqlite3") if url is None else RedisStore(url)
        made.append(store)
        return store

    yield new
    for store in made:
        await store.close()


@pytest.fixture
async def store(stores):
    return stores()


async def test_create_and_read(store) -> None:
    space = make("a")
    await store.create_space(space)
    assert await store.get_space("a") == space
    with pytest.raises(Conflict):
        await store.create_space(make("a", minutes=30))  # another space with that id
    with pytest.raises(NotFound):
        await store.get_space("missing")


async def test_list_live_first_then_by_start(store) -> None:
    for space_id, minutes in (("late", 60), ("soon", 5), ("live", 120)):
        await store.create_space(make(space_id, minutes))
    await update_space(store, "live", lambda s: s.start("host", NOW))
    listed = await store.list_spaces([SpaceState.LIVE, SpaceState.SCHEDULED])
    assert [s.id for s in listed] == ["live", "soon", "late"]
    assert [s.id for s in await store.list_spaces([SpaceState.SCHEDULED], limit=1)] == ["soon"]
    assert [s.id for s in await store.list_spaces([SpaceState.ENDED])] == []
    assert await store.list_spaces([]) == []
    await update_space(store, "live", lambda s: s.end("host", NOW))
    assert [s.id for s in await store.list_spaces([SpaceState.ENDED])] == ["live"]
    assert [s.id for s in await store.list_spaces([SpaceState.LIVE])] == []


async def test_recently_ended_latest_first(store) -> None:
    for space_id, minutes in (("first", 5), ("second", 60), ("third", 30), ("still", 90)):
        await store.create_space(make(space_id, minutes))
    for space_id in ("first", "second", "third"):
        await update_space(store, space_id, lambda s: s.end("host", NOW))
    assert [s.id for s in await store.recently_ended()] == ["second", "third", "first"]
    assert [s.id for s in await store.recently_ended(limit=1)] == ["second"]
    assert await store.recently_ended(limit=0) == []


async def test_survives_reopening(stores) -> None:
    first = stores()
    await first.create_space(make("a"))
    await update_space(first, "a", lambda s: s.start("host", NOW))
    await first.close()
    second = stores()  # a new connection (Redis) or a new file handle (SQLite)
    assert (await second.get_space("a")).state is SpaceState.LIVE


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
    assert not await store.replace_space(make("missing"), 0)


async def test_concurrent_updates_lose_nothing(store) -> None:
    await store.create_space(make("a"))
    await update_space(store, "a", lambda s: s.start("host", NOW))

    async def raise_hand(i: int) -> None:
        await asyncio.sleep(0)
        await update_space(store, "a", lambda s: s.request_to_speak(f"l{i}", "x", NOW))

    await asyncio.gather(*(raise_hand(i) for i in range(20)))
    assert len((await store.get_space("a")).speak_requests) == 20


async def test_concurrent_updates_from_two_stores_lose_nothing(stores) -> None:
    """Two nodes (two connections) on one database: optimistic concurrency across them."""
    one, two = stores(), stores()
    await one.create_space(make("a"))
    await update_space(one, "a", lambda s: s.start("host", NOW))

    async def raise_hand(store, i: int) -> None:
        await asyncio.sleep(0)
        await update_space(store, "a", lambda s: s.request_to_speak(f"l{i}", "x", NOW))

    await asyncio.gather(*(raise_hand(one if i % 2 else two, i) for i in range(20)))
    assert len((await one.get_space("a")).speak_requests) == 20
    assert len((await two.get_space("a")).speak_requests) == 20


async def test_questions_and_votes(store) -> None:
    await store.add_question(question("q1"))
    await store.add_question(question("q2"))
    with pytest.raises(Conflict):
        await store.add_question(question("q1", text="Another question?"))
    with pytest.raises(NotFound):
        await store.get_question("a", "nope")
    assert await store.add_vote("a", "q2", "v1") == 1
    assert await store.add_vote("a", "q2", "v2") == 2
    assert await store.add_vote("a", "q2", "v1") is None  # once per voter
    assert await store.add_vote("a", "nope", "v1") is None
    assert (await store.get_question("a", "q2")).votes == 2
    # Saving a question changes its state and pin, never its votes.
    saved = await store.get_question("a", "q2")
    saved.state, saved.pinned, saved.votes = QuestionState.ANSWERED, True, 0
    await store.save_question(saved)
    again = await store.get_question("a", "q2")
    assert (again.state, again.pinned, again.votes) == (QuestionState.ANSWERED, True, 2)
    await store.save_question(question("never-added"))  # saving never creates
    with pytest.raises(NotFound):
        await store.get_question("a", "never-added")
    listed = await store.list_questions("a")
    assert [(x.id, x.votes) for x in listed] == [("q1", 0), ("q2", 2)]
    assert await store.list_questions("other") == []


async def test_concurrent_votes_count_once_each(store) -> None:
    await store.add_question(question("q1"))
    totals = await asyncio.gather(*(store.add_vote("a", "q1", f"v{i % 10}") for i in range(30)))
    assert sorted(t for t in totals if t is not None) == list(range(1, 11))
    assert (await store.get_question("a", "q1")).votes == 10


async def test_reactions_add_up(store) -> None:
    assert await store.reaction_totals("a") == {}
    await store.add_reactions("a", {"👏": 3, "🔥": 1})
    await store.add_reactions("a", {"👏": 2})
    await store.add_reactions("b", {"👏": 7})
    assert await store.reaction_totals("a") == {"👏": 5, "🔥": 1}
