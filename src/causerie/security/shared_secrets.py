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

from ..cluster.keys import KEYS, RedisKeys
from ..cluster.redis_client import connect_sync, replication
from ..cluster.redis_url import RedisTarget
from .secret_file import load_or_create_secrets, write_secrets

log = logging.getLogger(__name__)


def shared_secrets(url: RedisTarget | str, data_dir: Path, keys: RedisKeys = KEYS) -> list[bytes]:
    """The signing secrets every node of the deployment shares, kept in Redis (`secrets`).

    The first node to start puts its own secret file's secrets there; every node then uses
    what Redis holds and writes it to its data directory, so that `causerie token` run beside
    any node signs tokens every node accepts. Synchronous: called once while a node is built.
    With Sentinel, the secrets are on a replica too before they are used (a failover must not
    lose the secret tokens were signed with).
    """
    local = load_or_create_secrets(data_dir)
    key = keys.secrets
    with connect_sync(url) as client:
        stored = replication(url).set_if_absent(
            client, key, "\n".join(k.hex() for k in local) + "\n"
        )
    stored = stored or ""
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


def rotate_shared_secrets(
    url: RedisTarget | str, data_dir: Path, keep: int = 1, keys: RedisKeys = KEYS
) -> int:
    """`security.secret_file.rotate_secret` for the secrets the nodes share in Redis (and
    `data_dir`'s copy). Returns how many secrets are accepted now; the nodes use them once
    restarted."""
    if keep < 0:
        raise ValueError("keep must be 0 or more")
    secrets = [token_bytes(32), *shared_secrets(url, data_dir, keys)[:keep]]
    with connect_sync(url) as client:
        replication(url).set(client, keys.secrets, "\n".join(k.hex() for k in secrets) + "\n")
    write_secrets(data_dir, secrets)
    return len(secrets)
