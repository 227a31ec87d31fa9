"""Joins and heartbeats: the fast path answers as the documented FastAPI routes do, and the
waiting room of a space with a capacity, on one node and on two nodes sharing Redis."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import httpx
import pytest

from causerie.api.admission import BodyLimit
from causerie.api.cors import PublicCors
from causerie.api.joins import FastJoins
from causerie.domain.waiting_room import Ticket
from tests.conftest import account
from tests.harness.in_process import run_node

JSON = {"content-type": "application/json"}


async def create(http: httpx.AsyncClient, data_dir, **body: Any) -> dict:
    response = await http.post(
        "/api/spaces", json={"title": "Full house"} | body, headers=account(data_dir)
    )
    assert response.status_code == 201, response.text
    return response.json()


def comparable(response: httpx.Response) -> tuple[int, dict[str, str], Any]:
    """Status, headers and body, without what differs from one answer to the next."""
    headers = {
        k: v for k, v in response.headers.items() if k not in ("date", "server", "content-length")
    }
    try:
        body = response.json()
    except ValueError:
        return response.status_code, headers, response.text
    if isinstance(body, dict):
        for varying in ("token", "listener_id", "expires_at"):
            if varying in body:
                body[varying] = type(body[varying]).__name__
    return response.status_code, headers, body


async def test_fast_path_answers_as_the_documented_route(client, node) -> None:
    """Every input through the node (fast path) and straight into FastAPI: the same answer."""
    host = account(node.data_dir)
    space = (await client.post("/api/spaces", json={"title": "T"}, headers=host)).json()
    ended = (await client.post("/api/spaces", json={"title": "E"}, headers=host)).json()
    await client.post(f"/api/spaces/{ended['id']}/end", headers=host)
    other = (await client.post("/api/spaces", json={"title": "O"}, headers=host)).json()
    token = (await client.post(f"/api/spaces/{space['id']}/join")).json()["token"]
    other_token = (await client.post(f"/api/spaces/{other['id']}/join")).json()["token"]
    join, beat = f"/api/spaces/{space['id']}/join", f"/api/spaces/{space['id']}/heartbeat"
    bearer = {"authorization": f"Bearer {token}"}
    cases: list[tuple[str, str, bytes | None, dict[str, str]]] = [
        ("POST", join, None, {}),
        ("POST", join, b'{"name":"Lou"}', JSON),
        ("POST", join, b"{}", JSON),
        ("POST", join, b"null", JSON),
        ("POST", join, b'{"name":"Lou"}', {"content-type": "text/plain"}),
        ("POST", join, b'{"name":"Lou"}', {}),
        ("POST", join, b"{not json", JSON),
        ("POST", join, b"\xff\xfe", JSON),
        ("POST", join, b"[]", JSON),
        ("POST", join, b'{"name":5}', JSON),
        ("POST", join, b'{"surprise":1}', JSON),
        ("POST", join, b'{"ticket":"w1.nope"}', JSON),
        ("POST", join, b"x" * 70_000, JSON),  # over the body limit
        # Nested deeper than Python's json reads (RecursionError): a 400, never a 500.
        ("POST", join, b"[" * 5000 + b"]" * 5000, JSON),
        ("POST", "/api/spaces/nope/join", b'{"a":' * 5000 + b"1" + b"}" * 5000, JSON),
        ("POST", join + "/", None, {}),
        ("GET", join, None, {}),
        ("PUT", join, None, {}),
        ("POST", "/api/spaces/nope/join", None, {}),
        ("POST", "/api/spaces/a.b/join", None, {}),
        ("POST", "/api/spaces/" + "a" * 65 + "/join", None, {}),
        ("POST", f"/api/spaces/{ended['id']}/join", None, {}),
        ("POST", beat, None, {}),
        ("POST", beat, None, bearer),
        ("POST", beat, None, {"authorization": "Bearer garbage"}),
        ("POST", beat, None, {"authorization": "Basic abc"}),
        ("POST", beat, None, {"authorization": f"Bearer {other_token}"}),
        ("POST", f"/api/spaces/{ended['id']}/heartbeat", None, bearer),
        ("POST", "/api/spaces/nope/heartbeat", None, bearer),
        ("GET", beat, None, {}),
    ]
    # The same guards in front of FastAPI alone (Admission changes no answer here).
    framework = httpx.ASGITransport(
        app=PublicCors(BodyLimit(node.app.api, node.app.services.config.max_body_bytes))
    )
    async with httpx.AsyncClient(transport=framework, base_url=node.url) as direct:
        for method, path, body, headers in cases:
            fast = await client.request(method, path, content=body, headers=headers)
            slow = await direct.request(method, path, content=body, headers=headers)
            assert comparable(fast) == comparable(slow), (method, path, body, headers)
            assert fast.status_code < 500
    # The heartbeats and joins above all counted, whichever way they came.
    metrics = (await client.get("/metrics")).text
    assert "causerie_heartbeats_total 2" in metrics


async def test_fast_path_does_not_reach_the_framework(node) -> None:
    reached: list[str] = []

    async def framework(scope, receive, send) -> None:
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 418, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with httpx.AsyncClient(base_url=node.url) as real:
        space = await create(real, node.data_dir)
    app = FastJoins(framework, node.app.services)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://node"
    ) as http:
        joined = await http.post(f"/api/spaces/{space['id']}/join", json={"name": "Ada"})
        assert joined.status_code == 200 and joined.json()["token"].startswith("c1.")
        listener = {"Authorization": f"Bearer {joined.json()['token']}"}
        beat = await http.post(f"/api/spaces/{space['id']}/heartbeat", headers=listener)
        assert beat.status_code == 204
        assert (await http.post("/api/spaces/nope/join")).status_code == 404
        assert reached == []
        assert (await http.get(f"/api/spaces/{space['id']}")).status_code == 418
        assert (await http.post(f"/api/spaces/{space['id']}/join/")).status_code == 418
        assert reached == [f"/api/spaces/{space['id']}", f"/api/spaces/{space['id']}/join/"]


# -- capacity ---------------------------------------------------------------------------------


async def test_the_listener_name_is_cleaned_or_refused(client, node) -> None:
    space = await create(client, node.data_dir)
    path = f"/api/spaces/{space['id']}/join"
    lone_surrogate = b'{"name": "Ana \\ud800"}'  # valid JSON, not storable text
    refused = await client.post(path, content=lone_surrogate, headers=JSON)
    assert refused.status_code == 422 and "name" in refused.json()["message"]
    joined = await client.post(path, json={"name": "  Ana\u200b Ló  " + "x" * 80})
    assert joined.status_code == 200, joined.text


async def test_capacity_is_set_shown_and_checked(client, node) -> None:
    space = await create(client, node.data_dir, capacity=2)
    assert space["capacity"] == 2
    base = f"/api/spaces/{space['id']}"
    host = account(node.data_dir)
    assert (await client.get(base)).json()["capacity"] == 2
    assert (await client.get("/api/spaces")).json()["spaces"][0]["capacity"] == 2
    for bad in (0, -3, 10_000_001, "5", 2.5, True):
        response = await client.post(
            "/api/spaces", json={"title": "x", "capacity": bad}, headers=host
        )
        assert response.status_code == 422, bad
        assert "capacity" in response.json()["message"]
    assert (await create(client, node.data_dir))["capacity"] is None


async def test_capacity_is_edited_by_the_host(client, node) -> None:
    host = account(node.data_dir, user="u-host")
    created = await client.post("/api/spaces", json={"title": "T", "capacity": 5}, headers=host)
    base = f"/api/spaces/{created.json()['id']}"
    edited = await client.patch(base, json={"title": "Renamed"}, headers=host)
    assert edited.json()["capacity"] == 5  # left out: unchanged
    assert (await client.patch(base, json={"capacity": 7}, headers=host)).json()["capacity"] == 7
    assert (await client.patch(base, json={"capacity": None}, headers=host)).json()[
        "capacity"
    ] is None
    bad = await client.patch(base, json={"capacity": 0}, headers=host)
    assert bad.status_code == 422 and "capacity" in bad.json()["message"]
    stranger = account(node.data_dir, "Sly", user="u-sly")
    assert (await client.patch(base, json={"capacity": 1}, headers=stranger)).status_code == 403


# -- the waiting room -------------------------------------------------------------------------


async def until_admitted(
    http: httpx.AsyncClient, path: str, ticket: str, timeout: float = 10
) -> tuple[dict, list[int]]:
    """Join again with `ticket` until let in (polling, bounded); (the answer, positions seen)."""
    positions = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await http.post(path, json={"ticket": ticket})
        assert response.status_code == 200, response.text
        body = response.json()
        if "token" in body:
            return body, positions
        positions.append(body["waiting"]["position"])
        ticket = body["waiting"]["ticket"]
        await asyncio.sleep(0.2)
    raise AssertionError(f"not admitted in {timeout} s; positions {positions}")


async def test_full_space_makes_people_wait_in_order(tmp_path) -> None:
    async with (
        run_node(tmp_path / "data", heartbeat_interval=0.5) as node,
        httpx.AsyncClient(base_url=node.url, timeout=10) as http,
    ):
        space = await create(http, node.data_dir, capacity=2)
        join = f"/api/spaces/{space['id']}/join"
        first, second = [(await http.post(join)).json() for _ in range(2)]
        assert "token" in first and "token" in second
        assert first["heartbeat_interval"] == 0.5

        third = await http.post(join, json={"name": "Cy"})
        assert third.status_code == 200
        waiting = third.json()["waiting"]
        assert waiting["position"] == 1
        assert waiting["ticket"].startswith(f"w1.{space['id']}.")
        assert third.headers["retry-after"] == str(waiting["retry_after"])
        assert 1 <= waiting["retry_after"] <= 30 and waiting["estimated_wait_seconds"] > 0
        fourth = (await http.post(join)).json()["waiting"]
        assert fourth["position"] == 2

        # While the first two keep listening, nobody gets in, and the places are kept.
        beats = [{"Authorization": f"Bearer {t['token']}"} for t in (first, second)]
        beat_until = time.monotonic() + 2.6  # past one step of the line (2 s)
        while time.monotonic() < beat_until:
            for headers in beats:
                await http.post(f"/api/spaces/{space['id']}/heartbeat", headers=headers)
            again = (await http.post(join, json={"ticket": waiting["ticket"]})).json()
            assert again["waiting"]["position"] == 1
            await asyncio.sleep(0.2)
        assert (await http.get(f"/api/spaces/{space['id']}")).json()["listeners_now"] == 2

        # They leave (no more heartbeats): the room frees up within a presence window.
        admitted, _ = await until_admitted(http, join, waiting["ticket"])
        assert admitted["token"].startswith("c1.")
        listener = {"Authorization": f"Bearer {admitted['token']}"}
        beat = await http.post(f"/api/spaces/{space['id']}/heartbeat", headers=listener)
        assert beat.status_code == 204
        admitted_fourth, positions = await until_admitted(http, join, fourth["ticket"])
        assert "token" in admitted_fourth and all(p <= 2 for p in positions)
        stats = node.app.services.metrics
        assert stats.value("causerie_join_waits_total") >= 3


async def test_bad_tickets_are_refused(client, node) -> None:
    space = await create(client, node.data_dir, capacity=1)
    join = f"/api/spaces/{space['id']}/join"
    assert "token" in (await client.post(join)).json()
    ticket = (await client.post(join)).json()["waiting"]["ticket"]
    other = await create(client, node.data_dir, capacity=1)
    signer = node.app.services.waiting_room.tickets
    number, epoch = int(ticket.split(".")[3]), ticket.split(".")[2]
    expired = signer.issue(Ticket(space["id"], epoch, number, int(time.time()) - 1))
    for bad, path, fragment in [
        (ticket[:-3] + "AAA", join, "signature"),
        (ticket.replace(f".{number}.", ".1.", 1), join, "signature"),
        (ticket, f"/api/spaces/{other['id']}/join", "another space"),
        (expired, join, "expired"),
        ("nonsense", join, "malformed"),
        ("w1.é.x.1.2.sig", join, "malformed"),
    ]:
        response = await client.post(path, json={"ticket": bad})
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"] == "invalid"
        assert fragment in response.json()["message"]
    # A ticket of another line (here: the node forgot its lines) counts as none: a new place.
    node.app.services.waiting_room.lines._lines.clear()
    fresh = (await client.post(join, json={"ticket": ticket})).json()["waiting"]
    assert fresh["position"] == 1 and fresh["ticket"].split(".")[2] != epoch
    # The cap lifted: a genuine ticket lets in at once, a forged one is still refused.
    host = account(node.data_dir, user="u-host")
    lifted = (
        await client.post("/api/spaces", json={"title": "L", "capacity": 1}, headers=host)
    ).json()
    path = f"/api/spaces/{lifted['id']}/join"
    await client.post(path)
    waiting_ticket = (await client.post(path)).json()["waiting"]["ticket"]
    patched = await client.patch(
        f"/api/spaces/{lifted['id']}", json={"capacity": None}, headers=host
    )
    assert patched.json()["capacity"] is None
    forged = await client.post(path, json={"ticket": waiting_ticket[:-3] + "AAA"})
    assert forged.status_code == 422
    assert "token" in (await client.post(path, json={"ticket": waiting_ticket})).json()


@pytest.mark.slow
async def test_two_nodes_share_one_line(tmp_path, redis_url) -> None:
    async with (
        run_node(tmp_path / "one", redis_url=redis_url, heartbeat_interval=0.5) as one,
        run_node(tmp_path / "two", redis_url=redis_url, heartbeat_interval=0.5) as two,
        httpx.AsyncClient(base_url=one.url, timeout=10) as http1,
        httpx.AsyncClient(base_url=two.url, timeout=10) as http2,
    ):
        space = await create(http1, one.data_dir, capacity=1)
        join = f"/api/spaces/{space['id']}/join"
        assert "token" in (await http1.post(join)).json()
        a = (await http2.post(join)).json()["waiting"]
        b = (await http1.post(join)).json()["waiting"]
        c = (await http2.post(join)).json()["waiting"]
        assert [a["position"], b["position"], c["position"]] == [1, 2, 3]
        # A ticket from one node keeps its place on the other.
        assert (await http1.post(join, json={"ticket": a["ticket"]})).json()["waiting"][
            "position"
        ] == 1
        assert (await http2.post(join, json={"ticket": b["ticket"]})).json()["waiting"][
            "position"
        ] == 2
        # The first listener leaves; the line moves one place at a time, in order, whichever
        # node each person asks.
        order: list[str] = []
        admitted_at: list[float] = []
        tickets = {"a": a["ticket"], "b": b["ticket"], "c": c["ticket"]}
        deadline = time.monotonic() + 20
        while len(order) < 3 and time.monotonic() < deadline:
            for i, name in enumerate(sorted(tickets)):
                http = (http1, http2)[i % 2]
                body = (await http.post(join, json={"ticket": tickets.pop(name)})).json()
                if "token" in body:
                    order.append(name)
                    admitted_at.append(time.monotonic())
                else:
                    tickets[name] = body["waiting"]["ticket"]
            # Whoever got in does not heartbeat: counted for a presence window (< 1 s), gone.
            await asyncio.sleep(0.2)
        assert order == ["a", "b", "c"]
        # Room for one: one place per step of the line (2 s), never two at once.
        gaps = [later - earlier for earlier, later in itertools.pairwise(admitted_at)]
        assert min(gaps) > 1.5, gaps
