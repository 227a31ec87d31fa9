"""Housekeeping: a live space nobody is on the microphone in for a while ends by itself.

A host who closes the tab, a speaker whose network went: without this, the space stays "live"
on the home page for ever, with listeners waiting on silence. The node watches whether anyone
is connected to speak in each live space it runs (a WebRTC speaker, or the demo's voices).
After `end_after` seconds with nobody, the space ends; `warn_before` seconds earlier the end is
announced on the space (`Space.announce_idle_end`), which the host's studio shows, so they can
come back; anyone going on air before then cancels it.

`IdleWatch` keeps, per space, since when it has been quiet (in the node's memory: after a
restart the countdown starts again, unless an end had been announced, which keeps its time).
It is pure: the time is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

__all__ = ["WARN_BEFORE_MAX", "IdleAction", "IdleVerdict", "IdleWatch", "warn_before"]

WARN_BEFORE_MAX = 300.0
"""The host is told at most five minutes before the end (a third of `end_after` if shorter)."""


def warn_before(end_after: float) -> float:
    """How long before the end the host is told, for a space ending after `end_after` quiet."""
    return min(WARN_BEFORE_MAX, end_after / 3)


class IdleAction(Enum):
    NONE = "none"
    ANNOUNCE = "announce"
    """Announce the end at `IdleVerdict.ends_at`."""
    CANCEL = "cancel"
    """Someone is on the microphone: cancel the end announced."""
    END = "end"
    """The announced end has come."""


@dataclass(frozen=True)
class IdleVerdict:
    action: IdleAction
    ends_at: float | None = None


NOTHING = IdleVerdict(IdleAction.NONE)


@dataclass
class IdleWatch:
    """Since when each live space has had nobody on the microphone, and what follows."""

    end_after: float
    """Seconds of quiet before a space ends by itself; 0: never."""
    _quiet_since: dict[str, float] = field(default_factory=dict)

    def observe(
        self, space_id: str, *, speakers: bool, announced: float | None, now: float
    ) -> IdleVerdict:
        """What to do about the live space `space_id` at `now` (Unix seconds).

        `speakers`: whether anyone is connected to speak; `announced`: the end already
        announced on the space (Unix seconds), if any.
        """
        if speakers or self.end_after <= 0:
            self._quiet_since.pop(space_id, None)
            return IdleVerdict(IdleAction.CANCEL) if announced is not None else NOTHING
        if space_id not in self._quiet_since:
            # An end announced before this node watched (a restart) keeps its time.
            start = now if announced is None else min(now, announced - self.end_after)
            self._quiet_since[space_id] = start
        ends_at = self._quiet_since[space_id] + self.end_after
        if announced is not None:
            if now >= announced:
                self._quiet_since.pop(space_id, None)
                return IdleVerdict(IdleAction.END, announced)
            return NOTHING
        notice = warn_before(self.end_after)
        if now >= ends_at - notice:
            # Looked at late (a stalled loop): the host still gets the whole notice.
            return IdleVerdict(IdleAction.ANNOUNCE, max(ends_at, now + notice))
        return NOTHING

    def keep_only(self, live: Iterable[str]) -> None:
        """Forget the spaces no longer live here."""
        keep = set(live)
        for space_id in [s for s in self._quiet_since if s not in keep]:
            del self._quiet_since[space_id]
