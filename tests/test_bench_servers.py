"""The harness of bench.servers: the node under a server started from an import string."""

from __future__ import annotations

from pathlib import Path

import httpx
from bench._asgi import EMPTY, SCOPE, SHUTDOWN_MARK
from bench.servers import run_server


def test_the_bench_app_is_the_node_with_its_demo_space_and_extras(tmp_path: Path) -> None:
    with run_server("uvicorn", tmp_path, None) as server:  # waits for the live demo space
        base = f"http://127.0.0.1:{server.port}"
        joined = httpx.post(base + server.path("join"), json={"name": "t"}, timeout=5)
        assert joined.status_code == 200, joined.text
        beat = httpx.post(
            base + server.path("heartbeat"),
            headers={"Authorization": f"Bearer {joined.json()['token']}"},
            timeout=5,
        )
        assert beat.status_code == 204, beat.text
        assert httpx.post(base + EMPTY, timeout=5).status_code == 204
        seen = httpx.get(base + SCOPE, headers={"X-Forwarded-For": "203.0.113.7"}, timeout=5)
        assert seen.json()["client"][0] == "127.0.0.1"  # uvicorn as shipped: no proxy headers
        assert not (server.data_dir / SHUTDOWN_MARK).exists()
        server.process.terminate()
        server.process.wait(timeout=15)
        assert (server.data_dir / SHUTDOWN_MARK).exists()  # the node's lifespan shutdown ran
