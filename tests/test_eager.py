"""eager.start: a coroutine run at once, carried on by a task only from its first wait."""

from __future__ import annotations

import asyncio

import pytest

from causerie.eager import start


async def test_a_coroutine_that_never_waits_is_done_at_once() -> None:
    ran: list[str] = []

    async def inner() -> str:
        ran.append("inner")
        return "done"

    async def outer() -> str:
        return await inner() + "!"

    assert start(outer()) == "done!"
    assert ran == ["inner"]


async def test_its_exception_is_raised_at_once() -> None:
    async def fails() -> None:
        raise ValueError("no")

    with pytest.raises(ValueError, match="no"):
        start(fails())


async def test_a_coroutine_that_waits_goes_on_in_a_task() -> None:
    steps: list[str] = []
    later = asyncio.get_running_loop().create_future()

    async def waits() -> int:
        steps.append("before")
        value = await later  # a future: the task waits for it
        steps.append("after future")
        await asyncio.sleep(0)  # a bare yield
        steps.append("after yield")
        return value + 1

    task = start(waits())
    assert isinstance(task, asyncio.Task)
    assert steps == ["before"]  # ran up to its first wait, in the caller's turn
    later.set_result(41)
    assert await task == 42
    assert steps == ["before", "after future", "after yield"]


async def test_an_exception_after_a_wait_is_the_tasks() -> None:
    failing = asyncio.get_running_loop().create_future()

    async def waits() -> None:
        await failing

    task = start(waits())
    assert isinstance(task, asyncio.Task)
    failing.set_exception(ConnectionError("gone"))
    with pytest.raises(ConnectionError, match="gone"):
        await task


async def test_cancelling_the_task_cancels_what_it_waits_for() -> None:
    never = asyncio.get_running_loop().create_future()
    cleaned: list[bool] = []

    async def waits() -> None:
        try:
            await never
        finally:
            cleaned.append(True)

    task = start(waits())
    assert isinstance(task, asyncio.Task)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert never.cancelled() and cleaned == [True]
