"""The operator's API on a real node: the overview, invites from start to revocation, and bad
input (invites reused, expired, revoked, malformed; bad bodies). Who may call each route is
tests/api/test_access.py's table; two nodes are tests/test_two_nodes_admin.py."""

from __future__ import annotations

import json
import secrets

import httpx
import pytest

from causerie import __version__
from causerie.cli import issue_account_token
from tests.conftest import account
from tests.harness.polling import eventually

CODE_LENGTH = 32


def operator(node) -> dict[str, str]:
    token = issue_account_token(node.data_dir, "Olga", "u-op", days=1, operator=True)
    return {"Authorization": f"Bearer {token}"}


async def invite(client: httpx.AsyncClient, node, **body) -> dict:
    made = await client.post("/api/admin/invites", json=body, headers=operator(node))
    assert made.status_code == 201, made.text
    return made.json()


def refused(response: httpx.Response, status: int, words: str = "") -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "message"}, body
    assert words in body["message"], body


async def test_the_overview_shows_every_space_every_node_and_the_disk(client, node) -> None:
    host = account(node.data_dir, "Hana", user="u-host")
    ids = {}
    for title in ("Live one", "Later", "Over"):
        made = await client.post("/api/spaces", json={"title": title}, headers=host)
        ids[title] = made.json()["id"]
    for title, actions in (("Live one", ["start"]), ("Over", ["start", "end"])):
        for action in actions:
            done = await client.post(f"/api/spaces/{ids[title]}/{action}", headers=host)
            assert done.status_code == 200, done.text
    joined = (await client.post(f"/api/spaces/{ids['Live one']}/join")).json()
    beat = await client.post(
        f"/api/spaces/{ids['Live one']}/heartbeat",
        headers={"Authorization": f"Bearer {joined['token']}"},
    )
    assert beat.status_code == 204

    answer = await client.get("/api/admin/overview", headers=operator(node))
    assert answer.status_code == 200, answer.text
    overview = answer.json()
    spaces = {s["title"]: s for s in overview["spaces"]}
    assert [s["state"] for s in overview["spaces"]] == ["live", "scheduled", "ended"]
    live = spaces["Live one"]
    url = node.app.services.config.node_url  # what it advertises (here, before the port)
    assert live["listeners_now"] == 1 and live["joins"] == 1 and live["owner"] == url
    assert live["host"] == {"id": "u-host", "name": "Hana"}
    assert live["stage"] == [{"id": "u-host", "name": "Hana"}]
    assert spaces["Later"]["listeners_now"] is None and spaces["Over"]["ended_at"]
    [me] = overview["nodes"]
    assert me["url"] == url and me["this_node"] and me["status"] == "up"
    assert me["version"] == __version__ and me["redis"] is None
    assert me["live_spaces"] == [ids["Live one"]] and me["listeners_now"] == 1
    assert me["recordings"]["disk_free_bytes"] > 0 and me["recordings"]["max_bytes"] == 0
    assert overview["recordings"]["count"] == me["recordings"]["count"]
    assert overview["reports"] == {"open": 0, "url": "/api/admin/reports"}
    # The background report comes within its interval too.
    services = node.app.services
    await eventually(
        lambda: services.nodes.reports(services.clock()), 5, "the node's own status report"
    )


async def test_the_live_overview_follows_changes(client, node) -> None:
    host = account(node.data_dir, "Hana", user="u-host")
    space = (await client.post("/api/spaces", json={"title": "Soon"}, headers=host)).json()
    states = []
    async with client.stream("GET", "/api/admin/events", headers=operator(node)) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        async for line in stream.aiter_lines():
            if not line.startswith("data:"):
                continue
            mine = [s for s in json.loads(line[5:])["spaces"] if s["id"] == space["id"]]
            states.append(mine[0]["state"])
            if states == ["scheduled"]:
                await client.post(f"/api/spaces/{space['id']}/start", headers=host)
            if states[-1] == "live":
                break
    assert states == ["scheduled", "live"]


async def test_an_invite_makes_a_host_whose_revocation_holds_at_once(client, node) -> None:
    made = await invite(client, node, role="host", hours=2, note="for Ada")
    assert made["state"] == "open" and made["url"] == f"/invite/{made['code']}"
    assert len(made["code"]) == CODE_LENGTH and made["code"] not in made["id"]
    listed = (await client.get("/api/admin/invites", headers=operator(node))).json()["invites"]
    assert [i["note"] for i in listed] == ["for Ada"] and "code" not in listed[0]

    info = await client.get(f"/api/invites/{made['code']}")
    assert info.status_code == 200 and info.json()["role"] == "host"
    assert info.headers["cache-control"] == "no-store"  # an edge must not keep it open
    page = await client.get(made["url"])
    assert page.status_code == 200 and "invite.js" in page.text
    used = await client.post(f"/api/invites/{made['code']}", json={"name": "  Ada "})
    assert used.status_code == 201, used.text
    ada = used.json()
    assert ada["account"]["name"] == "Ada" and ada["account"]["role"] == "host"
    ada_auth = {"Authorization": f"Bearer {ada['token']}"}

    # A host: creates and runs spaces; no console.
    created = await client.post("/api/spaces", json={"title": "Ada's"}, headers=ada_auth)
    assert created.status_code == 201
    space_id = created.json()["id"]
    assert (await client.post(f"/api/spaces/{space_id}/start", headers=ada_auth)).is_success
    refused(await client.get("/api/admin/overview", headers=ada_auth), 403, "a host may not")
    joined = (await client.post(f"/api/spaces/{space_id}/join")).json()
    listener = {"Authorization": f"Bearer {joined['token']}"}

    accounts = (await client.get("/api/admin/accounts", headers=operator(node))).json()
    assert [(a["id"], a["revoked_at"]) for a in accounts["accounts"]] == [
        (ada["account"]["id"], None)
    ]
    revoked = await client.post(
        f"/api/admin/accounts/{ada['account']['id']}/revoke", headers=operator(node)
    )
    assert revoked.status_code == 200, revoked.text
    # From the next request: every token of the account, whatever it asks.
    for method, path in [
        ("POST", "/api/spaces"),
        ("PATCH", f"/api/spaces/{space_id}"),
        ("POST", f"/api/spaces/{space_id}/end"),
        ("GET", f"/api/spaces/{space_id}/speak-requests"),
    ]:
        body = {"title": "Still mine"} if method != "GET" else None
        refused(await client.request(method, path, json=body, headers=ada_auth), 401, "revoked")
    whip = await client.post(
        f"/whip/{space_id}",
        content=b"v=0\r\n",
        headers={**ada_auth, "Content-Type": "application/sdp"},
    )
    assert whip.status_code == 401
    # Listeners of her space are not affected: their tokens are never looked up.
    assert (
        await client.post(f"/api/spaces/{space_id}/heartbeat", headers=listener)
    ).status_code == 204
    asked = await client.post(
        f"/api/spaces/{space_id}/questions", json={"text": "Still on?"}, headers=listener
    )
    assert asked.status_code == 201
    accounts = (await client.get("/api/admin/accounts", headers=operator(node))).json()
    assert accounts["accounts"][0]["revoked_at"] is not None
    listed = (await client.get("/api/admin/invites", headers=operator(node))).json()["invites"]
    assert listed[0]["state"] == "used" and listed[0]["account_id"] == ada["account"]["id"]


async def test_an_operator_invite_makes_an_operator(client, node) -> None:
    made = await invite(client, node, role="operator")
    used = (await client.post(f"/api/invites/{made['code']}", json={"name": "Otto"})).json()
    otto = {"Authorization": f"Bearer {used['token']}"}
    assert (await client.get("/api/admin/overview", headers=otto)).status_code == 200
    # An operator revokes others, never themselves; the first operator can revoke Otto.
    refused(
        await client.post(f"/api/admin/accounts/{used['account']['id']}/revoke", headers=otto),
        409,
        "your own",
    )
    await client.post(f"/api/admin/accounts/{used['account']['id']}/revoke", headers=operator(node))
    refused(await client.get("/api/admin/overview", headers=otto), 401, "revoked")


async def test_a_live_overview_ends_when_its_operator_is_revoked(client, node) -> None:
    made = await invite(client, node, role="operator")
    used = (await client.post(f"/api/invites/{made['code']}", json={"name": "Ivo"})).json()
    ivo = {"Authorization": f"Bearer {used['token']}"}
    events = []
    async with client.stream("GET", "/api/admin/events", headers=ivo) as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                events.append(line[6:].strip())
                if events == ["overview"]:
                    revoke = f"/api/admin/accounts/{used['account']['id']}/revoke"
                    await client.post(revoke, headers=operator(node))
    assert events[0] == "overview" and events[-1] == "end"


async def test_an_invite_works_once(client, node) -> None:
    made = await invite(client, node)
    first = await client.post(f"/api/invites/{made['code']}", json={"name": "Ada"})
    assert first.status_code == 201
    refused(await client.post(f"/api/invites/{made['code']}", json={"name": "Eve"}), 409, "used")
    refused(await client.get(f"/api/invites/{made['code']}"), 409, "used already")
    refused(
        await client.delete(f"/api/admin/invites/{made['id']}", headers=operator(node)),
        409,
        "revoke the account",
    )
    accounts = (await client.get("/api/admin/accounts", headers=operator(node))).json()
    assert [a["name"] for a in accounts["accounts"]] == ["Ada"]


async def test_an_expired_invite_makes_nothing(client, node) -> None:
    made = await invite(client, node, hours=1 / 3600)  # one second

    async def expired() -> bool:
        return (await client.get(f"/api/invites/{made['code']}")).status_code == 409

    await eventually(expired, 5, "the invite expiring")
    refused(await client.post(f"/api/invites/{made['code']}", json={"name": "Ada"}), 409, "expired")
    listed = (await client.get("/api/admin/invites", headers=operator(node))).json()["invites"]
    assert listed[0]["state"] == "expired"


async def test_a_revoked_invite_makes_nothing(client, node) -> None:
    made = await invite(client, node)
    gone = await client.delete(f"/api/admin/invites/{made['id']}", headers=operator(node))
    assert gone.status_code == 200 and gone.json()["state"] == "revoked"
    refused(await client.post(f"/api/invites/{made['code']}", json={"name": "Ada"}), 409, "revoked")
    refused(await client.get(f"/api/invites/{made['code']}"), 409, "revoked")
    refused(
        await client.delete(f"/api/admin/invites/{made['id']}", headers=operator(node)),
        409,
        "revoked already",
    )


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("nope", 404),
        ("a" * 31, 404),
        ("a" * 33, 404),
        ("a" * 31 + "!", 404),
        ("%00" * 32, 404),
        ("é" * 32, 404),
        ("a" * 65, 422),
        (secrets.token_urlsafe(24), 404),  # well formed, but nobody made it
    ],
)
async def test_malformed_or_unknown_codes(client, node, code: str, status: int) -> None:
    for method in ("GET", "POST"):
        response = await client.request(method, f"/api/invites/{code}", json={"name": "Ada"})
        refused(response, status)


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"name": ""},
        {"name": "   "},
        {"name": "x" * 61},
        {"name": "bad\x00name"},
        {"name": 5},
        {"name": "Ada", "role": "operator"},
        [],
    ],
)
async def test_bad_names_use_no_invite(client, node, body) -> None:
    made = await invite(client, node)
    refused(await client.post(f"/api/invites/{made['code']}", json=body), 422)
    assert (await client.get(f"/api/invites/{made['code']}")).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"role": "listener"},
        {"role": "root"},
        {"hours": 0},
        {"hours": -1},
        {"hours": 721},
        {"hours": "soon"},
        {"note": "x" * 201},
        {"note": "line\nbreak"},
        {"extra": True},
    ],
)
async def test_bad_invites_are_not_made(client, node, body) -> None:
    made = await client.post("/api/admin/invites", json=body, headers=operator(node))
    refused(made, 422)
    listed = (await client.get("/api/admin/invites", headers=operator(node))).json()
    assert listed["invites"] == []


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/admin/invites/" + "0" * 32, 404),
        ("/api/admin/invites/not-an-id", 404),
        ("/api/admin/invites/" + "a" * 65, 422),
    ],
)
async def test_revoking_what_is_no_invite(client, node, path: str, status: int) -> None:
    refused(await client.delete(path, headers=operator(node)), status)


@pytest.mark.parametrize(
    ("account_id", "status"), [("has space", 404), ("a/b", 404), ("x" * 65, 422)]
)
async def test_revoking_what_is_no_account(client, node, account_id: str, status: int) -> None:
    path = f"/api/admin/accounts/{account_id}/revoke"
    response = await client.post(path, headers=operator(node))
    assert response.status_code in (status, 404), response.text
    assert set(response.json()) == {"error", "message"}
