"""Reports end to end on a real node: a listener reports, an operator reviews the queue and
acts, the act reaches the space and the audit log; bad input, floods, dedupe, who may do what."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import httpx
import pytest

from causerie.cli import issue_account_token
from tests.conftest import account
from tests.harness.in_process import RunningNode, run_node


def operator(data_dir: Path, user: str = "u-op") -> dict[str, str]:
    token = issue_account_token(data_dir, "Olga", user, days=1, operator=True)
    return {"Authorization": f"Bearer {token}"}


async def join(client: httpx.AsyncClient, space_id: str) -> tuple[str, dict[str, str]]:
    joined = (await client.post(f"/api/spaces/{space_id}/join")).json()
    return joined["listener_id"], {"Authorization": f"Bearer {joined['token']}"}


async def live_space(client: httpx.AsyncClient, node: RunningNode) -> dict:
    """A live space (no recording) with a speaker who raised a hand, and a question."""
    host = account(node.data_dir, user="u-host")
    space = (
        await client.post(
            "/api/spaces", json={"title": "Town hall", "recording": False}, headers=host
        )
    ).json()
    base = f"/api/spaces/{space['id']}"
    assert (await client.post(f"{base}/start", headers=host)).status_code == 200
    speaker, speaker_auth = await join(client, space["id"])
    await client.post(f"{base}/speak-requests", json={"name": "Sam"}, headers=speaker_auth)
    assert (await client.post(f"{base}/speak-requests/{speaker}/approve", headers=host)).is_success
    asked = await client.post(
        f"{base}/questions", json={"text": "Buy my pills?"}, headers=speaker_auth
    )
    return {
        "id": space["id"],
        "base": base,
        "host": host,
        "speaker": speaker,
        "speaker_auth": speaker_auth,
        "question": asked.json()["id"],
    }


@pytest.fixture
async def client(node: RunningNode):
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
        yield http


async def audit(client, op) -> list[dict]:
    page = await client.get("/api/admin/audit", headers=op)
    assert page.status_code == 200, page.text
    return page.json()["entries"]


async def test_report_review_takedown(client, node) -> None:
    """A speaker is reported by three listeners; the operator sees one line, removes the
    speaker with a reason; the space shows it, the reports are closed, the audit has it."""
    space = await live_space(client, node)
    op = operator(node.data_dir)
    refs = []
    for note in ("selling pills on air", None, "spam again"):
        _, auth = await join(client, space["id"])
        body = {"target": "speaker", "target_id": space["speaker"], "reason": "spam"}
        if note:
            body["note"] = note
        made = await client.post(f"{space['base']}/reports", json=body, headers=auth)
        assert made.status_code == 201, made.text
        assert made.json()["state"] == "open" and made.json()["ref"].startswith("R-")
        refs.append(made.json()["ref"])
    _, other = await join(client, space["id"])
    q_report = await client.post(
        f"{space['base']}/reports",
        json={"target": "question", "target_id": space["question"], "reason": "spam"},
        headers=other,
    )
    assert q_report.status_code == 201

    queue = (await client.get("/api/admin/reports", headers=op)).json()["groups"]
    assert [(g["target"]["kind"], g["count"]) for g in queue] == [("speaker", 3), ("question", 1)]
    top = queue[0]
    assert top["ref"] == refs[0] and top["reasons"] == {"spam": 3}
    # What the operator reads before deciding: the space, and the speaker's name.
    assert (top["space_title"], top["label"]) == ("Town hall", "Sam")
    assert queue[1]["label"] == "Buy my pills?"
    assert [r["note"] for r in top["reports"]] == ["selling pills on air", "", "spam again"]
    assert "remove_speaker" in top["actions"] and "hide_question" not in top["actions"]

    # A reason is required; nothing happens without one.
    no_reason = await client.post(
        f"/api/admin/reports/{refs[1]}/actions",
        json={"action": "remove_speaker", "reason": " "},
        headers=op,
    )
    assert no_reason.status_code == 422
    wrong = await client.post(
        f"/api/admin/reports/{refs[1]}/actions",
        json={"action": "hide_question", "reason": "x"},
        headers=op,
    )
    assert wrong.status_code == 422 and "does not apply" in wrong.json()["message"]
    acted = await client.post(
        f"/api/admin/reports/{refs[1]}/actions",
        json={"action": "remove_speaker", "reason": "commercial spam, rule 3"},
        headers=op,
    )
    assert acted.status_code == 200, acted.text
    result = acted.json()
    assert sorted(result["reports_closed"]) == sorted(refs)
    [entry] = result["audit"]
    assert entry["action"] == "remove_speaker" and entry["actor"] == "u-op"
    assert entry["actor_role"] == "operator" and entry["target"] == f"user:{space['speaker']}"
    assert entry["reason"] == "commercial spam, rule 3" and entry["report_ref"] == refs[1]

    details = (await client.get(space["base"])).json()
    assert space["speaker"] not in [m["id"] for m in details["stage"]]
    # Removed: the speaker cannot raise a hand again.
    again = await client.post(f"{space['base']}/speak-requests", headers=space["speaker_auth"])
    assert again.status_code == 403
    # Decided once: a second decision on the same reports is a conflict.
    late = await client.post(
        f"/api/admin/reports/{refs[0]}/actions",
        json={"action": "dismiss", "reason": "x"},
        headers=op,
    )
    assert late.status_code == 409
    queue = (await client.get("/api/admin/reports", headers=op)).json()["groups"]
    assert [g["target"]["kind"] for g in queue] == ["question"]

    # The question: hidden by the operator, for everyone.
    hidden = await client.post(
        f"/api/admin/reports/{queue[0]['ref']}/actions",
        json={"action": "hide_question", "reason": "spam"},
        headers=op,
    )
    assert hidden.status_code == 200
    visible = (await client.get(f"{space['base']}/questions")).json()["questions"]
    assert space["question"] not in [x["id"] for x in visible]

    entries = await audit(client, op)
    assert [e["action"] for e in entries] == ["remove_speaker", "hide_question"]
    latest = await client.get("/api/admin/audit/latest", params={"limit": 1}, headers=op)
    assert latest.json()["entries"] == entries[-1:]
    assert (await client.get("/api/admin/reports", headers=op)).json()["groups"] == []


async def test_ban_takes_effect_and_end_space(client, node) -> None:
    space = await live_space(client, node)
    op = operator(node.data_dir)
    _, auth = await join(client, space["id"])
    made = await client.post(
        f"{space['base']}/reports",
        json={"target": "question", "target_id": space["question"], "reason": "illegal"},
        headers=auth,
    )
    banned = await client.post(
        f"/api/admin/reports/{made.json()['ref']}/actions",
        json={"action": "ban_account", "reason": "illegal sales"},
        headers=op,
    )
    assert banned.status_code == 200, banned.text
    assert [e["action"] for e in banned.json()["audit"]] == ["ban_account", "remove_speaker"]
    # The author (the speaker) is refused everywhere now: asking, reporting, raising a hand.
    asked = await client.post(
        f"{space['base']}/questions", json={"text": "again?"}, headers=space["speaker_auth"]
    )
    assert asked.status_code == 403 and "banned" in asked.json()["message"]

    # A report of the space itself: end it.
    made = await client.post(f"{space['base']}/reports", json={"reason": "violence"}, headers=auth)
    assert made.status_code == 201
    ended = await client.post(
        f"/api/admin/reports/{made.json()['ref']}/actions",
        json={"action": "end_space", "reason": "incitement"},
        headers=op,
    )
    assert ended.status_code == 200
    assert (await client.get(space["base"])).json()["state"] == "ended"


async def test_host_acts_land_in_the_audit_log(client, node) -> None:
    space = await live_space(client, node)
    op = operator(node.data_dir)
    base, host, speaker = space["base"], space["host"], space["speaker"]
    assert (
        await client.put(f"{base}/stage/{speaker}/muted", json={"muted": True}, headers=host)
    ).is_success
    # Muting oneself is no moderation: not logged.
    assert (
        await client.put(
            f"{base}/stage/{speaker}/muted", json={"muted": False}, headers=space["speaker_auth"]
        )
    ).is_success
    assert (
        await client.post(f"{base}/questions/{space['question']}/hide", headers=host)
    ).is_success
    assert (
        await client.post(
            f"{base}/removals", json={"user_id": speaker, "reason": "rude"}, headers=host
        )
    ).is_success
    assert (await client.post(f"{base}/end", headers=host)).is_success
    entries = await audit(client, op)
    assert [
        (e["action"], e["actor"], e["actor_role"], e["target"], e["reason"]) for e in entries
    ] == [
        ("mute", "u-host", "host", f"user:{speaker}", ""),
        ("hide_question", "u-host", "host", f"question:{space['question']}", ""),
        ("remove_member", "u-host", "host", f"user:{speaker}", "rude"),
        ("end_space", "u-host", "host", f"space:{space['id']}", ""),
    ]
    # Paged, and as CSV.
    first = (await client.get("/api/admin/audit?limit=3", headers=op)).json()
    assert len(first["entries"]) == 3 and first["next"] == first["entries"][-1]["id"]
    rest = (await client.get(f"/api/admin/audit?limit=3&after={first['next']}", headers=op)).json()
    assert [e["action"] for e in rest["entries"]] == ["end_space"] and rest["next"] is None
    exported = await client.get("/api/admin/audit?format=csv&limit=2", headers=op)
    assert exported.headers["content-type"].startswith("text/csv")
    assert 'rel="next"' in exported.headers["link"]
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert rows[0][4] == "action" and [r[4] for r in rows[1:]] == ["mute", "hide_question"]
    bad = await client.get("/api/admin/audit?after=nope", headers=op)
    assert bad.status_code == 422


async def test_bad_reports(client, node) -> None:
    space = await live_space(client, node)
    _, auth = await join(client, space["id"])
    url = f"{space['base']}/reports"
    cases = [
        ({"reason": "spam", "note": ""}, 422, "note"),
        ({"reason": "spam", "note": "   "}, 422, "note must not be empty"),
        ({"reason": "spam", "note": "x" * 501}, 422, "too long"),
        ({"reason": "other"}, 422, "needs a note"),
        ({"reason": "rude"}, 422, "unknown reason"),
        ({"reason": "spam", "target": "planet"}, 422, "target"),
        ({"reason": "spam", "target": "speaker", "target_id": "l-nobody"}, 404, "no such speaker"),
        ({"reason": "spam", "target": "question", "target_id": "q-nope"}, 404, "no such question"),
        ({"reason": "spam", "target": "question"}, 422, "needs the question"),
        ({"reason": "spam", "extra": 1}, 422, "extra"),
    ]
    for body, status, words in cases:
        answer = await client.post(url, json=body, headers=auth)
        assert answer.status_code == status, (body, answer.text)
        assert words in answer.json()["message"], (body, answer.json())
    broken = {**auth, "Content-Type": "application/json"}
    assert (await client.post(url, content=b"{", headers=broken)).status_code == 400
    assert (await client.post(url, json={"reason": "spam"})).status_code == 401
    assert (
        await client.post("/api/spaces/nope/reports", json={"reason": "spam"}, headers=auth)
    ).status_code in (403, 404)


async def test_repeats_are_one_report(client, node) -> None:
    space = await live_space(client, node)
    _, auth = await join(client, space["id"])
    url = f"{space['base']}/reports"
    first = await client.post(url, json={"reason": "hate", "note": "at 12:03"}, headers=auth)
    again = await client.post(url, json={"reason": "spam"}, headers=auth)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["ref"] == first.json()["ref"] and again.json()["reason"] == "hate"
    groups = (await client.get("/api/admin/reports", headers=operator(node.data_dir))).json()[
        "groups"
    ]
    assert [g["count"] for g in groups] == [1]


async def test_a_flood_from_one_address_is_refused(client, node) -> None:
    """Fresh listener tokens are free: the address's bucket (20) stops the flood."""
    space = await live_space(client, node)
    statuses = []
    for _ in range(24):
        _, auth = await join(client, space["id"])
        answer = await client.post(
            f"{space['base']}/reports", json={"reason": "spam"}, headers=auth
        )
        statuses.append(answer.status_code)
        if answer.status_code == 429:
            assert int(answer.headers["retry-after"]) >= 1
            assert answer.json()["error"]
    assert statuses[:20] == [201] * 20 and set(statuses[20:]) == {429}
    # One token: five, then one a minute.
    _, auth = await join(client, space["id"])
    # (The address is spent already; a node of its own shows the per-token bucket.)


async def test_one_token_is_limited_too(tmp_path) -> None:
    async with run_node(tmp_path / "data") as node, httpx.AsyncClient(base_url=node.url) as client:
        space = await live_space(client, node)
        _, auth = await join(client, space["id"])
        targets = [{"target": "space"}, {"target": "question", "target_id": space["question"]}]
        targets += [{"target": "speaker", "target_id": space["speaker"]}]
        targets += [{"target": "speaker", "target_id": "u-host"}]
        statuses = []
        for target in targets * 2:  # the repeats would be dedupes, but the bucket comes first
            answer = await client.post(
                f"{space['base']}/reports", json={"reason": "spam", **target}, headers=auth
            )
            statuses.append(answer.status_code)
        assert statuses[:4] == [201] * 4 and statuses[4] == 200 and statuses[5:] == [429] * 3


async def test_only_operators_see_and_decide(client, node) -> None:
    space = await live_space(client, node)
    _, listener = await join(client, space["id"])
    made = await client.post(f"{space['base']}/reports", json={"reason": "spam"}, headers=listener)
    ref = made.json()["ref"]
    decision = {"action": "dismiss", "reason": "fine"}
    for who in (space["host"], listener, space["speaker_auth"], account(node.data_dir, user="u-x")):
        assert (await client.get("/api/admin/reports", headers=who)).status_code == 403
        assert (await client.get("/api/admin/audit", headers=who)).status_code == 403
        assert (await client.get("/api/admin/audit/latest", headers=who)).status_code == 403
        answer = await client.post(f"/api/admin/reports/{ref}/actions", json=decision, headers=who)
        assert answer.status_code == 403
    assert (await client.get("/api/admin/reports")).status_code == 401
    op = operator(node.data_dir)
    assert (
        await client.post("/api/admin/reports/R-AAAAAAAAAAAA/actions", json=decision, headers=op)
    ).status_code == 404
    assert (
        await client.post("/api/admin/reports/nope/actions", json=decision, headers=op)
    ).status_code == 422
    assert (
        await client.post(f"/api/admin/reports/{ref}/actions", json=decision, headers=op)
    ).status_code == 200


async def test_transparency(client, node) -> None:
    space = await live_space(client, node)
    op = operator(node.data_dir)
    _, auth = await join(client, space["id"])
    made = await client.post(f"{space['base']}/reports", json={"reason": "hate"}, headers=auth)
    await client.post(
        f"/api/admin/reports/{made.json()['ref']}/actions",
        json={"action": "end_space", "reason": "hate speech"},
        headers=op,
    )
    figures = await client.get("/api/transparency")
    assert figures.status_code == 200 and "max-age=300" in figures.headers["cache-control"]
    months = figures.json()["months"]
    assert len(months) == 12
    now = months[0]
    assert now["reports_received"] == 1 and now["reports_by_reason"] == {"hate": 1}
    assert now["reports_actioned"] == 1 and now["actions"] == {"end_space": 1}
    assert now["actions_by_operators"] == 1 and now["median_seconds_to_action"] >= 0
    page = await client.get("/transparency")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]


async def test_a_ban_takes_the_account_off_every_live_stage(client, node) -> None:
    """An account speaking in two live spaces and hosting a third: banned from a report in the
    first, it leaves both stages and its own space ends; each act is logged where it happened."""
    data_dir = node.data_dir
    rogue = account(data_dir, name="Rex", user="u-rex")
    spaces = [await live_space(client, node) for _ in range(2)]
    for space in spaces:  # Rex comes on stage by invitation (an account keeps its id)
        invited = await client.post(
            f"{space['base']}/invitations",
            json={"user_id": "u-rex", "name": "Rex"},
            headers=space["host"],
        )
        assert invited.is_success, invited.text
        accepted = await client.post(f"{space['base']}/invitations/accept", headers=rogue)
        assert accepted.is_success, accepted.text
    own = (
        await client.post(
            "/api/spaces", json={"title": "Rex live", "recording": False}, headers=rogue
        )
    ).json()
    assert (await client.post(f"/api/spaces/{own['id']}/start", headers=rogue)).is_success

    _, auth = await join(client, spaces[0]["id"])
    made = await client.post(
        f"{spaces[0]['base']}/reports",
        json={"target": "speaker", "target_id": "u-rex", "reason": "harassment"},
        headers=auth,
    )
    op = operator(data_dir)
    banned = await client.post(
        f"/api/admin/reports/{made.json()['ref']}/actions",
        json={"action": "ban_account", "reason": "threats on air"},
        headers=op,
    )
    assert banned.status_code == 200, banned.text
    acts = {(e["action"], e["space_id"], e["target"]) for e in banned.json()["audit"]}
    assert acts == {
        ("ban_account", spaces[0]["id"], "user:u-rex"),
        ("remove_speaker", spaces[0]["id"], "user:u-rex"),
        ("remove_speaker", spaces[1]["id"], "user:u-rex"),
        ("end_space", own["id"], f"space:{own['id']}"),
    }
    for space in spaces:
        stage = (await client.get(space["base"])).json()["stage"]
        assert "u-rex" not in [p["id"] for p in stage]
    assert (await client.get(f"/api/spaces/{own['id']}")).json()["state"] == "ended"
    refused = await client.post("/api/spaces", json={"title": "Again"}, headers=rogue)
    assert refused.status_code == 403 and "banned" in refused.json()["message"]
