"""A live event stream (SSE) client that reconnects with Last-Event-ID, as a browser's
EventSource does: what the fault tests follow while they break things."""

from __future__ import annotations

import asyncio
import json

import httpx


class EventFollower:
    """An SSE client that reconnects with Last-Event-ID like a browser's EventSource."""

    def __init__(self, http: httpx.AsyncClient, path: str) -> None:
        self.http = http
        self.path = path
        self.events: list[tuple[int, str, dict]] = []
        self.last_id: str | None = None
        self.connections = 0

    async def run(self) -> None:
        while True:
            headers = {"Last-Event-ID": self.last_id} if self.last_id else {}
            try:
                async with self.http.stream("GET", self.path, headers=headers) as reply:
                    if reply.status_code != 200:
                        await asyncio.sleep(0.5)
                        continue
                    self.connections += 1
                    event: dict[str, str] = {}
                    async for line in reply.aiter_lines():
                        if line:
                            name, _, value = line.partition(":")
                            event[name] = value.strip()
                            continue
                        if "id" in event:
                            self.last_id = event["id"]
                            data = json.loads(event.get("data", "null"))
                            self.events.append((int(event["id"]), event.get("event", ""), data))
                        event = {}
            except (httpx.HTTPError, OSError):
                pass
            await asyncio.sleep(0.5)  # the `retry:` the server asks for is 3 s; be quicker

    def of_type(self, kind: str) -> list[tuple[int, str, dict]]:
        return [e for e in self.events if e[1] == kind]
