"""A crowd joining a space: cheap raw-socket joiners that behave like the listener page.

Each person joins (`POST /api/spaces/{id}/join`) until admitted, on a connection of their own.
Told to wait (503 or 429 with Retry-After), they come back no sooner than they were told,
spread over one more such interval (so refused people do not return in one wave); after a
failed connection, exponential backoff with full jitter. The crowd runs in several processes
(`crowd_in_processes`) so that the server, not the crowd, is what runs out of CPU.

Used by the storm test (tests/test_storm.py) and the storm benchmark (bench/storm.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import random
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from bench._http import Connection, HttpError, header

BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0


@dataclass
class CrowdResult:
    """What a crowd saw; times are wall-clock seconds (time.time())."""

    arrived_at: list[float] = field(default_factory=list)
    """When each person sent their first request."""
    admitted_at: list[float] = field(default_factory=list)
    """When each admitted person got their token."""
    attempts_at: list[float] = field(default_factory=list)
    """When each answer came."""
    latencies: list[float] = field(default_factory=list)
    """Seconds each answered request took, admitted or not."""
    statuses: Counter[int] = field(default_factory=Counter)
    retry_after: Counter[str] = field(default_factory=Counter)
    """The Retry-After values of refusals (a missing one counts as "missing")."""
    errors: Counter[str] = field(default_factory=Counter)
    """Failed requests by kind: connection errors and timeouts."""
    gave_up: int = 0
    """People who were never admitted before the deadline or got an answer that ends trying."""

    def merge(self, other: CrowdResult) -> None:
        self.arrived_at += other.arrived_at
        self.admitted_at += other.admitted_at
        self.attempts_at += other.attempts_at
        self.latencies += other.latencies
        self.statuses.update(other.statuses)
        self.retry_after.update(other.retry_after)
        self.errors.update(other.errors)
        self.gave_up += other.gave_up


class OwnConnection:
    """A person's own connection, as a browser joining a node directly has."""

    def __init__(self, host: str, port: int) -> None:
        self.connection = Connection(host, port)

    async def take(self) -> Connection:
        return self.connection

    def give_back(self, connection: Connection, broken: bool) -> None:
        if broken:
            connection.close()

    def idle(self) -> None:
        """Before a wait: a browser's idle connection would not survive it either."""
        self.connection.close()


class SharedConnections:
    """Keep-alive connections shared by everyone, as an edge's connections to its origin are:
    a person waits for a free one, sends, and gives it back."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.free: asyncio.Queue[Connection] = asyncio.Queue()
        for _ in range(size):
            self.free.put_nowait(Connection(host, port))

    async def take(self) -> Connection:
        return await self.free.get()

    def give_back(self, connection: Connection, broken: bool) -> None:
        if broken:
            connection.close()  # it reconnects when next used
        self.free.put_nowait(connection)

    def idle(self) -> None:
        pass

    def close(self) -> None:
        while not self.free.empty():
            self.free.get_nowait().close()


async def person(
    connections: OwnConnection | SharedConnections,
    path: str,
    deadline: float,
    timeout: float,
    result: CrowdResult,
    go_at: float | None = None,
) -> None:
    """One person joining until admitted or the deadline (wall clock) passes. With `go_at`,
    connected beforehand, they press "join" at that wall-clock instant."""
    failures = 0
    if go_at is not None:
        if isinstance(connections, OwnConnection):
            with contextlib.suppress(OSError):
                await connections.connection.connect()
        await asyncio.sleep(max(0.0, go_at - time.time()))
    result.arrived_at.append(time.time())
    try:
        while time.time() < deadline:
            connection = await connections.take()
            started = time.perf_counter()
            try:
                left = deadline - time.time()
                status, head, _body = await connection.post(path, timeout=min(timeout, left))
            except (HttpError, TimeoutError, OSError) as error:
                connections.give_back(connection, broken=True)
                result.errors[type(error).__name__] += 1
                failures += 1
                backoff = min(BACKOFF_CAP, BACKOFF_BASE * 2**failures)
                await asyncio.sleep(min(random.uniform(0, backoff), deadline - time.time()))
                continue
            connections.give_back(connection, broken=False)
            now = time.time()
            result.latencies.append(time.perf_counter() - started)
            result.attempts_at.append(now)
            result.statuses[status] += 1
            if status == 200:
                result.admitted_at.append(now)
                return
            if status not in (429, 503):
                break
            value = header(head, b"retry-after")
            result.retry_after[value.decode() if value else "missing"] += 1
            wait = float(value) if value and value.isdigit() else BACKOFF_CAP
            connections.idle()
            await asyncio.sleep(min(wait * (1 + random.random()), deadline - time.time()))
        result.gave_up += 1
    finally:
        connections.idle()


async def crowd(
    host: str,
    port: int,
    path: str,
    people: int,
    arrival_seconds: float,
    deadline: float,
    go_at: float | None = None,
    shared: int = 0,
    timeout: float = 10.0,
) -> CrowdResult:
    """`people` persons arriving evenly over `arrival_seconds`, or all at once: connected
    first, then all pressing "join" at the wall-clock instant `go_at` (a flash crowd). Each on
    a connection of their own, or, with `shared`, on that many keep-alive connections shared
    as an edge's to its origin are."""
    result = CrowdResult()
    pool = SharedConnections(host, port, shared) if shared else None
    tasks = []
    started = time.perf_counter()
    for index in range(people):
        if arrival_seconds > 0:
            due = started + arrival_seconds * index / people
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
        connections = pool or OwnConnection(host, port)
        tasks.append(
            asyncio.create_task(person(connections, path, deadline, timeout, result, go_at))
        )
    await asyncio.gather(*tasks)
    if pool is not None:
        pool.close()
    return result


def _crowd_process(nice: int, *args: object) -> CrowdResult:
    os.nice(nice)
    try:
        import uvloop

        return uvloop.run(crowd(*args))  # type: ignore[arg-type]
    except ImportError:
        return asyncio.run(crowd(*args))  # type: ignore[arg-type]


async def crowd_in_processes(
    host: str,
    port: int,
    path: str,
    people: int,
    arrival_seconds: float = 0.0,
    seconds: float = 60.0,
    processes: int = 2,
    nice: int = 0,
    together: bool = False,
    shared: int = 0,
) -> CrowdResult:
    """Run a crowd of `people` split over `processes`; every person stops by `seconds`.

    `together`: everyone connects first, then presses "join" at the same instant, a few
    seconds from now (`arrival_seconds` is then ignored). `shared`: keep-alive connections
    per process that everyone shares (0: a connection each). `nice` lowers the crowd's CPU
    priority, so that on a small machine it takes the CPU the server leaves rather than the
    server's (and the listeners' beside it)."""
    deadline = time.time() + seconds
    go_at = time.time() + 3 + people / 2000 if together else None
    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        shares = [people // processes + (i < people % processes) for i in range(processes)]
        parts = await asyncio.gather(
            *(
                loop.run_in_executor(
                    pool,
                    _crowd_process,
                    nice,
                    host,
                    port,
                    path,
                    share,
                    0.0 if together else arrival_seconds,
                    deadline,
                    go_at,
                    shared,
                )
                for share in shares
            )
        )
    result = CrowdResult()
    for part in parts:
        result.merge(part)
    return result
