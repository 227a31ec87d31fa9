"""A listener following a space's live events the way the listener page does (the feed's
windows, one after the other), keeping every event with the wall time it arrived."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class FeedReader:
    client: httpx.AsyncClient
    space_id: str
    events: list[tuple[float, dict]] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    def start(self) -> FeedReader:
        self.task = asyncio.create_task(self._run())
        return self

    def of_type(self, kind: str) -> list[tuple[float, dict]]:
        return [(at, e) for at, e in self.events if e.get("type") == kind]

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task

    async def _run(self) -> None:
        now = (await self.client.get(f"/feed/{self.space_id}/now")).json()
        number = now["window"]
        seen: set[tuple[int, float]] = set()
        while True:
            url = f"/feed/{self.space_id}/{number}.ndjson"
            async with self.client.stream("GET", url, timeout=60) as response:
                assert response.status_code == 200, (url, response.status_code)
                following = number + 1
                async for line in response.aiter_lines():
                    if not line.strip():
                        continue
                    event = json.loads(line)
                    if event.get("type") == "end":
                        following = event["next"]
                        continue
                    key = (event.get("id", -1), event.get("at", 0.0))
                    if key not in seen:
                        seen.add(key)
                        self.events.append((time.time(), event))
            number = following
