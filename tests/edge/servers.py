"""The servers of the edge tests: a `causerie demo` origin and nginx or Varnish in front of it,
started by the harness with the tests' settings.

    with run_origin(tmp / "origin") as origin, run_edge("nginx", [origin.url], tmp / "e") as edge:
        httpx.get(edge.url + origin.playlist_path)
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.harness import edges
from tests.harness.causerie_process import CauserieProcess, causerie_process
from tests.harness.edges import RunningEdge


def run_origin(folder: Path) -> contextlib.AbstractContextManager[CauserieProcess]:
    """`causerie demo` on a free port, until its demo space's playlist lists two parts."""
    return causerie_process(folder, "demo", "--log-level", "warning", parts=2)


def run_edge(
    kind: str, origins: Sequence[str], folder: Path, listeners: int = 1000
) -> contextlib.AbstractContextManager[RunningEdge]:
    """A real nginx (one worker) or varnishd in front of `origins`, with small caches."""
    options = edges.edge_options(
        origins, listeners, storage="malloc,64m", live_max_size="256m", api_max_size="256m"
    )
    return edges.run_edge(kind, options, folder)


def counter(origin: CauserieProcess, name: str, **labels: str) -> float:
    """A counter from the origin's /metrics (read directly, never through an edge): one
    sample of the Prometheus text format; 0 if absent."""
    text = httpx.get(f"{origin.url}/metrics", timeout=5).text
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    wanted = f"{name}{{{inner}}}" if labels else name
    for line in text.splitlines():
        if line.startswith(wanted + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
