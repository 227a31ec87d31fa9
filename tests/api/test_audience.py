"""Questions, votes and reactions through a real node: limits, order, aggregated events."""

from __future__ import annotations

import json

import pytest

from tests.api.test_events import read_events
from tests.conftest import account


async def space_and_listeners(client, node, count: int = 2, start: bool = True):
    host = account(node.data_dir, user="u-host")
    space = (await client.post("/api/spaces", json={"title": "Q&A"}, headers=host)).json()
    base = f"/api/spaces/{space['id']}"
    if start:
        await client.post(f"{base}/start", headers=host)
    listeners = []
    for i in range(count):
        token = (await client.post(f"{base}/join", json={"name": f"L{i}"})).json()["token"]
        listeners.append({"Authorization": f"Bearer {token}"})
    return base, host, listeners


async def test_questions_ordered_by_votes_then_age(client, node) -> None:
    base, host, (a, b) = await space_and_listeners(client, node, start=False)
    # Before the start: questions can be asked ahead of time.
    first = (await client.post(f"{base}/questions", json={"text": "First?"}, headers=a)).json()
    second = (await client.post(f"{base}/questions", json={"text": "Second?"}, headers=b)).json()
    assert first["author_name"] == "L0" and first["votes"] == 0
    vote = await client.post(f"{base}/questions/{second['id']}/votes", headers=a)
    assert vote.status_code == 201 and vote.json()["votes"] == 1
    again = await client.post(f"{base}/questions/{second['id']}/votes", headers=a)
    assert again.status_code == 409 and "already voted" in again.json()["message"]
    listed = (await client.get(f"{base}/questions")).json()["questions"]
    assert [x["id"] for x in listed] == [second["id"], first["id"]]

    # The host pins the first, answers the second, hides nothing yet.
    pinned = await client.post(f"{base}/questions/{first['id']}/pin", headers=host)
    assert pinned.status_code == 200 and pinned.json()["pinned"]
    await client.post(f"{base}/questions/{second['id']}/answer", headers=host)
    listed = (await client.get(f"{base}/questions")).json()["questions"]
    assert [(x["id"], x["state"]) for x in listed] == [
        (first["id"], "open"),
        (second["id"], "answered"),
    ]
    # Hidden questions disappear for the public, not for moderators.
    await client.post(f"{base}/questions/{first['id']}/hide", headers=host)
    public = (await client.get(f"{base}/questions")).json()["questions"]
    assert [x["id"] for x in public] == [second["id"]]
    everything = await client.get(f"{base}/questions", params={"include": "all"}, headers=host)
    assert len(everything.json()["questions"]) == 2
    refused = await client.get(f"{base}/questions", params={"include": "all"}, headers=a)
    assert refused.status_code == 403


async def test_withdraw_own_only(client, node) -> None:
    base, _, (a, b) = await space_and_listeners(client, node)
    mine = (await client.post(f"{base}/questions", json={"text": "Mine?"}, headers=a)).json()
    assert (await client.delete(f"{base}/questions/{mine['id']}", headers=b)).status_code == 403
    assert (await client.delete(f"{base}/questions/{mine['id']}", headers=a)).status_code == 204
    assert (await client.get(f"{base}/questions")).json()["questions"] == []


async def test_listeners_cannot_moderate(client, node) -> None:
    base, _, (a,) = await space_and_listeners(client, node, count=1)
    question = (await client.post(f"{base}/questions", json={"text": "x?"}, headers=a)).json()
    for action in ("pin", "answer", "hide"):
        response = await client.post(f"{base}/questions/{question['id']}/{action}", headers=a)
        assert response.status_code == 403


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"text": ""}, 422),
        ({"text": "   "}, 422),
        ({"text": "x" * 281}, 422),
        ({"text": 3}, 422),
        ({}, 422),
        ({"text": "ok", "extra": 1}, 422),
    ],
)
async def test_bad_questions(client, node, body, status) -> None:
    base, _, (a,) = await space_and_listeners(client, node, count=1)
    response = await client.post(f"{base}/questions", json=body, headers=a)
    assert response.status_code == status and response.json()["message"]


async def test_question_errors(client, node) -> None:
    base, _, (a,) = await space_and_listeners(client, node, count=1)
    assert (await client.post(f"{base}/questions", json={"text": "x?"})).status_code == 401
    assert (await client.post(f"{base}/questions/nope/votes", headers=a)).status_code == 404
    assert (await client.post(f"{base}/questions/nope/launch", headers=a)).status_code in (404, 422)
    assert (await client.get("/api/spaces/nope/questions")).status_code == 404


async def test_question_rate_limit_per_token(client, node) -> None:
    base, _, (a, b) = await space_and_listeners(client, node)
    statuses = []
    for i in range(5):
        response = await client.post(f"{base}/questions", json={"text": f"q{i}?"}, headers=a)
        statuses.append(response.status_code)
    assert statuses[:3] == [201, 201, 201] and statuses[3] == 429
    assert int(response.headers["retry-after"]) >= 1
    # Another token is not held back by the first one's limit.
    other = await client.post(f"{base}/questions", json={"text": "mine?"}, headers=b)
    assert other.status_code == 201


async def test_reactions_are_validated_limited_and_summed(client, node) -> None:
    base, _, listeners = await space_and_listeners(client, node, count=3)
    async with client.stream("GET", f"{base}/events") as events:
        await read_events(events, 1)  # the snapshot
        for headers in listeners:
            for _ in range(3):
                response = await client.post(
                    f"{base}/reactions", json={"emoji": "👏"}, headers=headers
                )
                assert response.status_code == 202
        await client.post(f"{base}/reactions", json={"emoji": "🔥"}, headers=listeners[0])
        received: dict[str, int] = {}
        while sum(received.values()) < 10:
            (event,) = await read_events(events, 1)
            if event["event"] == "reactions":
                for emoji, n in json.loads(event["data"])["counts"].items():
                    received[emoji] = received.get(emoji, 0) + n
    assert received == {"👏": 9, "🔥": 1}
    assert (await client.get(f"{base}/reactions")).json()["totals"] == {"👏": 9, "🔥": 1}
    unknown = await client.post(f"{base}/reactions", json={"emoji": "💩"}, headers=listeners[1])
    assert unknown.status_code == 422 and "unknown reaction" in unknown.json()["message"]
    statuses = [
        (
            await client.post(f"{base}/reactions", json={"emoji": "👍"}, headers=listeners[2])
        ).status_code
        for _ in range(15)
    ]
    assert 429 in statuses


async def test_reactions_only_while_live(client, node) -> None:
    base, _, (a,) = await space_and_listeners(client, node, count=1, start=False)
    response = await client.post(f"{base}/reactions", json={"emoji": "👏"}, headers=a)
    assert response.status_code == 403


async def test_questions_reach_pages_aggregated(client, node) -> None:
    base, _, (a, b) = await space_and_listeners(client, node)
    async with client.stream("GET", f"{base}/events") as events:
        await read_events(events, 1)
        question = (
            await client.post(f"{base}/questions", json={"text": "Live?"}, headers=a)
        ).json()
        await client.post(f"{base}/questions/{question['id']}/votes", headers=b)
        # Changes are published once a second as the questions' latest state: the question and
        # its vote come in one event, or in two if a publication fell between the two requests.
        published: list[list[dict]] = []
        while not published or published[-1][0]["votes"] != 1:
            (event,) = await read_events(events, 1)
            if event["event"] == "questions":
                published.append(json.loads(event["data"])["questions"])
    assert len(published) <= 2
    assert all(changed == [changed[0]] for changed in published)  # the question once each time
    assert published[-1][0]["id"] == question["id"]
