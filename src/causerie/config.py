"""One configuration object for a causerie node, mirrored by the CLI flags."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

ICE_URL_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


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
    rtc_host_addresses: tuple[str, ...] | None = None
    """The only local addresses WebRTC (ICE) may offer as host candidates; None: every interface.

    Tests and loopback-only deployments set ("127.0.0.1",), which aioice never offers by itself.
    """
    rtc_ice_servers: tuple[str, ...] = ()
    """STUN server URLs for WebRTC (e.g. "stun:stun.example.net:3478"); none by default.

    Also sent to WHIP clients (Link rel="ice-server"). TURN needs credentials: not yet supported.
    """
    redis_url: str | None = None
    """Redis shared by several nodes (e.g. "redis://127.0.0.1:6379/0"): spaces, questions,
    live events, listener counts and the signing secret live there. None: the embedded default
    (SQLite and in-process events in the data directory, one node)."""

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, not {self.port}")
        if self.max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        if self.max_body_bytes < 1024:
            raise ValueError("max_body_bytes must be at least 1024")
        if self.rtc_host_addresses is not None:
            if not self.rtc_host_addresses:
                raise ValueError("rtc_host_addresses must name at least one address")
            for address in self.rtc_host_addresses:
                try:
                    ipaddress.ip_address(address)
                except ValueError:
                    raise ValueError(f"not an IP address: {address!r}") from None
        for url in self.rtc_ice_servers:
            if not url.startswith(ICE_URL_SCHEMES):
                raise ValueError(f"an ICE server URL starts with stun: or turn:, not {url!r}")
