"""Who is talking: `speaking` events on change, mic levels for moderators."""

from __future__ import annotations

import json

import numpy as np

from tests.api.test_events import read_events
from tests.conftest import account


async def test_speaking_events_and_levels(client, node) -> None:
    host = account(node.data_dir, user="u-host")
    space = (await client.post("/api/spaces", json={"title": "Talk"}, headers=host)).json()
    base = f"/api/spaces/{space['id']}"
    await client.post(f"{base}/start", headers=host)
    source = node.app.services.broadcasts.get(space["id"]).mixer.add_input("u-host")
    async with client.stream("GET", f"{base}/events") as events:
        await read_events(events, 1)
        tone = (np.sin(np.arange(48000) * 2 * np.pi * 300 / 48000) * 8000).astype(np.int16)
        source.push(tone[:9600])  # 200 ms of voice: the host is talking
        while True:
            (event,) = await read_events(events, 1)
            if event["event"] == "speaking":
                break
    assert json.loads(event["data"])["speaking"] == ["u-host"]

    levels = await client.get(f"{base}/levels", headers=host)
    assert levels.status_code == 200
    assert set(levels.json()["levels"]) == {"u-host"}
    listener = (await client.post(f"{base}/join")).json()["token"]
    refused = await client.get(f"{base}/levels", headers={"Authorization": f"Bearer {listener}"})
    assert refused.status_code == 403
    assert (await client.get(f"{base}/levels")).status_code == 401
