"""How busy this node is: the figures its status report (status.py) carries."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class NodeLoad:
    """How busy this node's request handling is, read when a report is made. The HTTP side
    (api/app.py) sets the readers to its admission control's figures."""

    event_loop_lag: Callable[[], float] = field(default=lambda: 0.0)
    """Seconds the event loop runs late, on average lately."""
    requests_in_flight: Callable[[], int] = field(default=lambda: 0)
    """Control-plane requests being handled now."""


class CpuMeter:
    """The share of one core this process used since the last reading (all its threads)."""

    def __init__(self) -> None:
        self._last = (time.monotonic(), time.process_time())

    def read(self) -> float:
        wall, cpu = time.monotonic(), time.process_time()
        last_wall, last_cpu = self._last
        self._last = (wall, cpu)
        return (cpu - last_cpu) / (wall - last_wall) if wall > last_wall else 0.0
