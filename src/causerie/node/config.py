"""One configuration object for a causerie node, mirrored by the CLI flags."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..cluster.redis_url import RedisTarget, parse_redis_url

ICE_URL_SCHEMES = ("stun:", "stuns:", "turn:", "turns:")


def check_public_url(url: str) -> None:
    """`ValueError` unless `url` is http(s)://host[:port] with nothing after but a slash, and
    nothing that could end a quoted string in HTML, nginx or VCL (edges write its host)."""
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (a bad port raises)
    except ValueError:
        raise ValueError(f"bad port in public_url (--public-url) {url!r}") from None
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
        or any(c in url for c in ' \t\r\n"<>\\;{}#$')
    ):
        raise ValueError(
            f"public_url (--public-url) is http(s)://host[:port] and nothing else, not {url!r}"
        )


@dataclass(frozen=True)
class Config:
    """Everything a node needs to know to start."""

    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("data")
    max_inflight: int = 512
    """Control-plane requests handled at once; above it, 503 with Retry-After (media is exempt)."""
    max_lag: float = 0.1
    """Seconds the event loop may run late before new control-plane work is refused with 503."""
    max_body_bytes: int = 64 * 1024
    max_event_streams: int = 20_000
    """Live event streams (SSE) this node keeps open at once; beyond, 503 with Retry-After."""
    heartbeat_interval: float = 15.0
    """Seconds between a listener's heartbeats; someone who stops is no longer counted after
    two of them (which is also when a full space's waiting room moves)."""
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
    """Redis shared by several nodes (e.g. "redis://127.0.0.1:6379/0", or a primary watched by
    Sentinel: "redis+sentinel://host:26379,host2:26379/service/0", cluster/redis_url.py):
    spaces, questions, live events, listener counts and the signing secret live there. None:
    the embedded default (SQLite and in-process events in the data directory, one node)."""

    trusted_proxies: tuple[str, ...] = ()
    """Addresses or networks (CIDR) of the reverse proxies and edges whose `X-Forwarded-For` is
    believed for the client's address (per-IP rate limits); none by default, so a client
    cannot pick its own address. Typical: ("127.0.0.1",) for an edge on the same machine."""
    advertise_url: str | None = None
    """The URL the other nodes reach this one at (with Redis they forward requests for the
    spaces this node runs here); None: http://HOST:PORT, with 127.0.0.1 for 0.0.0.0."""
    public_url: str | None = None
    """The address listeners use (typically the edge's, e.g. "https://live.example"): absolute
    links the node writes (a calendar event's page) start with it; None: `node_url`. Never
    taken from a request's Host header, which whoever sends the request chooses."""

    clip_bytes_per_space: int = 64 * 2**20
    """Disk the clips of one space may take on this node (~270 clips of 30 s); beyond, 507."""
    clip_bytes_total: int = 2 * 2**30
    """Disk all clips together may take on this node; beyond, 507."""
    min_free_disk_bytes: int = 2**30
    """Free space kept for recordings on the recordings' disk: below it, no new clip or
    replay download is made (507), so clips never make a recording fail."""
    keep_recordings_seconds: float = 30 * 86400
    """How long a recording is kept after its space ended (X keeps 30 days); 0: forever.
    After it, the recording is removed and its replay answers 410 Gone."""
    recordings_max_bytes: int = 0
    """Disk all recordings may take on this node; beyond, those that ended first are removed
    (never a live one). 0: no bound but the disk's."""
    end_idle_after: float = 15 * 60
    """Seconds a live space may go with no speaker connected before it ends by itself (its
    host is told a few minutes before); 0: never."""
    captions_model: str = "tiny.en"
    """The speech model for live captions (captions/model.py): a faster-whisper model name,
    found in the package that carries it or the local cache (never fetched), or a directory."""
    captions_max: int = 2
    """Live spaces this node captions at once (each takes about a quarter of a core with
    tiny.en); 0: no captions."""
    metrics_token: str | None = None
    """A bearer token that lets anyone holding it read `/metrics` (a scraper on another
    machine); None: only requests from this machine's loopback, not relayed by a proxy."""

    @property
    def local_url(self) -> str:
        """How this machine reaches the node: http://HOST:PORT, with 127.0.0.1 for a wildcard
        host and brackets around an IPv6 address (RFC 3986 §3.2.2)."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    @property
    def redis_target(self) -> RedisTarget | None:
        """`redis_url`, read (checked when the configuration was made)."""
        return parse_redis_url(self.redis_url) if self.redis_url else None

    @property
    def node_url(self) -> str:
        """`advertise_url`, or the address this node listens on."""
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        return self.local_url

    @property
    def site_url(self) -> str:
        """Where people reach the site: `public_url`, or `node_url`; no trailing slash."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return self.node_url

    def __post_init__(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port must be 0..65535, not {self.port}")
        if self.max_inflight < 1:
            raise ValueError("max_inflight must be at least 1")
        if not 0.001 <= self.max_lag <= 10:
            raise ValueError("max_lag must be between 0.001 and 10 seconds")
        if not 0.1 <= self.heartbeat_interval <= 3600:
            raise ValueError("heartbeat_interval must be between 0.1 and 3600 seconds")
        if self.max_event_streams < 1:
            raise ValueError("max_event_streams must be at least 1")
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
        if self.advertise_url is not None and not self.advertise_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError(f"advertise_url is http://host:port, not {self.advertise_url!r}")
        if self.public_url is not None:
            check_public_url(self.public_url)
        if self.redis_url is not None:
            parse_redis_url(self.redis_url)  # a clear ValueError now, not on the first request
        if min(self.clip_bytes_per_space, self.clip_bytes_total, self.min_free_disk_bytes) < 0:
            raise ValueError("clip and disk bounds must not be negative")
        if not (0 <= self.keep_recordings_seconds < math.inf) or self.recordings_max_bytes < 0:
            raise ValueError(
                "keep_recordings (--keep-recordings) and recordings_max (--recordings-max-gb) "
                "are 0 (no bound) or more"
            )
        if not 0 <= self.end_idle_after < math.inf:
            raise ValueError("end_idle_after (--end-idle-after) is 0 (never) or more")
        if self.captions_max < 0:
            raise ValueError("captions_max (--captions-max) is 0 (no captions) or more")
        if self.metrics_token is not None and not (
            16 <= len(self.metrics_token) <= 256
            and self.metrics_token.isascii()
            and self.metrics_token.isprintable()
            and " " not in self.metrics_token
        ):
            raise ValueError("metrics_token is 16 to 256 printable ASCII characters, no spaces")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=True)
            except ValueError:
                # strict: 10.0.0.1/8 (host bits set) is refused, not silently ignored by the
                # proxy-header middleware, which would then believe no edge at all.
                raise ValueError(
                    f"a trusted proxy is an IP address or a network with no host bits set "
                    f"(10.0.0.0/8), not {proxy!r}"
                ) from None
        for url in self.rtc_ice_servers:
            if not url.startswith(ICE_URL_SCHEMES):
                raise ValueError(f"an ICE server URL starts with stun: or turn:, not {url!r}")
