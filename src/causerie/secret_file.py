"""The server's signing secrets, kept in the data directory with mode 0600."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_FILE = "secret.key"


def load_or_create_secrets(data_dir: Path) -> list[bytes]:
    """The secrets in `data_dir/secret.key` (one hex secret per line, newest first).

    Created at first start with one fresh 32-byte secret, readable by the owner only.
    """
    path = data_dir / SECRET_FILE
    try:
        # O_EXCL: two processes starting at once never overwrite each other's secret.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as file:
            file.write(secrets.token_hex(32) + "\n")
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    try:
        keys = [bytes.fromhex(line) for line in lines]
    except ValueError as exc:
        raise ValueError(f"{path} is damaged: each line must be a hex secret") from exc
    if not keys:
        raise ValueError(f"{path} holds no secret")
    return keys


def rotate_secret(data_dir: Path, keep: int = 1) -> None:
    """Put a new secret first, keeping the `keep` newest old ones so their tokens stay valid."""
    old = load_or_create_secrets(data_dir)[:keep]
    path = data_dir / SECRET_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write("\n".join([secrets.token_hex(32), *(k.hex() for k in old)]) + "\n")
    os.replace(tmp, path)
