"""A speaker's network drops for a few seconds: their page brings the audio back, the host sees it.

A co-host is on air from causerie's studio page in Chromium, inside a network namespace of its
own (tests/fixtures/netns.py). Their network drops: every UDP packet from or to their address is
dropped (nftables) for 4 s, as in a tunnel. The node must mark them reconnecting within 2 s, on
the host's studio page (another Chromium, outside the namespace); their page must notice the
audio coming back has stopped and restart ICE (a PATCH: same session, same DTLS), which
succeeds once the network is back; the host's page must show them back.

(When the network changes instead, a second address appearing as the first one dies, Chromium
moves to the new address by itself, without a restart: its ICE agent keeps gathering, and the
node's accepts the new pair. Seen while writing this test.)
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import httpx
import pytest

from causerie.cli import issue_account_token
from tests.fixtures.netns import available, namespace
from tests.fixtures.outside import HERE, Publisher
from tests.harness.in_process import run_node
from tests.web.live import CHROMIUM, chromium

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(available() is not None, reason=str(available())),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed"),
]


def latest_air(page_process: Publisher) -> dict:
    airs = [e for e in page_process.events if e["event"] == "air"]
    return airs[-1] if airs else {}


async def wait_for(condition, timeout: float, what: str) -> float:
    """Poll ``condition`` (sync or async) until true; returns when it became true."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return time.monotonic()
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


@pytest.mark.parametrize(
    ("outage", "through"),
    [(4.0, "an ICE restart"), (11.0, "a new session")],
)
async def test_a_speaker_whose_network_drops_comes_back(tmp_path, outage, through) -> None:
    """4 s: the first ICE restart (5 s to succeed) bridges it. 11 s: that restart fails, and a
    new session (after one more pause) comes back instead."""
    with namespace() as ns:
        async with run_node(
            tmp_path / "data", host=ns.node_address, rtc_host_addresses=(ns.node_address,)
        ) as node:
            svc = node.app.services
            host = issue_account_token(node.data_dir, "Hana", "u-host", days=1)
            cleo = issue_account_token(node.data_dir, "Cleo", "u-cleo", days=1)
            headers = {"Authorization": f"Bearer {host}"}
            async with httpx.AsyncClient(base_url=node.url) as http:
                space = await http.post("/api/spaces", json={"title": "Moving"}, headers=headers)
                space_id = space.json()["id"]
                assert (
                    await http.post(f"/api/spaces/{space_id}/start", headers=headers)
                ).is_success
                made = await http.put(
                    f"/api/spaces/{space_id}/cohosts/u-cleo", json={"name": "Cleo"}, headers=headers
                )
                assert made.is_success, made.text
            studio_url = f"{node.url}/studio/{space_id}#token={cleo}"
            speaker = Publisher(
                ns,
                "studio",
                "",
                "",
                argv=[sys.executable, str(HERE / "chromium_studio.py"), studio_url],
            )
            try:
                async with chromium() as browser:
                    hosting = await browser.new_page()
                    await hosting.goto(f"{node.url}/studio/{space_id}#token={host}")
                    await wait_for(
                        lambda: latest_air(speaker).get("state") == "connected", 60, "on air"
                    )
                    [session] = svc.speakers.sessions(space_id)
                    await wait_for(
                        lambda: svc.speakers.sessions(space_id)[0].frames_received > 50, 10, "audio"
                    )
                    badge = hosting.locator(".studio-member[data-id='u-cleo'] .studio-reconnecting")
                    assert await badge.is_hidden()

                    # The network drops.
                    ns.block_udp_at(ns.publisher_address)
                    dropped = time.monotonic()
                    await badge.wait_for(state="visible", timeout=10_000)
                    shown = time.monotonic() - dropped
                    assert shown < 2.0, f"the host saw it after {shown:.1f} s"
                    await wait_for(
                        lambda: latest_air(speaker).get("state") == "reconnecting", 5, "the page"
                    )
                    await asyncio.sleep(max(0.0, dropped + 4 - time.monotonic()))
                    ns.block_udp_at(None)

                    # The page's ICE restart (PATCH) succeeds: the same session is back.
                    await wait_for(
                        lambda: (
                            latest_air(speaker).get("restarts", 0) >= 1
                            and latest_air(speaker).get("state") == "connected"
                        ),
                        40,
                        f"an ICE restart ({speaker.tail()})",
                    )
                    await badge.wait_for(state="hidden", timeout=10_000)
                    [after] = svc.speakers.sessions(space_id)
                    assert after.session_id == session.session_id
                    assert after.etag != session.etag  # a new ICE session
                    frames = after.frames_received
                    await wait_for(
                        lambda: svc.speakers.sessions(space_id)[0].frames_received > frames + 50,
                        10,
                        "audio after the restart",
                    )
            finally:
                await asyncio.to_thread(speaker.stop)
