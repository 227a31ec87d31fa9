"""One configuration object for a causerie node, mirrored by the CLI flags."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Config:
    """Everything a node needs to know to start."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("data")
    max_inflight: int = 512
    """Control-plane requests handled at once; above it, 503 with Retry-After (media is exempt)."""
    max_body_bytes: int = 64 * 1024
    listener_token_ttl: int = 4 * 3600
    details_max_age: int = 2
    """Seconds the space details may be cached (edges serve them stale beyond that)."""
    log_level: str = "info"

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, not {self.port}")
        if self.max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")
