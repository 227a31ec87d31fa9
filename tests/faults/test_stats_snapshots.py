"""The audience numbers of the embedded mode survive a restart: snapshots to SQLite."""

from __future__ import annotations

import asyncio
from pathlib import Path

from causerie.counting.local_stats import LocalStats
from causerie.counting.stats import SpaceStats

START = 1_700_000_000.0


def _busy_space() -> SpaceStats:
    stats = SpaceStats(15)
    for second in range(0, 180, 5):
        for listener in range(second // 3):
            stats.heartbeat(f"l{listener}", START + second)
    for i in range(40):
        stats.join_attempted(START + i)
        stats.joined(f"j{i}", START + i)
    stats.replay_listen("device", START + 100)
    return stats


def test_a_snapshot_gives_back_the_same_numbers() -> None:
    stats = _busy_space()
    again = SpaceStats.from_bytes(stats.to_bytes())
    for now in (START + 185, START + 400):
        assert again.summarize(now, START) == stats.summarize(now, START)
    # Both go on counting the same way.
    stats.heartbeat("late", START + 190)
    again.heartbeat("late", START + 190)
    assert again.summarize(START + 220, START) == stats.summarize(START + 220, START)


async def test_local_stats_save_what_changed_and_read_it_back(tmp_path: Path) -> None:
    path = tmp_path / "stats.sqlite3"
    stats = LocalStats(path=path)
    saving = asyncio.create_task(stats.keep_saved(every=0.05))
    try:
        await stats.joined("s1", "a", START)
        await stats.joined("s2", "b", START)
        await stats.heartbeat("s1", "c", START + 1)
        await asyncio.sleep(0.3)  # saved in the background, no shutdown
        restarted = LocalStats(path=path)
        assert restarted.spaces["s1"].joins == 1 and restarted.spaces["s1"].heartbeats == 1
        assert restarted.spaces["s2"].joins == 1
        stats.forget("s2")
        await asyncio.sleep(0.3)
        assert set(LocalStats(path=path).spaces) == {"s1"}
    finally:
        saving.cancel()
    # Without a path nothing is kept, nor remembered to be saved.
    memory = LocalStats()
    await memory.joined("s1", "a", START)
    memory.save()
    assert not memory._dirty
