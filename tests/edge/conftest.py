"""Fixtures for the edge tests: one demo node per module, a real nginx and a real Varnish."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from tests.edge.servers import run_edge, run_origin
from tests.harness.causerie_process import CauserieProcess
from tests.harness.edges import RunningEdge

PROGRAMS = {"nginx": "nginx", "varnish": "varnishd"}


def require(kind: str) -> None:
    if shutil.which(PROGRAMS[kind]) is None:
        pytest.fail(
            f"{PROGRAMS[kind]} is missing: `make test` installs it (Debian nginx-light, varnish)"
        )


@pytest.fixture(scope="module")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CauserieProcess]:
    """`causerie demo` as a separate process, its demo space live, shared by a module's tests."""
    with run_origin(tmp_path_factory.mktemp("origin")) as running:
        yield running


@pytest.fixture(scope="module", params=["nginx", "varnish"])
def edge(
    request: pytest.FixtureRequest,
    origin: CauserieProcess,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[RunningEdge]:
    """A real edge of each kind in front of the module's origin."""
    kind = request.param
    require(kind)
    with run_edge(kind, [origin.url], tmp_path_factory.mktemp(kind)) as running:
        yield running
