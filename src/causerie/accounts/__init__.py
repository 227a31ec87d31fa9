"""Accounts, invites and revocations: one protocol, kept in SQLite or in Redis."""

from .protocol import Accounts, redeem, update_invite
from .redis import RedisAccounts
from .sqlite import SqliteAccounts

__all__ = ["Accounts", "RedisAccounts", "SqliteAccounts", "redeem", "update_invite"]
