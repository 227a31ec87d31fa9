"""The signing secrets of a node: the one place that decides where they come from.

Embedded, they are the data directory's `secret.key` (secret_file.py); with Redis, the secrets
every node of the deployment shares (shared_secrets.py), copied into the data directory.
"""

from __future__ import annotations

from pathlib import Path

from ..cluster.redis_url import RedisTarget
from .secret_file import load_or_create_secrets, rotate_secret
from .shared_secrets import rotate_shared_secrets, shared_secrets


def load_secrets(data_dir: Path, redis_url: RedisTarget | str | None = None) -> list[bytes]:
    """The secrets to sign with (the first) and accept (all)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if redis_url:
        return shared_secrets(redis_url, data_dir)
    return load_or_create_secrets(data_dir)


def rotate_secrets(
    data_dir: Path, redis_url: RedisTarget | str | None = None, keep: int = 1
) -> int:
    """Put a new secret first, keeping the `keep` newest old ones; how many are accepted now."""
    data_dir.mkdir(parents=True, exist_ok=True)
    if redis_url:
        return rotate_shared_secrets(redis_url, data_dir, keep=keep)
    return rotate_secret(data_dir, keep=keep)
