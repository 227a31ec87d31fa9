"""Storage at the edge of the domain: a protocol and its implementations."""

from .moderation import ModerationStore
from .protocol import Store, update_space
from .sqlite import SqliteStore
from .sqlite_moderation import SqliteModeration

__all__ = ["ModerationStore", "SqliteModeration", "SqliteStore", "Store", "update_space"]
