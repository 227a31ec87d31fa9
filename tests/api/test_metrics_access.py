"""`/metrics` on a real node: this machine directly, or the metrics token; never a relayed
request, even one relayed by an edge on the same machine (SECURITY.md)."""

from __future__ import annotations

import httpx
import pytest

from causerie.cli import build_parser
from tests.harness.in_process import run_node

TOKEN = "m3trics-t0ken-for-tests"
RELAYED = [
    {"X-Forwarded-For": "203.0.113.9"},
    {"X-Forwarded-For": "127.0.0.1"},  # a forged or local-looking address is still relayed
    {"Forwarded": "for=203.0.113.9"},
    {"Via": "1.1 varnish (Varnish/7.1)"},
    {"X-Real-IP": "203.0.113.9"},
]


def is_metrics(response: httpx.Response) -> bool:
    return response.status_code == 200 and "causerie_joins_total" in response.text


async def test_this_machine_reads_them_directly(client) -> None:
    response = await client.get("/metrics")
    assert is_metrics(response)
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("headers", RELAYED, ids=lambda h: next(iter(h)))
async def test_a_relayed_request_is_refused_without_a_token(client, headers) -> None:
    """An edge on the same machine connects from 127.0.0.1 too: its requests are not local."""
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "not_allowed"
    assert "causerie_" not in response.text
    assert response.headers["cache-control"] == "no-store"


async def test_behind_a_trusted_edge_the_client_is_not_local(tmp_path) -> None:
    async with (
        run_node(tmp_path / "data", trusted_proxies=("127.0.0.1",)) as node,
        httpx.AsyncClient(base_url=node.url, timeout=10) as client,
    ):
        assert is_metrics(await client.get("/metrics"))
        relayed = await client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"})
        assert relayed.status_code == 403


async def test_the_token_opens_them_to_a_scraper_elsewhere(tmp_path) -> None:
    async with (
        run_node(tmp_path / "data", metrics_token=TOKEN) as node,
        httpx.AsyncClient(base_url=node.url, timeout=10) as client,
    ):
        relayed = {"X-Forwarded-For": "203.0.113.9"}
        assert is_metrics(await client.get("/metrics"))  # this machine, directly
        scraper = await client.get(
            "/metrics", headers={**relayed, "Authorization": f"Bearer {TOKEN}"}
        )
        assert is_metrics(scraper)
        for auth in (None, "Bearer wrong-token-wrong-token", f"Basic {TOKEN}", "Bearer", TOKEN):
            headers = relayed | ({"Authorization": auth} if auth else {})
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401, (auth, refused.text)
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert TOKEN not in refused.text


def test_the_token_comes_from_the_flag_or_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("CAUSERIE_METRICS_TOKEN", TOKEN)
    assert build_parser().parse_args(["serve"]).metrics_token == TOKEN
    flag = build_parser().parse_args(["serve", "--metrics-token", TOKEN + "2"])
    assert flag.metrics_token == TOKEN + "2"
    monkeypatch.delenv("CAUSERIE_METRICS_TOKEN")
    assert build_parser().parse_args(["serve"]).metrics_token is None
