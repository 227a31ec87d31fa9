"""The signing secrets every node of a deployment shares, kept in Redis.

The first node to start puts its own secret file's secrets in Redis; every node then uses what
Redis holds and keeps a copy in its data directory (mode 0600), so that `causerie token` run
beside any node signs tokens every node accepts. Synchronous: used while a node is built and
by the command line, never on a request path.
"""

from __future__ import annotations

import logging
from pathlib import Path
from secrets import token_bytes

import redis

from ..cluster.keys import KEYS, RedisKeys
from ..cluster.redis_client import text
from .secret_file import load_or_create_secrets, write_secrets

log = logging.getLogger(__name__)


def shared_secrets(url: str, data_dir: Path, keys: RedisKeys = KEYS) -> list[bytes]:
    """The signing secrets every node of the deployment shares, kept in Redis (`secrets`).

    The first node to start puts its own secret file's secrets there; every node then uses
    what Redis holds and writes it to its data directory, so that `causerie token` run beside
    any node signs tokens every node accepts. Synchronous: called once while a node is built.
    """
    local = load_or_create_secrets(data_dir)
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        key = keys.secrets
        client.set(key, "\n".join(k.hex() for k in local) + "\n", nx=True)
        stored = text(client.get(key) or "")
    finally:
        client.close()
    try:
        secrets = [bytes.fromhex(line.strip()) for line in stored.splitlines() if line.strip()]
    except ValueError as exc:
        raise ValueError(f"the secrets in Redis ({key}) are damaged") from exc
    if not secrets:
        raise ValueError(f"Redis holds no secret under {key}")
    if secrets != local:
        log.info("using the deployment's signing secret from Redis in %s", data_dir)
        write_secrets(data_dir, secrets)  # atomically, mode 0600 like every secret file
    return secrets


def rotate_shared_secrets(url: str, data_dir: Path, keep: int = 1, keys: RedisKeys = KEYS) -> int:
    """`security.secret_file.rotate_secret` for the secrets the nodes share in Redis (and
    `data_dir`'s copy). Returns how many secrets are accepted now; the nodes use them once
    restarted."""
    if keep < 0:
        raise ValueError("keep must be 0 or more")
    secrets = [token_bytes(32), *shared_secrets(url, data_dir, keys)[:keep]]
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        client.set(keys.secrets, "\n".join(k.hex() for k in secrets) + "\n")
    finally:
        client.close()
    write_secrets(data_dir, secrets)
    return len(secrets)
