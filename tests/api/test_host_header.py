"""Absolute URLs come from the configuration, never from the request's Host header.

A response an edge caches for everyone must not carry a host one client chose (cache
poisoning, SECURITY.md). The real-edge half is in tests/edge/test_host_header.py.
"""

from __future__ import annotations

import httpx

from tests.conftest import account
from tests.harness.in_process import run_node

EVIL = "evil.example"


async def scheduled_space(client: httpx.AsyncClient, data_dir) -> str:
    created = await client.post(
        "/api/spaces",
        json={"title": "Launch night", "scheduled_start": "2026-11-21T18:00:00Z"},
        headers=account(data_dir, user="u-host"),
    )
    assert created.status_code == 201, created.text
    return created.json()["id"]


async def test_the_calendar_links_to_the_public_url_whatever_the_host(tmp_path) -> None:
    async with (
        run_node(tmp_path / "data", public_url="https://live.example/") as node,
        httpx.AsyncClient(base_url=node.url, timeout=10) as client,
    ):
        space_id = await scheduled_space(client, node.data_dir)
        for host in (EVIL, "live.example", None):
            headers = {"Host": host} if host else {}
            ics = await client.get(f"/api/spaces/{space_id}.ics", headers=headers)
            assert ics.status_code == 200, ics.text
            assert f"URL:https://live.example/s/{space_id}\r\n" in ics.text
            assert EVIL not in ics.text


async def test_without_a_public_url_the_node_url_is_used(client, node) -> None:
    space_id = await scheduled_space(client, node.data_dir)
    ics = await client.get(f"/api/spaces/{space_id}.ics", headers={"Host": EVIL})
    assert ics.status_code == 200, ics.text
    # The test node listens on port 0 (any free port): its configured URL says so.
    site = node.app.services.config.site_url
    assert site == node.app.services.config.node_url
    assert f"URL:{site}/s/{space_id}\r\n" in ics.text
    assert EVIL not in ics.text


async def test_no_response_repeats_a_chosen_host(client, node) -> None:
    """A sweep over reads an edge may cache (and a trailing slash, which Starlette would
    redirect to an absolute URL made from the Host): nothing names the client's host."""
    space_id = await scheduled_space(client, node.data_dir)
    paths = [
        f"/api/spaces/{space_id}.ics",
        f"/api/spaces/{space_id}",
        f"/api/spaces/{space_id}/",
        "/api/spaces",
        "/api/spaces/",
        f"/s/{space_id}",
        f"/s/{space_id}/",
        "/studio/",
        "/",
        "/api/docs",
        "/api/docs/",
        "/openapi.json",
        f"/api/spaces/{space_id}/stats",
        f"/api/spaces/{space_id}/questions",
        "/healthz",
    ]
    for path in paths:
        response = await client.get(path, headers={"Host": EVIL})
        assert response.status_code < 500, (path, response.text)
        assert EVIL not in response.text, path
        for name, value in response.headers.items():
            assert EVIL not in value, (path, name, value)
