"""A replay taken down after a report: 410 Gone everywhere at once, its files removed, the audit
entry kept (retention removes files, never audit rows); and the same across two nodes sharing
one Redis (a ban and a takedown made through one node hold on the other)."""

from __future__ import annotations

import sqlite3

import httpx

from causerie.node.data_dir import STORE_FILE
from causerie.node.loops import RecordingRetention
from tests.api.test_reports import join, operator
from tests.api.test_retention import DAY, FakeClock, recorded_space, replay_answers
from tests.conftest import account
from tests.harness.in_process import RunningNode, run_node
from tests.harness.polling import eventually


async def report_space(client: httpx.AsyncClient, node: RunningNode, space_id: str) -> str:
    """A report of an ended space's replay. Nobody joins an ended space: an account reports
    it (an account token is good for every space)."""
    reader = account(node.data_dir, user="u-reader")
    made = await client.post(
        f"/api/spaces/{space_id}/reports",
        json={"reason": "illegal", "note": "at 3:10"},
        headers=reader,
    )
    assert made.status_code == 201, made.text
    return made.json()["ref"]


async def test_a_replay_taken_down_answers_410_and_keeps_its_audit(node: RunningNode) -> None:
    svc = node.app.services
    clock = svc.clock = FakeClock()
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as client:
        space_id = await recorded_space(client, node)
        assert set((await replay_answers(client, space_id)).values()) <= {200, 201}
        ref = await report_space(client, node, space_id)
        op = operator(node.data_dir)
        acted = await client.post(
            f"/api/admin/reports/{ref}/actions",
            json={"action": "take_down_replay", "reason": "court order 12/2026"},
            headers=op,
        )
        assert acted.status_code == 200, acted.text
        [entry] = acted.json()["audit"]
        assert (entry["action"], entry["target"]) == ("take_down_replay", f"space:{space_id}")

        gone = await replay_answers(client, space_id)
        assert set(gone.values()) == {410}, gone
        answer = await client.get(f"/replay/{space_id}/index.m3u8")
        assert "taken down" in answer.json()["message"]
        assert "court order" not in answer.json()["message"]  # the reason stays in the audit
        details = (await client.get(f"/api/spaces/{space_id}")).json()
        assert details["replay_url"] is None and details["download_url"] is None
        # This node was done with the recording: its files went at once, the tombstone stays.
        directory = node.data_dir / "recordings" / space_id
        assert [p.name for p in directory.iterdir()] == ["removed.json"]

        # Retention passes later (even far later) remove recordings, never audit rows.
        clock.now += 400 * DAY
        await RecordingRetention(svc).step()
        await RecordingRetention(svc).step()
        db = sqlite3.connect(node.data_dir / STORE_FILE)
        rows = db.execute("SELECT body FROM audit").fetchall()
        db.close()
        assert len(rows) == 2 and "take_down_replay" in rows[1][0]  # after the host's end
        assert set((await replay_answers(client, space_id)).values()) == {410}
        metrics = (await client.get("/metrics")).text
        assert 'causerie_recordings_removed_total{reason="takedown"} 1' in metrics


async def test_bans_and_takedowns_hold_on_every_node(tmp_path, redis_url) -> None:
    async with (
        run_node(tmp_path / "one", redis_url=redis_url) as one,
        run_node(tmp_path / "two", redis_url=redis_url) as two,
        httpx.AsyncClient(base_url=one.url, timeout=10) as http1,
        httpx.AsyncClient(base_url=two.url, timeout=10) as http2,
    ):
        host = account(one.data_dir, user="u-host")
        space = (await http1.post("/api/spaces", json={"title": "Two"}, headers=host)).json()
        base = f"/api/spaces/{space['id']}"
        assert (await http1.post(f"{base}/start", headers=host)).status_code == 200
        user, auth = await join(http1, space["id"])
        asked = await http1.post(f"{base}/questions", json={"text": "Scam link?"}, headers=auth)
        # Reported through node two, decided through node one.
        _, reporter = await join(http2, space["id"])
        made = await http2.post(
            f"{base}/reports",
            json={"target": "question", "target_id": asked.json()["id"], "reason": "spam"},
            headers=reporter,
        )
        assert made.status_code == 201
        op = operator(one.data_dir)
        queue = (await http1.get("/api/admin/reports", headers=op)).json()["groups"]
        assert [g["ref"] for g in queue] == [made.json()["ref"]]
        banned = await http1.post(
            f"/api/admin/reports/{made.json()['ref']}/actions",
            json={"action": "ban_account", "reason": "scam links"},
            headers=op,
        )
        assert banned.status_code == 200, banned.text

        async def refused_on_two() -> bool:
            again = await http2.post(f"{base}/questions", json={"text": "x?"}, headers=auth)
            return again.status_code == 403

        await eventually(refused_on_two, 5, "the ban reaching node two")

        # Another report, of the space: taken down through node two; node one answers 410.
        made = await http1.post(f"{base}/reports", json={"reason": "violence"}, headers=reporter)
        taken = await http2.post(
            f"/api/admin/reports/{made.json()['ref']}/actions",
            json={"action": "take_down_replay", "reason": "threats"},
            headers=op,
        )
        assert taken.status_code == 200, taken.text

        async def gone_on_one() -> bool:
            return (await http1.get(f"/replay/{space['id']}/index.m3u8")).status_code == 410

        await eventually(gone_on_one, 5, "the takedown reaching node one")
        # One audit log for both nodes, in order.
        entries = (await http2.get("/api/admin/audit", headers=op)).json()["entries"]
        assert [(e["action"], e["target"]) for e in entries] == [
            ("ban_account", f"user:{user}"),
            ("take_down_replay", f"space:{space['id']}"),
        ]
