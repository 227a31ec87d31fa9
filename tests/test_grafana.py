"""The shipped Grafana dashboard, Prometheus example and alerts (docs/grafana/) against a real
node with Redis: the JSON loads, every metric they query is in the node's /metrics, their
PromQL and configuration pass `promtool`, and a real Prometheus scraping the node gets an
answer for every panel's query."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import yaml

from tests.conftest import account
from tests.harness.in_process import RunningNode, run_node
from tests.harness.polling import eventually
from tests.harness.ports import HOST, free_port
from tests.harness.processes import start_process, stop, tail

GRAFANA = Path(__file__).parent.parent / "docs" / "grafana"
METRIC = re.compile(r"\bcauserie_[a-z0-9_]+")
# What Grafana puts in a query before sending it, as a scrape every second allows.
VARIABLES = {"$__rate_interval": "10s", "$instance": ".*"}


def dashboard() -> dict[str, Any]:
    return json.loads((GRAFANA / "causerie.json").read_text())


def panel_queries(board: dict[str, Any]) -> dict[str, str]:
    """Every query of the dashboard, by panel title and target."""
    queries = {
        f"{panel['title']} ({target['refId']})": target["expr"]
        for panel in board["panels"]
        for target in panel.get("targets", [])
    }
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            queries[f"${variable['name']}"] = variable["query"]["query"]
    return queries


def alert_rules() -> list[dict[str, Any]]:
    rules = yaml.safe_load((GRAFANA / "alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def filled(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def sample_names(exposition: str) -> set[str]:
    """The names of the samples in a Prometheus text exposition (histograms' _bucket etc.)."""
    return {
        re.split(r"[{ ]", line, maxsplit=1)[0]
        for line in exposition.splitlines()
        if line and not line.startswith("#")
    }


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is missing: `make test` installs it (Debian package prometheus)")
    return path


@pytest_asyncio.fixture
async def node(tmp_path: Path, redis_url: str) -> AsyncIterator[RunningNode]:
    """A node with Redis running a live space with a listener, LL-HLS, DASH and feed requests."""
    async with (
        run_node(tmp_path / "data", port=free_port(), redis_url=redis_url) as running,
        httpx.AsyncClient(base_url=running.url, timeout=10) as client,
    ):
        host = account(running.data_dir)
        space = (await client.post("/api/spaces", json={"title": "Watched"}, headers=host)).json()
        assert (await client.post(f"/api/spaces/{space['id']}/start", headers=host)).is_success
        broadcasts = running.app.services.broadcasts
        await eventually(lambda: space["id"] in broadcasts.live_ids(), 10, "the space on air")
        token = (await client.post(f"/api/spaces/{space['id']}/join")).json()["token"]
        listener = {"Authorization": f"Bearer {token}"}
        await client.post(f"/api/spaces/{space['id']}/heartbeat", headers=listener)
        await client.get(f"/hls/{space['id']}/index.m3u8")
        await client.get(f"/dash/{space['id']}/manifest.mpd")
        await client.get(f"/feed/{space['id']}/0.ndjson")
        yield running


def test_the_dashboard_loads_and_its_queries_are_promql(tmp_path: Path, promtool: str):
    board = dashboard()
    assert board["uid"] and board["title"] == "causerie"
    queries = panel_queries(board)
    assert len(queries) >= 30
    # Every query as a recording rule: promtool parses each one as Prometheus would.
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:query_{n}", "expr": filled(expr)}
                    for n, expr in enumerate(queries.values())
                    if not expr.startswith("label_values(")  # Grafana's own function
                ],
            }
        ]
    }
    (tmp_path / "dashboard.yml").write_text(yaml.safe_dump(rules))
    checked = subprocess.run(
        [promtool, "check", "rules", str(tmp_path / "dashboard.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_prometheus_example_and_its_alerts_pass_promtool(tmp_path: Path, promtool: str):
    rules = subprocess.run(
        [promtool, "check", "rules", str(GRAFANA / "alerts.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert rules.returncode == 0, rules.stdout + rules.stderr
    # The example with its token file where this machine has one (its path is an example).
    token = tmp_path / "causerie-metrics-token"
    token.write_text("a-metrics-token-of-16-characters-or-more\n")
    config = (GRAFANA / "prometheus.yml").read_text()
    assert "/etc/prometheus/causerie-metrics-token" in config
    (tmp_path / "prometheus.yml").write_text(
        config.replace("/etc/prometheus/causerie-metrics-token", str(token))
    )
    shutil.copy(GRAFANA / "alerts.yml", tmp_path / "alerts.yml")
    checked = subprocess.run(
        [promtool, "check", "config", str(tmp_path / "prometheus.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


async def test_every_metric_the_dashboard_and_alerts_query_is_in_a_nodes_metrics(
    node: RunningNode,
):
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        exposition = (await client.get("/metrics")).text
    exposed = sample_names(exposition)
    queried = {
        name: where
        for where, expr in {
            **panel_queries(dashboard()),
            **{rule["alert"]: rule["expr"] for rule in alert_rules()},
        }.items()
        for name in METRIC.findall(expr)
    }
    assert len(queried) >= 25
    missing = {name: where for name, where in queried.items() if name not in exposed}
    assert not missing, f"queried but not in /metrics: {missing}"


@pytest.mark.slow
async def test_a_real_prometheus_scraping_a_node_answers_every_panel(
    node: RunningNode, tmp_path: Path
):
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.fail("prometheus is missing: `make test` installs it (Debian package prometheus)")
    port = free_port()
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [
            {"job_name": "causerie", "static_configs": [{"targets": [node.url[7:]]}]}
        ],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    process = start_process(
        [
            prometheus,
            f"--config.file={tmp_path / 'prometheus.yml'}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address={HOST}:{port}",
        ],
        tmp_path / "prometheus.log",
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://{HOST}:{port}", timeout=10) as prom:

            async def query(expr: str) -> list[dict[str, Any]]:
                answer = await prom.get("/api/v1/query", params={"query": expr})
                body = answer.json()
                assert body["status"] == "success", (expr, body)
                return body["data"]["result"]

            async def scraped() -> bool:
                try:
                    # Enough samples for a rate over the 10 s the queries use.
                    samples = await query("count_over_time(causerie_parts_total[10s])")
                except (httpx.HTTPError, AssertionError, ValueError):
                    return False
                return bool(samples) and float(samples[0]["value"][1]) >= 4

            await eventually(
                scraped,
                60,
                lambda: f"Prometheus scraping the node; {tail(tmp_path / 'prometheus.log')}",
            )
            health = await prom.get("/api/v1/targets")
            [target] = health.json()["data"]["activeTargets"]
            assert target["health"] == "up", target  # our text exposition parses
            empty = []
            for where, expr in panel_queries(dashboard()).items():
                if expr.startswith("label_values("):
                    values = await prom.get("/api/v1/label/instance/values")
                    assert node.url[7:] in values.json()["data"]
                    continue
                if not await query(filled(expr)):
                    empty.append(where)
            # Only a budget (none set here) may have nothing to show.
            assert empty == ["Recordings' disk (C)"], empty
            lateness = await query(
                "histogram_quantile(0.5, sum by (le) "
                "(rate(causerie_media_loop_lateness_seconds_bucket[10s])))"
            )
            assert 0 <= float(lateness[0]["value"][1]) < 0.2133
    finally:
        stop(process)
