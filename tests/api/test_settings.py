"""`GET /api/settings` against a real node: what it serves, and that it is what the API enforces.

The pages take their limits and reactions from this answer (tests/web/test_settings_drift.py
checks they copy none), so a served number that differs from the rule would mislead every page:
each limit is tried at the edge, through the endpoints that enforce it.
"""

from __future__ import annotations

from causerie.api.audience import EMOJI
from causerie.api.settings import REACTION_NAMES
from causerie.domain.questions import QUESTION_MAX
from causerie.domain.reports import NOTE_MAX, ReportReason
from causerie.domain.spaces import DESCRIPTION_MAX, NAME_MAX, TITLE_MAX
from causerie.domain.waiting_room import MAX_CAPACITY
from tests.conftest import account


async def test_settings_are_served_cacheable(client) -> None:
    response = await client.get("/api/settings")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=300"
    body = response.json()
    assert body["limits"] == {
        "title": TITLE_MAX,
        "description": DESCRIPTION_MAX,
        "name": NAME_MAX,
        "question": QUESTION_MAX,
        "capacity": MAX_CAPACITY,
        "report_note": NOTE_MAX,
        "invite_note": 200,
        "invite_hours": 30 * 24,
        "search": 200,
    }
    assert [r["reason"] for r in body["report_reasons"]] == [r.value for r in ReportReason]
    assert all(r["label"] for r in body["report_reasons"])
    assert [reaction["emoji"] for reaction in body["reactions"]] == list(EMOJI)
    # Every reaction has a name of its own for screen readers (not just the emoji again).
    assert set(REACTION_NAMES) == set(EMOJI)
    assert all(reaction["name"] != reaction["emoji"] for reaction in body["reactions"])


async def test_served_limits_are_the_enforced_ones(client, node) -> None:
    limits = (await client.get("/api/settings")).json()["limits"]
    host = account(node.data_dir)

    async def create(**body: object) -> int:
        response = await client.post("/api/spaces", json={"title": "Limits"} | body, headers=host)
        return response.status_code

    assert await create(title="t" * limits["title"]) == 201
    assert await create(title="t" * (limits["title"] + 1)) == 422
    assert await create(description="d" * limits["description"]) == 201
    assert await create(description="d" * (limits["description"] + 1)) == 422
    assert await create(capacity=limits["capacity"]) == 201
    assert await create(capacity=limits["capacity"] + 1) == 422

    space = (await client.post("/api/spaces", json={"title": "Limits"}, headers=host)).json()
    base = f"/api/spaces/{space['id']}"
    assert (await client.post(f"{base}/start", headers=host)).status_code == 200

    # A longer name is cut to the limit when joining; the token carries it to one's questions.
    joined = await client.post(f"{base}/join", json={"name": "n" * (limits["name"] + 5)})
    listener = {"Authorization": f"Bearer {joined.json()['token']}"}
    asked = await client.post(
        f"{base}/questions", json={"text": "q" * limits["question"]}, headers=listener
    )
    assert asked.status_code == 201, asked.text
    assert asked.json()["author_name"] == "n" * limits["name"]
    too_long = await client.post(
        f"{base}/questions", json={"text": "q" * (limits["question"] + 1)}, headers=listener
    )
    assert too_long.status_code == 422

    # A raised hand carries a name of at most the limit too.
    hand = f"{base}/speak-requests"
    refused = await client.post(hand, json={"name": "n" * (limits["name"] + 1)}, headers=listener)
    assert refused.status_code == 422
    raised = await client.post(hand, json={"name": "n" * limits["name"]}, headers=listener)
    assert raised.status_code == 200, raised.text


async def test_served_reactions_are_the_accepted_ones(client, node) -> None:
    reactions = (await client.get("/api/settings")).json()["reactions"]
    host = account(node.data_dir)
    space = (await client.post("/api/spaces", json={"title": "Clap"}, headers=host)).json()
    base = f"/api/spaces/{space['id']}"
    await client.post(f"{base}/start", headers=host)
    token = (await client.post(f"{base}/join")).json()["token"]
    listener = {"Authorization": f"Bearer {token}"}
    for reaction in reactions:
        sent = await client.post(
            f"{base}/reactions", json={"emoji": reaction["emoji"]}, headers=listener
        )
        assert sent.status_code == 202, (reaction, sent.text)
    unknown = await client.post(f"{base}/reactions", json={"emoji": "🦆"}, headers=listener)
    assert unknown.status_code == 422
