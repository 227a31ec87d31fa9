"""Background work that runs every few seconds, the same way for every loop of the node.

Each loop is a `step` called every `interval` seconds. A step that fails is logged once with
its traceback, then counted while it keeps failing (a dead Redis must not fill the log), and
the loop goes on; cancelling the task ends it quietly. `Periodic.stop` cancels and awaits, so
nothing runs after the node has closed what the steps use.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[None]]


@dataclass
class Periodic:
    """One named step, run every `interval` seconds in its own task (the first one after
    `delay` seconds, if given)."""

    name: str
    interval: float
    step: Step
    delay: float | None = None
    failures: int = 0
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        """Cancel the loop and wait until it has ended."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _run(self) -> None:
        wait = self.interval if self.delay is None else self.delay
        while True:
            await asyncio.sleep(wait)
            wait = self.interval
            try:
                await self.step()
            except Exception:
                self.failures += 1
                if self.failures == 1 or self.failures % 100 == 0:
                    log.exception("%s failed (%d times in a row)", self.name, self.failures)
            else:
                if self.failures:
                    log.info("%s works again after %d failures", self.name, self.failures)
                self.failures = 0
