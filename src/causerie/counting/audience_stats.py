"""The audience numbers of a node, as one protocol: `LocalStats` (embedded, saved to SQLite)
or `RedisStats` (shared by several nodes)."""

from __future__ import annotations

from typing import Protocol

from .stats import Summary


class AudienceStats(Protocol):
    """Records what listeners do and answers with the numbers (`LocalStats` embedded, `RedisStats`
    shared by several nodes: counting/redis_stats.py)."""

    async def join_attempted(self, space_id: str, now: float) -> None:
        """A join request reached the space `space_id` (it exists)."""

    async def joined(self, space_id: str, listener_id: str, now: float) -> None:
        """A listener token was issued to `listener_id`."""

    async def heartbeat(self, space_id: str, listener_id: str, now: float) -> None:
        """`listener_id` is still listening."""

    async def record_replay_listen(self, space_id: str, client_key: str, now: float) -> None:
        """The replay playlist was fetched by a device (`client_key(ip, user_agent)`)."""

    async def summary(
        self, space_id: str, now: float, started_at: float | None, ended_at: float | None
    ) -> Summary:
        """Every number of the space at `now` (zeros for a space nobody joined)."""

    def start(self) -> None:
        """Start keeping the numbers (saved to disk, or shared with the other nodes)."""

    async def close(self) -> None:
        """Save or share what is left, stop, and let go of what is held."""
