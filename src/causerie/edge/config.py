"""Configurations for caching edges (nginx or Varnish) in front of causerie origins.

Pure: these functions only render text (and the command lines that go with it); they never
touch the disk or start anything. `causerie edge-config` prints what they render, the tests
check it with `nginx -t` and `varnishd -C`, then run it in front of a real node.

The policy, the same for both kinds (docs/edges.md explains it and gives the measured figures):

- LL-HLS media (parts, segments, init sections) is cached as the origin says: immutable.
- A blocking playlist reload (`?_HLS_msn=N&_HLS_part=P`) is cached under its whole URL, query
  string included, for the origin's max-age; concurrent identical requests are collapsed into
  one origin request (the origin holds it until the part exists).
- The plain playlist is cached for about half a part (Varnish; nginx counts whole seconds).
- LL-DASH manifests (Varnish: half a second; nginx: a second) and init sections are cached
  like the rest; a DASH segment is asked for while the origin is still making it and comes
  chunk by chunk: Varnish streams it to every listener asking meanwhile with one origin
  request; nginx cannot (ticket 237: its cache lock holds the others until the segment is
  complete), so it passes segments through, uncached (docs/dash.md: the measurements, and
  why Varnish is the edge for LL-DASH).
- Space details are cached, served stale while revalidating and while the origin is down.
- Writes (joins included), WHIP and live events (SSE) go to the origin, never cached; a request
  with credentials is never cached, except the public objects above, which are the same for
  everyone (their credentials are not forwarded).
- Several origins: round-robin for the API; a space's media always from the same node (which
  forwards to the space's owner, docs/failover.md); a failing origin is skipped for the next.
"""

from __future__ import annotations

import math
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlsplit

from ..node.config import check_public_url

__all__ = [
    "KINDS",
    "EdgeOptions",
    "Origin",
    "nginx_command",
    "parse_listen",
    "render",
    "render_nginx",
    "render_varnish",
    "varnishd_command",
]

KINDS = ("nginx", "varnish")

PART_DURATION = 0.21333
"""Seconds per LL-HLS part, as causerie's packager makes them (10 × 20 ms AAC frames … 213 ms)."""
ORIGIN_BLOCK_TIMEOUT = 6.0
"""How long the origin holds a blocking request at most (api/hls.py BLOCK_TIMEOUT)."""


@dataclass(frozen=True)
class Origin:
    """One causerie node, as the edge reaches it: plain HTTP to host:port."""

    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> Origin:
        """`http://host:port` (port 80 if none); nothing else: no path, no TLS to the origin."""
        parts = urlsplit(url if "://" in url else "http://" + url)
        if parts.scheme != "http":
            raise ValueError(f"an origin is http://host:port, not {url!r}")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"an origin has no path: {url!r}")
        if parts.username or parts.password:
            raise ValueError(f"an origin has no credentials: {url!r}")
        try:
            port = parts.port or 80
        except ValueError:
            raise ValueError(f"bad port in {url!r}") from None
        host = parts.hostname or ""
        if not host or any(c in host for c in ' \t\n";{}#'):
            raise ValueError(f"bad host in {url!r}")
        return cls(host, port)

    @property
    def address(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"


def parse_listen(listen: str) -> tuple[str, int]:
    """`host:port` (or `[v6]:port`, or a bare port: 127.0.0.1) → (host, port)."""
    text = listen.strip()
    if text.isdigit():
        host, port_text = "127.0.0.1", text
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"--listen is host:port, not {listen!r}")
        host = host.strip("[]")
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in --listen {listen!r}")
    if any(c in host for c in ' \t\n";{}#'):
        raise ValueError(f"bad host in --listen {listen!r}")
    return host, int(port_text)


@dataclass(frozen=True)
class EdgeOptions:
    """What an edge configuration depends on."""

    origins: tuple[Origin, ...]
    listen: str = "127.0.0.1:8081"
    cache_dir: str | None = None
    """nginx: where its cache, temp files, pid and error log go (absolute). None: relative
    paths, under the prefix nginx is started with (`nginx -p DIR`). Varnish: its working
    directory (`-n`) in the printed command line; the cache itself is in memory."""
    part_duration: float = PART_DURATION
    # nginx
    workers: str = "auto"
    user: str | None = None
    """nginx `user` directive (only matters when nginx starts as root); None: leave it out."""
    media_lock_timeout_ms: int = 100
    """nginx: how long a request for a part waits for another request's origin fetch of it
    before going to the origin itself, uncached. The origin answers a listed part within a few
    ms, so waiters find it cached by then; the wait is added to their delivery. Too short, and
    a slow origin gets every waiter's request at once (a stampede, uncached)."""
    playlist_lock_timeout_ms: int | None = None
    """nginx: the same for a blocking playlist reload, which the origin holds until its part
    exists: up to one part duration after the previous part. Shorter than that sends waiters
    to the origin uncached (all of them, when a part comes late); every ms beyond it is delay.
    None: one part duration + 90 ms."""
    open_files: int = 65536
    """nginx worker_rlimit_nofile: each listener is a connection (and a few to the origins)."""
    live_max_size: str = "2g"
    api_max_size: str = "4g"
    # Varnish (command line only)
    storage: str = "malloc,1g"
    listeners: int = 2_000
    """Varnish: the most listeners one edge should serve at once (sizes its thread pools)."""
    command: str = "causerie edge-config"
    """The command line that produced the configuration, written in its header."""
    public_url: str | None = None
    """The address listeners use (https://live.example): its host is the only Host the origins
    are sent, whatever a client sent. None: the `listen` address."""

    def __post_init__(self) -> None:
        if not self.origins:
            raise ValueError("at least one origin")
        parse_listen(self.listen)
        if not 0.02 <= self.part_duration <= 10:
            raise ValueError("part_duration is in seconds, between 0.02 and 10")
        for name in ("media_lock_timeout_ms", "playlist_lock_timeout_ms"):
            value = getattr(self, name)
            if value is not None and not 1 <= value <= 60_000:
                raise ValueError(f"{name} must be 1..60000")
        if self.cache_dir is not None and not Path(self.cache_dir).is_absolute():
            raise ValueError("cache_dir must be an absolute path")
        if self.cache_dir and any(c in self.cache_dir for c in " \t\n\";{}#'"):
            raise ValueError("cache_dir must not contain spaces, quotes, braces or #")
        if self.workers != "auto" and not (self.workers.isdigit() and int(self.workers) > 0):
            raise ValueError("workers is 'auto' or a positive number")
        if self.user is not None and not self.user.replace("-", "").replace("_", "").isalnum():
            raise ValueError("bad user name")
        if self.open_files < 1024:
            raise ValueError("open_files must be at least 1024")
        if self.listeners < 1:
            raise ValueError("listeners must be at least 1")
        if self.public_url is not None:
            check_public_url(self.public_url)

    @property
    def public_host(self) -> str:
        """The Host header sent to the origins: the public URL's host[:port], else `listen`.

        One value, never the client's: a response cached for everyone must not depend on a
        header any client chooses (cache poisoning through Host).
        """
        if self.public_url is not None:
            return urlsplit(self.public_url).netloc
        host, port = parse_listen(self.listen)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def playlist_lock_timeout(self) -> int:
        """nginx's lock timeout for playlists, in ms (a multiple of 10)."""
        if self.playlist_lock_timeout_ms is not None:
            return self.playlist_lock_timeout_ms
        return round((self.part_duration + 0.09) * 100) * 10

    @property
    def playlist_ttl(self) -> str:
        """About half a part, as a Varnish duration (`0.107s`)."""
        return f"{round(self.part_duration / 2, 3):g}s"


def _template(name: str) -> str:
    return (files("causerie.edge") / "templates" / name).read_text(encoding="utf-8")


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    if "{{" in text:
        start = text.index("{{")
        raise ValueError(f"unfilled placeholder {text[start : text.index('}}', start) + 2]}")
    return text


def _ms(value: int) -> str:
    return f"{value}ms" if value % 1000 else f"{value // 1000}s"


def _nginx_headers(indent: str, host: str, authorization: str | None, cookie: str | None) -> str:
    lines = [
        f'proxy_set_header Host "{host}";',
        'proxy_set_header Connection "";',
        "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
        "proxy_set_header X-Forwarded-Proto $scheme;",
    ]
    # An empty value is not sent: the origin never sees these credentials.
    if authorization is not None:
        lines.append(f"proxy_set_header Authorization {authorization};")
    if cookie is not None:
        lines.append(f"proxy_set_header Cookie {cookie};")
    return "".join(f"{indent}{line}\n" for line in lines)


def render_nginx(options: EdgeOptions) -> str:
    """A complete nginx.conf for an edge in front of `options.origins`."""
    state = "" if options.cache_dir is None else options.cache_dir.rstrip("/") + "/"
    servers = "".join(
        f"        server {o.address} max_fails=3 fail_timeout=5s;\n" for o in options.origins
    )
    host, port = parse_listen(options.listen)
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    # The origin may hold a blocking request (or a preload-hinted part) for 6 s: while it does,
    # no second request for the same object is sent.
    lock_age = _ms(int(ORIGIN_BLOCK_TIMEOUT * 1000) + 1000)
    return _fill(
        _template("nginx.conf"),
        {
            "command": options.command,
            "origins": " ".join(o.url for o in options.origins),
            "prefix_hint": state or "DIR/",
            "user": f"user {options.user};\n" if options.user else "",
            "workers": options.workers,
            "open_files": str(options.open_files),
            "worker_connections": str(min(65536, max(1024, options.open_files // 2))),
            "state": state,
            "live_max_size": options.live_max_size,
            "api_max_size": options.api_max_size,
            "api_servers": servers,
            "media_servers": servers,
            "listen": listen,
            "media_lock_timeout": _ms(options.media_lock_timeout_ms),
            "playlist_lock_timeout": _ms(options.playlist_lock_timeout),
            "lock_age": lock_age,
            "public_headers": _nginx_headers(" " * 12, options.public_host, '""', '""'),
            "public_headers_nested": _nginx_headers(" " * 16, options.public_host, '""', '""'),
            "private_headers": _nginx_headers(" " * 12, options.public_host, None, None),
            "details_headers": _nginx_headers(
                " " * 12,
                options.public_host,
                "$causerie_write_authorization",
                "$causerie_write_cookie",
            ),
        },
    )


def render_varnish(options: EdgeOptions) -> str:
    """A VCL (4.1) for a Varnish edge in front of `options.origins`."""
    backends = []
    api_adds = []
    media_adds = []
    for n, origin in enumerate(options.origins):
        name = f"causerie_{n}"
        backends.append(
            f"backend {name} {{\n"
            f'    .host = "{origin.host}";\n'
            f'    .port = "{origin.port}";\n'
            f"    .probe = causerie_health;\n"
            f"    .connect_timeout = 1s;\n"
            f"    # Longer than the origin holds a blocking playlist request (6 s).\n"
            f"    .first_byte_timeout = 30s;\n"
            f"    .between_bytes_timeout = 10s;\n"
            f"}}\n"
        )
        api_adds.append(f"    causerie_api.add_backend({name});\n")
        media_adds.append(f"    causerie_media.add_backend({name});\n")
    workdir = options.cache_dir or "DIR"
    command = shlex.join(
        varnishd_command(
            Path("THIS_FILE"),
            options.listen,
            Path(workdir),
            storage=options.storage,
            listeners=options.listeners,
        )
    )
    return _fill(
        _template("varnish.vcl"),
        {
            "command": options.command,
            "origins": " ".join(o.url for o in options.origins),
            "varnishd": command,
            "playlist_ttl": options.playlist_ttl,
            "public_host": options.public_host,
            "backends": "\n".join(backends),
            "api_adds": "".join(api_adds),
            "media_adds": "".join(media_adds),
        },
    )


def render(kind: str, options: EdgeOptions) -> str:
    """The configuration of an edge of `kind` ("nginx" or "varnish")."""
    if kind == "nginx":
        return render_nginx(options)
    if kind == "varnish":
        return render_varnish(options)
    raise ValueError(f"kind is one of {', '.join(KINDS)}, not {kind!r}")


STREAMS_PER_LISTENER = 2
"""Responses a listener page has in progress at once through an edge: the LL-DASH segment being
made and the window of live events in progress, each streamed for seconds."""


def varnishd_command(
    vcl: Path,
    listen: str,
    workdir: Path,
    *,
    storage: str = "malloc,1g",
    listeners: int = 10_000,
    foreground: bool = False,
    jail_none: bool = False,
    extra: Sequence[str] = (),
) -> list[str]:
    """The varnishd command line for an edge serving up to `listeners` at once.

    Varnish holds a worker thread for every client it is sending a body to, and all the
    listeners of a space ask for a new part at the same moment: the pools together must have a
    thread for each of them, started in advance (creating threads during the burst is slow).
    A listener page streams two objects at once most of the time (the LL-DASH segment in
    progress and the window of live events in progress): two threads per listener, or the
    sessions beyond the pools queue and fall seconds behind (docs/edges.md, measured).
    `rush_exponent` is how many waiters each released waiter releases in turn: the largest
    value wakes a waiting list of thousands in two or three rounds instead of seven.
    """
    host, port = parse_listen(listen)
    pools = 2
    streams = STREAMS_PER_LISTENER * listeners
    per_pool = max(200, math.ceil(streams * 1.2 / pools) + 50)
    command = ["varnishd"]
    if foreground:
        command.append("-F")
    if jail_none:
        command += ["-j", "none"]
    command += [
        "-a",
        f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        "-f",
        str(vcl),
        "-n",
        str(workdir),
        "-s",
        storage,
        "-p",
        f"thread_pools={pools}",
        "-p",
        f"thread_pool_min={min(per_pool, max(100, per_pool // 2))}",
        "-p",
        f"thread_pool_max={per_pool}",
        "-p",
        "thread_pool_add_delay=0.000",
        "-p",
        f"thread_queue_limit={max(20, streams)}",
        "-p",
        "rush_exponent=32",
        "-p",
        "timeout_idle=30",
        *extra,
    ]
    return command


def nginx_command(conf: Path, prefix: Path, *, foreground: bool = False) -> list[str]:
    """The nginx command line for a configuration rendered with relative paths under `prefix`."""
    command = ["nginx", "-p", f"{prefix}/", "-c", str(conf), "-e", f"{prefix}/error.log"]
    if foreground:
        command += ["-g", "daemon off;"]
    return command
