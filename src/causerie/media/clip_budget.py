"""How much disk the clips of this node may take: per space, in all, and never the last of it.

Anyone may cut a clip (api/replay.py), and every distinct range is a new file: without a
bound, one client filled a disk at ~5 GB an hour, and then the recordings of live spaces
failed for want of space. Clips are the first thing refused when disk runs short: a clip is a
convenience, a recording is the only copy of a conversation.

`ClipBudget` counts the bytes of the clip files under the recordings directory (read once
from the disk, then kept up to date as clips are made) and says why a new clip may not be
made, if it may not: its space's clips are at their bound, all clips are at theirs, or the
disk has less free space than the reserve kept for recordings.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

__all__ = ["CLIPS_DIR", "ClipBudget", "OverBudget"]

CLIPS_DIR = "clips"
"""Clips of a space live in DATA/recordings/{space}/clips/."""


class OverBudget(Exception):
    """A new clip would go over a bound; the message says which, for people."""


class ClipBudget:
    """The bytes of clips on this node's disk, against their bounds (see the module docstring).

    Thread-safe: clips are written in worker threads, which report their sizes with `add`.
    """

    def __init__(self, root: Path, *, per_space: int, total: int, min_free: int) -> None:
        self.root = root
        self.per_space = per_space
        self.total = total
        self.min_free = min_free
        self._lock = threading.Lock()
        self._bytes: dict[str, int] | None = None  # per space; None until read from disk

    def _load(self) -> dict[str, int]:
        if self._bytes is None:
            found: dict[str, int] = {}
            for clip in self.root.glob(f"*/{CLIPS_DIR}/*.m4a"):
                space_id = clip.parent.parent.name
                found[space_id] = found.get(space_id, 0) + clip.stat().st_size
            self._bytes = found
        return self._bytes

    def used(self, space_id: str | None = None) -> int:
        """Bytes of clips of `space_id`, or of every space. Reads the disk the first time."""
        with self._lock:
            spaces = self._load()
            return sum(spaces.values()) if space_id is None else spaces.get(space_id, 0)

    def admit(self, space_id: str) -> None:
        """Raise `OverBudget` unless a new clip of `space_id` may be made now.

        Blocking (the first call lists the clips on disk, every call asks the file system for
        its free space): run it in a thread. Clips being made at the same moment are not
        counted until they are written, so a bound may be passed by a few clips (the node
        makes at most a few at once, api/replay.py MAX_JOBS).
        """
        if self.used(space_id) >= self.per_space:
            raise OverBudget(
                f"this space's clips already take {self.per_space // 2**20} MiB, the most a "
                "space may have on this server; share an existing clip"
            )
        if self.used() >= self.total:
            raise OverBudget("the server's room for clips is full; share an existing clip")
        self.require_free_disk()

    def require_free_disk(self) -> None:
        """Raise `OverBudget` if the disk has less free space than the recordings' reserve
        (also asked before making a replay download, the other file made on request)."""
        if shutil.disk_usage(self.root).free < self.min_free:
            raise OverBudget(
                "the server is short of disk space, kept for recordings: try again later"
            )

    def add(self, space_id: str, size: int) -> None:
        """A clip of `size` bytes was written for `space_id`."""
        with self._lock:
            spaces = self._load()
            spaces[space_id] = spaces.get(space_id, 0) + size

    def forget(self, space_id: str) -> None:
        """The clips of `space_id` are gone from the disk (its recording was removed)."""
        with self._lock:
            if self._bytes is not None:
                self._bytes.pop(space_id, None)
