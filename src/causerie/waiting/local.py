"""The waiting rooms' lines in this process's memory (the embedded default, one node)."""

from __future__ import annotations

from dataclasses import replace

from ..domain.waiting_room import Line
from .protocol import new_epoch


class LocalLines:
    """`Lines` in this process's memory (the embedded default, one node)."""

    def __init__(self) -> None:
        self._lines: dict[str, Line] = {}

    def _line(self, space_id: str) -> Line:
        line = self._lines.get(space_id)
        if line is None:
            line = self._lines[space_id] = Line(epoch=new_epoch())
        return line

    def _arrive(self, space_id: str, line: Line, number: int) -> Line:
        if line.arrived < number <= line.admitted:
            line = self._lines[space_id] = replace(line, arrived=number)
        return line

    async def take(self, space_id: str) -> tuple[int, Line]:
        line = self._line(space_id)
        number = line.issued + 1
        line = self._lines[space_id] = replace(line, issued=number)
        return number, self._arrive(space_id, line, number)

    async def present(self, space_id: str, epoch: str, number: int) -> Line | None:
        line = self._line(space_id)
        if line.epoch != epoch or number > line.issued:
            return None
        return self._arrive(space_id, line, number)

    async def advance(self, space_id: str, before: Line, after: Line) -> Line:
        line = self._line(space_id)
        if line.advanced_at == before.advanced_at and line.epoch == before.epoch:
            line = self._lines[space_id] = replace(after, issued=line.issued, arrived=line.arrived)
        return line

    async def close(self) -> None:
        """Nothing to let go of."""
