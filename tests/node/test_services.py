"""The node's cache of spaces reads its own writes, even when a slower read of the store
finishes after the write (a read and a change of the same space interleave on a busy node)."""

from __future__ import annotations

import asyncio

import httpx

from causerie.domain import Space
from causerie.node.services import Services
from causerie.store.protocol import update_space
from tests.conftest import account
from tests.harness.in_process import RunningNode


async def test_a_read_that_finishes_after_a_write_does_not_bring_the_old_space_back(
    node: RunningNode,
) -> None:
    svc: Services = node.app.services
    host = account(node.data_dir, user="u-host")
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        space_id = (
            await client.post("/api/spaces", json={"title": "Cached"}, headers=host)
        ).json()["id"]

    old = await svc.store.get_space(space_id)
    read_started, write_done = asyncio.Event(), asyncio.Event()
    real_get = svc.store.get_space

    async def slow_get(wanted: str) -> Space:
        read_started.set()
        await write_done.wait()
        return old  # what the store held when the read began

    svc.store.get_space = slow_get  # type: ignore[method-assign]
    svc._cache.clear()  # a second has passed: the next read goes to the store
    reading = asyncio.create_task(svc.cached_space(space_id))
    await asyncio.wait_for(read_started.wait(), 5)
    svc.store.get_space = real_get  # type: ignore[method-assign]
    changed, _ = await update_space(svc.store, space_id, lambda s: setattr(s, "title", "New"))
    svc.remember(changed)
    write_done.set()

    assert (await asyncio.wait_for(reading, 5)).version <= changed.version
    cached = await svc.cached_space(space_id)
    assert cached.title == "New"
    assert cached.version == changed.version
