"""Moderation storage, SQLite and Redis alike: reports (dedupe, queue, decisions), the audit
log (append-only, whatever code tries), bans."""

import ast
import asyncio
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis as redis_sync

from causerie.cluster.keys import KEYS
from causerie.domain import Invalid, NotFound
from causerie.domain.audit import AuditAction, AuditEntry
from causerie.domain.reports import (
    Decision,
    Report,
    ReportState,
    Target,
    TargetKind,
    decide,
    file_report,
)
from causerie.store import ModerationStore, SqliteModeration
from causerie.store.redis_moderation import RedisModeration

NOW = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
SPEAKER = Target("s1", TargetKind.SPEAKER, "l-1")
SRC = Path(__file__).parents[2] / "src" / "causerie"


def report(reporter: str, target: Target = SPEAKER, minutes: int = 0) -> Report:
    return file_report(
        target, reason="spam", note=None, reporter=reporter, now=NOW + timedelta(minutes=minutes)
    )


def entry(n: int) -> AuditEntry:
    return AuditEntry(
        at=NOW + timedelta(seconds=n),
        actor="host",
        actor_role="host",
        action=AuditAction.MUTE,
        space_id="s1",
        target=f"user:l-{n}",
        reason=f"reason {n}",
    )


@pytest.fixture(params=["sqlite", "redis"])
async def stores(request, tmp_path):
    made = []
    url = request.getfixturevalue("redis_url") if request.param == "redis" else None

    def new() -> ModerationStore:
        store = SqliteModeration(tmp_path / "db.sqlite3") if url is None else RedisModeration(url)
        made.append(store)
        return store

    yield new
    for store in made:
        await store.close()


@pytest.fixture
async def store(stores) -> ModerationStore:
    return stores()


async def test_reports_dedupe_per_reporter_and_target(store) -> None:
    first, new = await store.add_report(report("a"))
    assert new
    again, new = await store.add_report(report("a", minutes=5))  # the same person, again
    assert not new and again == first
    other, new = await store.add_report(report("b", minutes=1))
    assert new and other.ref != first.ref
    _, new = await store.add_report(report("a", Target("s1", TargetKind.SPACE, "s1")))
    assert new  # another target
    assert await store.get_report(first.ref) == first
    with pytest.raises(NotFound):
        await store.get_report("R-NOPE")
    assert [r.ref for r in await store.open_reports_of(SPEAKER.key)] == [first.ref, other.ref]
    assert len(await store.open_reports()) == 3
    assert await store.open_count() == 3


async def test_concurrent_repeats_make_one_report(store) -> None:
    kept = await asyncio.gather(*(store.add_report(report("a")) for _ in range(10)))
    assert len({r.ref for r, _ in kept}) == 1
    assert sum(new for _, new in kept) == 1


async def test_decisions_close_open_reports_once(stores) -> None:
    one, two = stores(), stores()
    reports = [(await one.add_report(report(r, minutes=i)))[0] for i, r in enumerate("abc")]
    decided = decide(reports, Decision.REMOVE_SPEAKER, actor="op", reason="abuse", now=NOW)
    racing = [Report.from_dict(r.to_dict()) for r in await two.open_reports_of(SPEAKER.key)]
    decide(racing, Decision.DISMISS, actor="op2", reason="fine", now=NOW)
    assert len(await one.close_reports(decided)) == 3
    assert await two.close_reports(racing) == []  # decided first by the other operator
    assert await one.open_reports() == []
    assert await two.open_count() == 0
    stored = await two.get_report(reports[0].ref)
    assert (stored.state, stored.decision, stored.decided_by) == (
        ReportState.ACTIONED,
        Decision.REMOVE_SPEAKER,
        "op",
    )
    # Once decided, the same person may report the same speaker again: a new report.
    again, new = await one.add_report(report("a", minutes=9))
    assert new and again.ref != reports[0].ref


async def test_reports_since(store) -> None:
    for i, who in enumerate("abc"):
        await store.add_report(report(who, minutes=10 * i))
    since = await store.reports_since(NOW + timedelta(minutes=10))
    assert [r.reporter for r in since] == ["b", "c"]


async def test_audit_appends_and_pages(stores) -> None:
    store = stores()
    added = [await store.append_audit(entry(n)) for n in range(5)]
    assert all(a.id for a in added)
    first = await store.audit(limit=2)
    assert [e.target for e in first] == ["user:l-0", "user:l-1"]
    rest = await stores().audit(after=first[-1].id, limit=10)  # another node reads them too
    assert [e.target for e in rest] == ["user:l-2", "user:l-3", "user:l-4"]
    assert rest[0] == added[2]
    assert await store.audit(after=rest[-1].id) == []
    latest = await stores().latest_audit(2)
    assert [e.target for e in latest] == ["user:l-4", "user:l-3"]
    assert latest[0] == added[4]
    with pytest.raises(Invalid):
        await store.audit(after="../x")


async def test_bans(stores) -> None:
    one, two = stores(), stores()
    assert await one.ban("l-1")
    assert not await two.ban("l-1")
    assert await two.ban("acct-2")
    assert await one.banned() == {"l-1", "acct-2"}


def test_the_protocol_cannot_change_the_audit_log() -> None:
    """Nothing in the store's surface edits or removes an audit entry."""
    names = [n for n in dir(ModerationStore) if not n.startswith("_")]
    audit_methods = [n for n in names if "audit" in n]
    assert sorted(audit_methods) == ["append_audit", "audit", "latest_audit"]
    for cls in (SqliteModeration, RedisModeration):
        public = {n for n in dir(cls) if not n.startswith("_")}
        assert public == set(names), cls


async def test_sqlite_refuses_update_and_delete_of_audit_rows(tmp_path) -> None:
    store = SqliteModeration(tmp_path / "db.sqlite3")
    await store.append_audit(entry(1))
    await store.close()
    db = sqlite3.connect(tmp_path / "db.sqlite3")  # any code, with the file in hand
    for sql in (
        "UPDATE audit SET body = '{}'",
        "DELETE FROM audit",
        "DELETE FROM audit WHERE id = 1",
        "INSERT OR REPLACE INTO audit (id, at, body) VALUES (1, 'x', '{}')",
    ):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            db.execute(sql)
    assert db.execute("SELECT count(*) FROM audit").fetchone() == (1,)
    db.close()
    reopened = SqliteModeration(tmp_path / "db.sqlite3")
    assert [e.target for e in await reopened.audit()] == ["user:l-1"]
    await reopened.close()


def _calls_and_strings(tree: ast.AST) -> tuple[list[ast.Call], list[str]]:
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    strings = [
        n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    ]
    return calls, strings


def test_no_code_removes_or_trims_the_audit_stream() -> None:
    """No code in causerie can delete or trim the audit stream.

    Read as code (the syntax tree, so docstrings and comments do not count): no call of
    xdel/xtrim anywhere, no xadd with maxlen/minid, no Lua script with XDEL/XTRIM or a capped
    XADD; the audit key is named only where it is defined and in the module that XADDs to it,
    and no delete-like call there touches it.
    """
    lua_destructive = re.compile(r"\b(XDEL|XTRIM|MAXLEN|MINID)\b", re.IGNORECASE)
    mentions = set()
    for path in SRC.rglob("*.py"):
        tree = ast.parse(path.read_text("utf-8"))
        calls, strings = _calls_and_strings(tree)
        for call in calls:
            name = call.func.attr if isinstance(call.func, ast.Attribute) else ""
            assert name not in ("xdel", "xtrim"), f"{path.name}: {name}"
            if name == "xadd":
                words = {k.arg for k in call.keywords}
                assert not words & {"maxlen", "minid"}, f"{path.name}: a capped xadd"
            if name in ("delete", "unlink", "expire", "pexpire", "rename", "getdel"):
                assert "audit" not in ast.unparse(call), f"{path.name}: {ast.unparse(call)}"
        for text in strings:
            if "redis.call" in text and lua_destructive.search(text):
                # Only the live-events bus caps its own streams (bus/redis.py), never the audit.
                assert path.name == "redis.py" and path.parent.name == "bus", path
        if any(
            isinstance(n, ast.Attribute)
            and n.attr == "audit"
            and ast.unparse(n.value).endswith(("keys", "KEYS"))
            for n in ast.walk(tree)
        ):
            mentions.add(path.relative_to(SRC).as_posix())
    assert mentions == {"store/redis_moderation.py"}
    # The script that writes it: XADD and nothing else.
    writer = (SRC / "store" / "redis_moderation.py").read_text("utf-8")
    script = writer.split("_APPEND_AUDIT = ")[1].split('"""')[1]
    assert re.findall(r"redis\.call\('(\w+)'", script) == ["XADD"]
    assert "'*'" in script and not lua_destructive.search(script)


async def test_redis_stream_holds_every_entry(redis_url) -> None:
    store = RedisModeration(redis_url)
    for n in range(3):
        await store.append_audit(entry(n))
    await store.close()
    raw = redis_sync.Redis.from_url(redis_url)
    assert raw.type(KEYS.audit) == b"stream" and raw.xlen(KEYS.audit) == 3
    raw.close()
