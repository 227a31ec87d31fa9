"""Write rate limits on a real node: per IP and per token, and whose X-Forwarded-For is believed.

Every request of these tests comes from 127.0.0.1; a client "picks" another address by sending
`X-Forwarded-For`, which a node believes only from `Config.trusted_proxies` (none by default).
The rates come from the node's own limiter table, not from constants copied here.
"""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from causerie.cli import _config, build_parser
from causerie.node.config import Config
from tests.conftest import account
from tests.harness.in_process import RunningNode, run_node

ASKS = 100


async def fresh_tokens(http: httpx.AsyncClient, node: RunningNode, count: int) -> list[str]:
    """A scheduled space (no media running) and `count` listener tokens for it."""
    host = account(node.data_dir, user="u-host")
    space = (await http.post("/api/spaces", json={"title": "Limits"}, headers=host)).json()
    tokens = []
    for _ in range(count):
        joined = await http.post(f"/api/spaces/{space['id']}/join")
        tokens.append(joined.json()["token"])
    return [space["id"], *tokens]


async def ask_each(
    http: httpx.AsyncClient, space_id: str, tokens: list[str], forwarded: list[str]
) -> tuple[list[int], float, httpx.Response]:
    """One question per (token, X-Forwarded-For); the statuses, the seconds it took, the last."""
    statuses = []
    started = time.monotonic()
    for i, (token, address) in enumerate(zip(tokens, forwarded, strict=True)):
        response = await http.post(
            f"/api/spaces/{space_id}/questions",
            json={"text": f"Question {i}?"},
            headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": address},
        )
        statuses.append(response.status_code)
        if response.status_code == 429:
            refused = response
    assert set(statuses) <= {201, 429}, statuses
    return statuses, time.monotonic() - started, refused if 429 in statuses else response


def per_ip_rate(node: RunningNode, kind: str):
    return node.app.services.limits.RATES[kind][1]


def per_token_rate(node: RunningNode, kind: str):
    return node.app.services.limits.RATES[kind][0]


def check_polite_refusal(response: httpx.Response) -> None:
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert response.json()["error"] == "too_many_requests"
    assert "too many questions" in response.json()["message"]


async def test_fresh_tokens_and_forged_addresses_do_not_dodge_the_per_ip_limit(
    tmp_path: Path,
) -> None:
    """By default X-Forwarded-For is ignored: one machine minting tokens is one IP."""
    async with (
        run_node(tmp_path / "data") as node,
        httpx.AsyncClient(base_url=node.url, timeout=10) as http,
    ):
        space_id, *tokens = await fresh_tokens(http, node, ASKS)
        forged = [f"10.1.{i // 250}.{i % 250 + 1}" for i in range(ASKS)]
        statuses, seconds, refused = await ask_each(http, space_id, tokens, forged)
    rate = per_ip_rate(node, "question")
    assert rate.burst + rate.per_second * seconds + 1 < ASKS, "too slow to tell"
    assert statuses.count(201) <= rate.burst + rate.per_second * seconds + 1
    assert statuses[: rate.burst] == [201] * rate.burst  # honest crowds behind one IP get in
    check_polite_refusal(refused)


async def test_a_trusted_edge_gives_each_client_its_own_address(tmp_path: Path) -> None:
    """Behind a trusted edge, clients are told apart; what a client writes in the header
    before the edge's own entry does not count (the edge appends the address it saw)."""
    async with (
        run_node(tmp_path / "data", trusted_proxies=("127.0.0.1",)) as node,
        httpx.AsyncClient(base_url=node.url, timeout=10) as http,
    ):
        space_id, *tokens = await fresh_tokens(http, node, 2 * ASKS)
        distinct = [f"10.2.{i // 250}.{i % 250 + 1}" for i in range(ASKS)]
        statuses, _, _ = await ask_each(http, space_id, tokens[:ASKS], distinct)
        assert statuses == [201] * ASKS
        # One client behind the edge, forging a new address in front of the real one each time.
        spoofed = [f"10.3.{i // 250}.{i % 250 + 1}, 192.0.2.7" for i in range(ASKS)]
        statuses, seconds, refused = await ask_each(http, space_id, tokens[ASKS:], spoofed)
    rate = per_ip_rate(node, "question")
    assert statuses.count(201) <= rate.burst + rate.per_second * seconds + 1
    check_polite_refusal(refused)


async def test_the_per_token_limit_holds_across_addresses(tmp_path: Path) -> None:
    async with (
        run_node(tmp_path / "data", trusted_proxies=("127.0.0.0/8",)) as node,
        httpx.AsyncClient(base_url=node.url, timeout=10) as http,
    ):
        space_id, token = await fresh_tokens(http, node, 1)
        rate = per_token_rate(node, "question")
        count = rate.burst + 3
        addresses = [f"10.4.0.{i + 1}" for i in range(count)]
        statuses, seconds, refused = await ask_each(http, space_id, [token] * count, addresses)
    assert seconds < 1 / rate.per_second, "too slow to tell"
    assert statuses == [201] * rate.burst + [429] * 3
    check_polite_refusal(refused)


def test_trusted_proxies_are_addresses_and_come_from_the_command_line() -> None:
    args = build_parser().parse_args(
        ["serve", "--trusted-proxy", "127.0.0.1", "--trusted-proxy", "10.0.0.0/8"]
    )
    assert _config(args).trusted_proxies == ("127.0.0.1", "10.0.0.0/8")
    assert _config(build_parser().parse_args(["serve"])).trusted_proxies == ()
    for bad in ("*", "edge.example.net", "10.0.0.0/33"):
        with pytest.raises(ValueError, match="trusted proxy"):
            Config(trusted_proxies=(bad,))
