"""Running a coroutine at once, in the caller's turn of the event loop: the eager tasks of
Python 3.12 (`asyncio.eager_task_factory`), for 3.11.

The join lane (api/join_lane.py) answers a join inside the HTTP parser's callback. A task per
join would cost a few µs and a turn of the loop, and almost every join completes without ever
waiting (the space is cached; the counters are in memory, or batched for Redis). `start` runs
the coroutine until it first waits; only then does a task carry it on from there, as
asyncio's own Task would have.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def start(coro: Coroutine[Any, Any, T]) -> T | asyncio.Task[T]:
    """`coro`'s result if it completes without waiting (its exception if it raises), else a
    task that carries it on. `T` must not be a future itself."""
    try:
        waiting_on = coro.send(None)
    except StopIteration as stop:
        return stop.value
    return asyncio.get_running_loop().create_task(_carry_on(coro, waiting_on))


async def _carry_on(coro: Coroutine[Any, Any, T], waiting_on: Any) -> T:
    """Drive `coro` on, as a Task does: wait for what it yielded, then resume it."""
    try:
        while True:
            if waiting_on is None:
                await asyncio.sleep(0)  # a bare yield: it asked for one turn of the loop
            else:
                # As a Task does with a future its coroutine yielded: taken over, then waited.
                waiting_on._asyncio_future_blocking = False
                # Its outcome (a result, an exception, a cancellation: this task's too, which
                # cancels the future awaited) reaches the coroutine when it is resumed below.
                with contextlib.suppress(BaseException):
                    await waiting_on
            waiting_on = coro.send(None)
    except StopIteration as stop:
        return stop.value
    finally:
        coro.close()  # if this task was cancelled between two steps
