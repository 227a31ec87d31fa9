"""The spaces API contract, against a real node on 127.0.0.1."""

from __future__ import annotations

import pytest

from causerie.cli import issue_account_token
from tests.conftest import account


async def create(client, node, **body) -> dict:
    response = await client.post(
        "/api/spaces", json={"title": "Launch night"} | body, headers=account(node.data_dir)
    )
    assert response.status_code == 201, response.text
    return response.json()


async def test_create_read_list(client, node) -> None:
    created = await create(
        client, node, description="We talk", scheduled_start="2026-12-01T18:00:00Z"
    )
    assert created["state"] == "scheduled"
    assert created["title"] == "Launch night"
    assert created["playlist_url"] == f"/hls/{created['id']}/main.m3u8"
    assert created["media_playlist_url"] == f"/hls/{created['id']}/index.m3u8"
    assert created["host"]["name"] == "Hana"
    assert created["scheduled_start"].startswith("2026-12-01T18:00:00")

    one = await client.get(f"/api/spaces/{created['id']}")
    assert one.status_code == 200
    assert one.json()["id"] == created["id"]
    assert "stale-while-revalidate" in one.headers["cache-control"]
    assert "stale-if-error" in one.headers["cache-control"]

    listed = (await client.get("/api/spaces")).json()["spaces"]
    assert [s["id"] for s in listed] == [created["id"]]


async def test_start_join_heartbeat_end(client, node) -> None:
    host = account(node.data_dir)
    space = (await client.post("/api/spaces", json={"title": "Live"}, headers=host)).json()
    started = await client.post(f"/api/spaces/{space['id']}/start", headers=host)
    assert started.status_code == 200 and started.json()["state"] == "live"

    joined = await client.post(f"/api/spaces/{space['id']}/join")
    assert joined.status_code == 200
    body = joined.json()
    assert body["playlist_url"] == space["playlist_url"]
    listener = {"Authorization": f"Bearer {body['token']}"}
    beat = await client.post(f"/api/spaces/{space['id']}/heartbeat", headers=listener)
    assert beat.status_code == 204
    await client.post(f"/api/spaces/{space['id']}/join", json={"name": "Lou"})
    details = (await client.get(f"/api/spaces/{space['id']}")).json()
    assert details["listeners_now"] == 2

    ended = await client.post(f"/api/spaces/{space['id']}/end", headers=host)
    assert ended.status_code == 200 and ended.json()["state"] == "ended"
    assert (await client.get("/api/spaces")).json()["spaces"] == []
    late = await client.post(f"/api/spaces/{space['id']}/join")
    assert late.status_code == 409


async def test_join_writes_nothing(client, node) -> None:
    space = await create(client, node)
    store = node.app.services.store
    before = (await store.get_space(space["id"])).version
    for _ in range(20):
        assert (await client.post(f"/api/spaces/{space['id']}/join")).status_code == 200
    assert (await store.get_space(space["id"])).version == before


# -- bad input and permissions ---------------------------------------------------------------


async def test_unknown_space_is_404(client) -> None:
    for path in ("/api/spaces/nope", "/api/spaces/no%20pe"):
        response = await client.get(path)
        assert response.status_code == 404
        assert response.json()["error"] == "not_found"
        assert response.json()["message"]
    assert (await client.post("/api/spaces/nope/join")).status_code == 404


async def test_tokens_are_checked(client, node) -> None:
    space = await create(client, node)
    start = f"/api/spaces/{space['id']}/start"
    no_token = await client.post(start)
    assert no_token.status_code == 401 and "token" in no_token.json()["message"]
    for header in ("Bearer garbage", "Basic abc", "Bearer", "c1.a.b"):
        response = await client.post(start, headers={"Authorization": header})
        assert response.status_code == 401, header
    forged = account(node.data_dir)["Authorization"][:-4] + "AAAA"
    assert (await client.post(start, headers={"Authorization": forged})).status_code == 401
    expired = issue_account_token(node.data_dir, "Old", None, days=-1)
    response = await client.post(start, headers={"Authorization": f"Bearer {expired}"})
    assert response.status_code == 401 and "expired" in response.json()["message"]


async def test_roles_are_enforced(client, node) -> None:
    space = await create(client, node)
    base = f"/api/spaces/{space['id']}"
    listener = (await client.post(f"{base}/join")).json()["token"]
    as_listener = {"Authorization": f"Bearer {listener}"}
    refused = await client.post(f"{base}/start", headers=as_listener)
    assert refused.status_code == 403
    assert refused.json()["error"] == "not_allowed"
    # Another account is a listener of this space, not its host.
    stranger = account(node.data_dir, "Sly")
    assert (await client.post(f"{base}/start", headers=stranger)).status_code == 403
    # A listener token cannot create spaces.
    response = await client.post("/api/spaces", json={"title": "x"}, headers=as_listener)
    assert response.status_code == 403
    # A listener token of another space is refused.
    other = await create(client, node, title="Other")
    other_token = (await client.post(f"/api/spaces/{other['id']}/join")).json()["token"]
    response = await client.post(
        f"{base}/heartbeat", headers={"Authorization": f"Bearer {other_token}"}
    )
    assert response.status_code == 403


async def test_transitions_conflict(client, node) -> None:
    host = account(node.data_dir, user="u-host")
    space = (await client.post("/api/spaces", json={"title": "T"}, headers=host)).json()
    base = f"/api/spaces/{space['id']}"
    assert (await client.post(f"{base}/start", headers=host)).status_code == 200
    again = await client.post(f"{base}/start", headers=host)
    assert again.status_code == 409 and again.json()["error"] == "conflict"
    assert (await client.post(f"{base}/end", headers=host)).status_code == 200
    assert (await client.post(f"{base}/end", headers=host)).status_code == 409


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"title": "x" * 141}, 422, "too long"),
        ({"title": ""}, 422, "empty"),
        ({"title": 5}, 422, "title"),
        ({}, 422, "title"),
        ({"title": "ok", "scheduled_start": "tomorrow"}, 422, "scheduled_start"),
        ({"title": "ok", "scheduled_start": "2026-12-01T18:00:00"}, 422, "time zone"),
        ({"title": "ok", "surprise": 1}, 422, "surprise"),
        ({"title": "ok", "description": "d" * 2001}, 422, "description"),
    ],
)
async def test_bad_bodies(client, node, body, status, fragment) -> None:
    response = await client.post("/api/spaces", json=body, headers=account(node.data_dir))
    assert response.status_code == status
    assert fragment in response.json()["message"]


async def test_malformed_and_huge_bodies(client, node) -> None:
    headers = account(node.data_dir) | {"Content-Type": "application/json"}
    response = await client.post("/api/spaces", content=b"{not json", headers=headers)
    assert response.status_code == 400
    huge = b'{"title": "' + b"x" * 200_000 + b'"}'
    response = await client.post("/api/spaces", content=huge, headers=headers)
    assert response.status_code == 413
    assert response.json()["error"] == "too_large"

    async def chunks():
        for _ in range(100):
            yield b"x" * 10_000

    response = await client.post("/api/spaces", content=chunks(), headers=headers)
    assert response.status_code == 413


async def test_health_metrics_openapi(client, node) -> None:
    assert (await client.get("/healthz")).json()["status"] == "ok"
    await client.post(f"/api/spaces/{(await create(client, node))['id']}/join")
    metrics = await client.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "causerie_joins_total 1" in metrics.text
    assert "# TYPE causerie_joins_total counter" in metrics.text
    schema = (await client.get("/openapi.json")).json()
    for path in ("/api/spaces", "/api/spaces/{space_id}", "/api/spaces/{space_id}/join"):
        assert path in schema["paths"]


async def test_a_token_scoped_to_one_space_cannot_create_spaces(client, node) -> None:
    """The demo's studio link carries a host token for one space: scope means scope."""
    import time

    from causerie.security.tokens import Claims, TokenKind

    space = await create(client, node)
    scoped = node.app.services.signer.issue(
        Claims(sub="u-studio", aud=space["id"], kind=TokenKind.USER, exp=int(time.time()) + 600)
    )
    headers = {"Authorization": f"Bearer {scoped}"}
    refused = await client.post("/api/spaces", json={"title": "Mine now"}, headers=headers)
    assert refused.status_code == 403
    assert "one space" in refused.json()["message"]
    assert (
        await client.post("/api/spaces", json={"title": "Ok"}, headers=account(node.data_dir))
    ).status_code == 201
