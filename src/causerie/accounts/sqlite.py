"""Accounts in the embedded store's SQLite file (so `causerie backup` copies them too)."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from pathlib import Path

from ..domain import Conflict, NotFound
from ..domain.accounts import Account, Invite
from .protocol import LIST_LIMIT

SCHEMA = """
CREATE TABLE IF NOT EXISTS invites (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS revoked (
    account_id TEXT PRIMARY KEY,
    at TEXT NOT NULL
);
"""


def _json(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False)


class SqliteAccounts:
    """`Accounts` on a SQLite file (its own connection; WAL lets it share the store's file)."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)

    async def add_invite(self, invite: Invite) -> None:
        try:
            self._db.execute(
                "INSERT INTO invites (id, created_at, version, body) VALUES (?, ?, ?, ?)",
                (invite.id, invite.created_at.isoformat(), invite.version, _json(invite.to_dict())),
            )
        except sqlite3.IntegrityError as exc:
            raise Conflict("that invite exists already") from exc

    async def get_invite(self, invite_id: str) -> Invite:
        row = self._db.execute("SELECT body FROM invites WHERE id = ?", (invite_id,)).fetchone()
        if row is None:
            raise NotFound("no such invite")
        return Invite.from_dict(json.loads(row[0]))

    async def list_invites(self, limit: int = LIST_LIMIT) -> list[Invite]:
        rows = self._db.execute(
            "SELECT body FROM invites ORDER BY created_at DESC LIMIT ?", (limit,)
        ).fetchall()
        return [Invite.from_dict(json.loads(row[0])) for row in rows]

    def _replace(self, invite: Invite, expected_version: int) -> bool:
        invite.version = expected_version + 1
        cursor = self._db.execute(
            "UPDATE invites SET version = ?, body = ? WHERE id = ? AND version = ?",
            (invite.version, _json(invite.to_dict()), invite.id, expected_version),
        )
        return cursor.rowcount == 1

    async def replace_invite(self, invite: Invite, expected_version: int) -> bool:
        return self._replace(invite, expected_version)

    async def redeem_invite(self, invite: Invite, expected_version: int, account: Account) -> bool:
        with self._db:  # one transaction: the invite is used and the account made together
            self._db.execute("BEGIN IMMEDIATE")
            if not self._replace(invite, expected_version):
                return False
            self._db.execute(
                "INSERT INTO accounts (id, created_at, body) VALUES (?, ?, ?)",
                (account.id, account.created_at.isoformat(), _json(account.to_dict())),
            )
        return True

    async def list_accounts(self, limit: int = LIST_LIMIT) -> list[Account]:
        rows = self._db.execute(
            "SELECT body FROM accounts ORDER BY created_at DESC LIMIT ?", (limit,)
        ).fetchall()
        return [Account.from_dict(json.loads(row[0])) for row in rows]

    async def revoke(self, account_id: str, at: datetime) -> None:
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "INSERT OR IGNORE INTO revoked (account_id, at) VALUES (?, ?)",
                (account_id, at.isoformat()),
            )
            row = self._db.execute(
                "SELECT body FROM accounts WHERE id = ?", (account_id,)
            ).fetchone()
            if row is not None:
                account = Account.from_dict(json.loads(row[0]))
                if account.revoked_at is None:
                    account.revoked_at = at
                    self._db.execute(
                        "UPDATE accounts SET body = ? WHERE id = ?",
                        (_json(account.to_dict()), account_id),
                    )

    async def is_revoked(self, account_id: str) -> bool:
        row = self._db.execute(
            "SELECT 1 FROM revoked WHERE account_id = ?", (account_id,)
        ).fetchone()
        return row is not None

    async def close(self) -> None:
        self._db.close()
