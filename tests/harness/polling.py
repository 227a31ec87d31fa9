"""Waiting for a condition with a deadline, instead of sleeping a fixed time.

One rule for every wait: look again every `every` seconds until the condition holds; past
`timeout`, fail with an AssertionError that says what was awaited. Both helpers return the
seconds the wait took, which some tests bound and some benchmarks report.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

Described = str | Callable[[], str]
"""What is awaited, for the failure message; a function to describe it only on failure (with
a log's tail, say)."""


class _Deadline:
    def __init__(self, timeout: float, what: Described) -> None:
        self.started = time.monotonic()
        self.timeout = timeout
        self.what = what

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def check(self) -> None:
        if self.elapsed() > self.timeout:
            what = self.what if isinstance(self.what, str) else self.what()
            raise AssertionError(f"{what}: not within {self.timeout} s")


def wait_until(
    condition: Callable[[], object],
    timeout: float,
    what: Described = "the condition",
    every: float = 0.05,
) -> float:
    """Block until `condition()` is true; the seconds it took."""
    deadline = _Deadline(timeout, what)
    while not condition():
        deadline.check()
        time.sleep(every)
    return deadline.elapsed()


async def eventually(
    condition: Callable[[], object | Awaitable[object]],
    timeout: float,
    what: Described = "the condition",
    every: float = 0.05,
) -> float:
    """`wait_until` inside an event loop: `condition` may be a plain or an async function."""
    deadline = _Deadline(timeout, what)
    while True:
        held = condition()
        if inspect.isawaitable(held):
            held = await held
        if held:
            return deadline.elapsed()
        deadline.check()
        await asyncio.sleep(every)
