"""`/metrics` never leaks through an edge, however its path is spelled (real nginx, Varnish).

Two defences, each tested alone: the edges refuse or block the path (Varnish refuses
percent-encoded unreserved characters in paths, nginx matches its decoded `$uri`), and the
node refuses relayed requests itself (tests/api/test_metrics_access.py).
"""

from __future__ import annotations

import httpx
import pytest

from tests.harness.causerie_process import CauserieProcess
from tests.harness.edges import RunningEdge

SPELLINGS = [
    "/metrics",
    "/metrics?x=1",
    "/%6detrics",
    "/%6Detrics",
    "/%6d%65%74%72%69%63%73",
    "/m%65trics",
    "/metric%73",
    "/metrics%3Fx",
]


@pytest.mark.parametrize("path", SPELLINGS)
def test_no_spelling_of_metrics_passes(
    edge: RunningEdge, origin: CauserieProcess, path: str
) -> None:
    with httpx.Client(base_url=edge.url, timeout=10) as client:
        for _ in range(2):  # and nothing was cached for the next one either
            response = client.get(httpx.URL(edge.url + path))
            assert response.status_code in (400, 403, 404), (edge.kind, path, response.text)
            assert "causerie_" not in response.text, (edge.kind, path)


def test_encoded_unreserved_characters_in_paths(edge: RunningEdge, origin: CauserieProcess) -> None:
    """The edge rule alone (the node would refuse /metrics anyway): Varnish answers 400
    before any rule sees the path; nginx decodes the path before matching its locations, so
    it reads /%68ealthz as /healthz, as the origin does. Reserved characters (%2F, %20) and
    queries pass both."""
    encoded = 400 if edge.kind == "varnish" else 200
    with httpx.Client(base_url=edge.url, timeout=10) as client:
        assert client.get(httpx.URL(edge.url + "/%68ealthz")).status_code == encoded
        assert client.get(httpx.URL(edge.url + "/healthz")).status_code == 200
        assert client.get(httpx.URL(edge.url + "/healthz?q=%6d")).status_code == 200
        assert client.get(httpx.URL(edge.url + "/no%20such%2Fpage")).status_code == 404
