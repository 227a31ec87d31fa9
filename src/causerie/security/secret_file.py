"""The server's signing secrets, kept in the data directory with mode 0600."""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

log = logging.getLogger(__name__)

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
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s can be read by others (mode %o): run chmod 600 on it", path, mode)
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    try:
        keys = [bytes.fromhex(line) for line in lines]
    except ValueError as exc:
        raise ValueError(f"{path} is damaged: each line must be a hex secret") from exc
    if not keys:
        raise ValueError(f"{path} holds no secret")
    return keys


def rotate_secret(data_dir: Path, keep: int = 1) -> int:
    """Put a new secret first, keeping the `keep` newest old ones so their tokens stay valid.

    Returns how many secrets are accepted now (the new one and those kept).
    """
    if keep < 0:
        raise ValueError("keep must be 0 or more")
    keys = [secrets.token_bytes(32), *load_or_create_secrets(data_dir)[:keep]]
    write_secrets(data_dir, keys)
    return len(keys)


def write_secrets(data_dir: Path, keys: list[bytes]) -> None:
    """Replace the secret file atomically (mode 0600 from its creation on)."""
    path = data_dir / SECRET_FILE
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # even if an old temporary file was left with another mode
    with os.fdopen(fd, "w") as file:
        file.write("\n".join(k.hex() for k in keys) + "\n")
    os.replace(tmp, path)
