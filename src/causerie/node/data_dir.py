"""What a node keeps in its data directory, and the lock that says a node is using it.

    DATA/causerie.sqlite3   spaces, questions, votes, reactions (store/sqlite.py; embedded only)
    DATA/stats.sqlite3      the audience numbers (counting/local_stats.py; embedded only)
    DATA/secret.key         the token-signing secrets, mode 0600 (security/secret_file.py)
    DATA/recordings/        one directory per recorded space (media/recorder.py)
    DATA/node.lock          locked by every node running on the directory (below)

A running node holds a *shared* lock (flock(2)) on `node.lock` for its whole life, so several
nodes may share a directory; `causerie restore` takes it *exclusively*, which it can only do
while no node runs there, and holds it while it works, so no node starts meanwhile. The kernel
drops a lock when its process ends, even by `kill -9`: a lock is never stale.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from ..security.secret_file import SECRET_FILE

__all__ = [
    "LOCK_FILE",
    "RECORDINGS_DIR",
    "SECRET_FILE",
    "STATS_FILE",
    "STORE_FILE",
    "TRANSCRIPTS_FILE",
    "DataDirLock",
    "Locked",
    "RestoreUnderWay",
    "lock_for_node",
]

STORE_FILE = "causerie.sqlite3"
STATS_FILE = "stats.sqlite3"
RECORDINGS_DIR = "recordings"
TRANSCRIPTS_FILE = "transcripts.sqlite3"
"""The search index of transcripts (captions/search.py): made again from the recordings."""
LOCK_FILE = "node.lock"


class Locked(Exception):
    """The lock is held by someone else (a running node, or a restore under way)."""


class RestoreUnderWay(RuntimeError):
    """A node cannot start: `causerie restore` is working on its data directory."""


class DataDirLock:
    """A lock on DATA/node.lock: `shared` for a node, `exclusive` for a restore."""

    def __init__(self, data_dir: Path, *, exclusive: bool) -> None:
        self.path = data_dir / LOCK_FILE
        self.exclusive = exclusive
        self._fd: int | None = None

    def acquire(self) -> DataDirLock:
        """Take the lock at once or raise `Locked` (never waits)."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if self.exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise Locked(str(self.path)) from None
        self._fd = fd
        return self

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing the descriptor releases the lock

    def __enter__(self) -> DataDirLock:
        return self.acquire()

    def __exit__(self, *_: object) -> None:
        self.release()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.release()


def lock_for_node(data_dir: Path) -> DataDirLock:
    """The shared lock a node holds while it runs; `RestoreUnderWay` if it cannot have it."""
    try:
        return DataDirLock(data_dir, exclusive=False).acquire()
    except Locked:
        raise RestoreUnderWay(
            f"{data_dir} is being restored (`causerie restore` holds {data_dir / LOCK_FILE}); "
            "start the node once it has finished"
        ) from None
