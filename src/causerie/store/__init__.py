"""Storage at the edge of the domain: a protocol and its implementations."""

from .protocol import Store, update_space
from .sqlite import SqliteStore

__all__ = ["SqliteStore", "Store", "update_space"]
