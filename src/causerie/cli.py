"""The `causerie` command: serve, demo, token, invite, revoke, rotate-secret, backup, restore,
edge-config, relay, rehearse."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import secrets
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import uvicorn

from .api.app import Node
from .api.http_timeouts import timed_http_protocol
from .api.join_lane import with_join_lane
from .app import create_app
from .cluster.redis_url import parse_redis_url
from .domain import DomainError, SiteRole
from .domain.accounts import DEFAULT_INVITE_HOURS, Invite, check_account_id, new_invite_code
from .node.config import Config
from .node.data_dir import RestoreUnderWay
from .node.factory import accounts_store
from .security.secrets import load_secrets, rotate_secrets
from .security.tokens import ANY_SPACE, Claims, TokenKind, TokenSigner

log = logging.getLogger("causerie")


def _redis_url(url: str) -> str:
    """`--redis`, checked when the command line is read (cluster/redis_url.py)."""
    try:
        parse_redis_url(url)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return url


def _server_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default %(default)s)"
    )
    parser.add_argument(
        "--port", type=int, default=8080, help="port to listen on (default %(default)s)"
    )
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path("data"),
        help="where the SQLite file, the secret and recordings live (default ./%(default)s)",
    )
    parser.add_argument(
        "--max-inflight",
        type=int,
        default=512,
        help="control-plane requests handled at once before answering 503 (default %(default)s)",
    )
    parser.add_argument(
        "--max-event-streams",
        type=int,
        default=20_000,
        metavar="N",
        help="live event streams (SSE) kept open at once; beyond, 503 (default %(default)s)",
    )
    parser.add_argument(
        "--max-lag",
        type=float,
        default=0.1,
        metavar="SECONDS",
        help="how late the event loop may run (on average, lately) before new control-plane "
        "requests get 503 (default %(default)s); keeps listeners' parts on time in a join storm",
    )
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument(
        "--rtc-host",
        action="append",
        metavar="ADDRESS",
        help="the only local address WebRTC offers to speakers (repeatable; default: every "
        "interface but loopback); e.g. 127.0.0.1 on a single machine",
    )
    parser.add_argument(
        "--ice-server",
        action="append",
        metavar="URL",
        help="a STUN/TURN server for WebRTC, e.g. stun:stun.example.net:3478 (repeatable; "
        "default: none)",
    )
    parser.add_argument(
        "--redis",
        metavar="URL",
        type=_redis_url,
        help="Redis shared by several nodes, e.g. redis://127.0.0.1:6379/0, or a primary "
        "watched by Sentinel, redis+sentinel://HOST:26379,HOST2:26379,HOST3:26379/SERVICE/0: "
        "spaces, questions, live events, listener counts and the signing secret (default: "
        "none, the embedded SQLite in the data directory, one node)",
    )
    parser.add_argument(
        "--advertise-url",
        metavar="URL",
        help="with --redis: the URL the other nodes reach this one at, to forward listeners' and "
        "speakers' requests for the spaces whose media runs here (default http://HOST:PORT)",
    )
    parser.add_argument(
        "--public-url",
        metavar="URL",
        help="the address listeners use, typically the edge's (https://live.example): absolute "
        "links the node writes, such as a calendar event's, start with it; never the request's "
        "Host header (default: --advertise-url, else http://HOST:PORT)",
    )
    parser.add_argument(
        "--clips-per-space-mb",
        type=int,
        default=64,
        metavar="MB",
        help="disk the clips of one space may take on this node; beyond, new clips get 507 "
        "(default %(default)s MiB)",
    )
    parser.add_argument(
        "--clips-total-mb",
        type=int,
        default=2048,
        metavar="MB",
        help="disk all clips may take on this node (default %(default)s MiB)",
    )
    parser.add_argument(
        "--min-free-disk-mb",
        type=int,
        default=1024,
        metavar="MB",
        help="free space kept for recordings: below it no clip or replay download is made "
        "(default %(default)s MiB)",
    )
    parser.add_argument(
        "--keep-recordings",
        type=float,
        default=30,
        metavar="DAYS",
        help="how long a recording is kept after its space ended; then it is removed and its "
        "replay answers 410 Gone (default %(default)s, as X does; 0: forever)",
    )
    parser.add_argument(
        "--recordings-max-gb",
        type=float,
        default=0,
        metavar="GB",
        help="disk all recordings may take on this node: beyond, those that ended first are "
        "removed, never a live one (default: 0, no bound but the disk's)",
    )
    parser.add_argument(
        "--end-idle-after",
        type=float,
        default=15,
        metavar="MINUTES",
        help="a live space with no speaker connected for this long ends by itself; its host is "
        "told a few minutes before (default %(default)s; 0: never)",
    )
    parser.add_argument(
        "--captions-model",
        default="tiny.en",
        metavar="NAME_OR_DIR",
        help="the speech model for live captions: a faster-whisper model name (tiny.en comes "
        "with the install; others must be in the local model cache: nothing is downloaded) or a "
        "directory holding one (default %(default)s)",
    )
    parser.add_argument(
        "--captions-max",
        type=int,
        default=2,
        metavar="N",
        help="live spaces this node captions at once, each taking about a quarter of a core "
        "with tiny.en (default %(default)s; 0: no captions)",
    )
    parser.add_argument(
        "--metrics-token",
        metavar="TOKEN",
        default=os.environ.get("CAUSERIE_METRICS_TOKEN") or None,
        help="a bearer token (16+ characters) that lets a scraper on another machine read "
        "/metrics; prefer the CAUSERIE_METRICS_TOKEN environment variable, which `ps` does not "
        "show (default: none, /metrics only for requests from this machine's loopback that no "
        "proxy relayed)",
    )
    parser.add_argument(
        "--trusted-proxy",
        action="append",
        metavar="ADDRESS",
        help="an edge or reverse proxy (IP address or CIDR network) whose X-Forwarded-For "
        "names the client, for the per-IP rate limits (repeatable; default: none, the peer's "
        "address counts); e.g. 127.0.0.1 for an edge on the same machine",
    )


def _bytes_of_gb(gigabytes: float, flag: str) -> int:
    if not 0 <= gigabytes < 2**20:
        raise ValueError(f"{flag} is a number of GiB, 0 or more, not {gigabytes}")
    return round(gigabytes * 2**30)


def _config(args: argparse.Namespace) -> Config:
    return Config(
        host=args.host,
        port=args.port,
        data_dir=args.data_dir,
        max_inflight=args.max_inflight,
        max_lag=args.max_lag,
        max_event_streams=args.max_event_streams,
        log_level=args.log_level,
        rtc_host_addresses=tuple(args.rtc_host) if args.rtc_host else None,
        rtc_ice_servers=tuple(args.ice_server or ()),
        redis_url=args.redis,
        advertise_url=args.advertise_url,
        public_url=args.public_url,
        metrics_token=args.metrics_token,
        clip_bytes_per_space=args.clips_per_space_mb * 2**20,
        clip_bytes_total=args.clips_total_mb * 2**20,
        min_free_disk_bytes=args.min_free_disk_mb * 2**20,
        keep_recordings_seconds=args.keep_recordings * 86400,
        recordings_max_bytes=_bytes_of_gb(args.recordings_max_gb, "--recordings-max-gb"),
        end_idle_after=args.end_idle_after * 60,
        captions_model=args.captions_model,
        captions_max=args.captions_max,
        trusted_proxies=tuple(args.trusted_proxy or ()),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="causerie",
        description="Live audio spaces for very large audiences: WebRTC in, Low-Latency HLS out.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run a node: the API, the pages and the LL-HLS origin",
        description="Run one causerie node: the JSON API, the listener pages and the LL-HLS "
        "origin, in one process. Embedded default: SQLite in the data directory.",
    )
    _server_flags(serve)

    demo = commands.add_parser(
        "demo",
        help="serve, with a live demo space whose two synthetic voices talk",
        description="Like 'serve', plus a live demo space in which two synthetic speakers hold "
        "a conversation. Prints the listener URL and the host URL.",
    )
    _server_flags(demo)

    token = commands.add_parser(
        "token",
        help="print an account token that can create and host spaces",
        description="Print a token for an account that may create spaces (and hosts the spaces it "
        "creates). Signed with the secret in the data directory.",
    )
    token.add_argument("--data-dir", type=Path, default=Path("data"), help="default ./%(default)s")
    token.add_argument("--name", default="Host", help="display name (default %(default)s)")
    token.add_argument("--user", help="account id to issue for (default: a new account)")
    token.add_argument(
        "--days", type=float, default=30, help="validity in days (default %(default)s)"
    )
    token.add_argument(
        "--redis",
        metavar="URL",
        type=_redis_url,
        help="sign with the secret the nodes share in this Redis (redis:// or redis+sentinel://)",
    )
    token.add_argument(
        "--operator",
        action="store_true",
        help="an operator's token: the /admin console, invites, and takedowns in any space "
        "(for the first operator; later ones may be invited from the console)",
    )
    _account_commands(commands)
    rotate = commands.add_parser(
        "rotate-secret",
        help="put a new token-signing secret first (restart the nodes to use it)",
        description="Put a new secret first in the data directory's secret file (or in the "
        "Redis the nodes share): new tokens are signed with it, tokens signed with the --keep "
        "newest older secrets stay valid. Nodes read their secrets when they start: restart "
        "them. Run it again with --keep 0 once the old tokens may go (see SECURITY.md).",
    )
    rotate.add_argument("--data-dir", type=Path, default=Path("data"), help="default ./%(default)s")
    rotate.add_argument(
        "--keep",
        type=int,
        default=1,
        help="older secrets still accepted (default %(default)s; 0 refuses every older token)",
    )
    rotate.add_argument(
        "--redis",
        metavar="URL",
        type=_redis_url,
        help="rotate the secret the nodes share here (redis:// or redis+sentinel://)",
    )
    _backup_commands(commands)
    _edge_config_command(commands)
    _relay_command(commands)
    _rehearse_command(commands)
    return parser


def _account_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    invite = commands.add_parser(
        "invite",
        help="print a single-use link that makes a host (or operator) account",
        description="Make an invite, as the console's 'Invite a host' does, and print its link: "
        "opened once before it expires, it makes an account and gives its token. The link is "
        "shown only now (only a hash of its code is kept).",
    )
    invite.add_argument("--data-dir", type=Path, default=Path("data"), help="default ./%(default)s")
    invite.add_argument("--redis", metavar="URL", type=_redis_url, help="the nodes' Redis")
    invite.add_argument("--role", choices=["host", "operator"], default="host")
    invite.add_argument(
        "--hours", type=float, default=DEFAULT_INVITE_HOURS, help="validity (default %(default)s)"
    )
    invite.add_argument("--note", default="", help="who it is for (shown in the console)")
    invite.add_argument(
        "--url",
        default="http://127.0.0.1:8080",
        help="where people reach the site (default %(default)s)",
    )
    revoke = commands.add_parser(
        "revoke",
        help="refuse every token of an account, on every node, for good",
        description="Revoke an account by its id (the `sub` of its tokens, the console's "
        "accounts list): every node refuses its tokens from the next request.",
    )
    revoke.add_argument("account", help="the account's id, e.g. u-AbCdEfGhIjKl")
    revoke.add_argument("--data-dir", type=Path, default=Path("data"), help="default ./%(default)s")
    revoke.add_argument("--redis", metavar="URL", type=_redis_url, help="the nodes' Redis")


async def _invite(args: argparse.Namespace) -> str:
    accounts = accounts_store(args.data_dir, args.redis)
    try:
        code = new_invite_code()
        made = Invite.create(
            code=code,
            role=SiteRole(args.role),
            created_by="cli",
            now=datetime.now(UTC),
            hours=args.hours,
            note=args.note,
        )
        await accounts.add_invite(made)
    finally:
        await accounts.close()
    return f"{args.url.rstrip('/')}/invite/{code}"


async def _revoke(args: argparse.Namespace) -> None:
    check_account_id(args.account)
    accounts = accounts_store(args.data_dir, args.redis)
    try:
        await accounts.revoke(args.account, datetime.now(UTC))
    finally:
        await accounts.close()


def _account_command(args: argparse.Namespace) -> int:
    try:
        if args.command == "invite":
            print(asyncio.run(_invite(args)))
        else:
            asyncio.run(_revoke(args))
            print(f"Account {args.account} revoked: every node refuses its tokens from now on.")
    except DomainError as exc:
        print(f"causerie {args.command}: {exc.message}", file=sys.stderr)
        return 2
    return 0


def _backup_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = commands.add_parser(
        "backup",
        help="copy a node's data directory (SQLite stores, secret) to one file, while it runs",
        description="Copy the embedded stores (spaces, questions, audience numbers: SQLite's "
        "online backup, consistent while the node writes) and the signing secret of a data "
        "directory to one new file (a .tar.gz, mode 0600: it holds the secret), with the "
        "recordings if asked. See docs/operations.md.",
    )
    backup.add_argument("--data-dir", type=Path, default=Path("data"), help="default ./%(default)s")
    backup.add_argument("--to", type=Path, required=True, metavar="FILE", help="a new file")
    backup.add_argument(
        "--with-recordings",
        action="store_true",
        help="also copy DATA/recordings (live ones as far as they are recorded)",
    )
    restore = commands.add_parser(
        "restore",
        help="put a backup back into a data directory (refused while a node runs on it)",
        description="Check a backup file whole (checksums, database integrity), then put its "
        "stores, secret and (if it has them) recordings into the data directory. Refused while "
        "a node runs on the directory (every node holds DATA/node.lock), unless --force.",
    )
    restore.add_argument(
        "--data-dir", type=Path, default=Path("data"), help="default ./%(default)s"
    )
    restore.add_argument(
        "--from", dest="source", type=Path, required=True, metavar="FILE", help="the backup"
    )
    restore.add_argument(
        "--force",
        action="store_true",
        help="restore even under a running node (each database in one transaction); restart "
        "the node right after, since what it holds in memory is not restored",
    )


def _backup(args: argparse.Namespace) -> int:
    from .node.backup import BackupError, backup, restore

    try:
        if args.command == "backup":
            done = backup(args.data_dir, args.to, with_recordings=args.with_recordings)
            print(
                f"Backed up {args.data_dir} to {done.path} ({done.bytes / 2**20:.1f} MiB): "
                f"{done.spaces} spaces, {done.questions} questions, {done.recordings} recordings."
            )
        else:
            done = restore(args.data_dir, args.source, force=args.force)
            print(
                f"Restored the backup of {done.created_at} into {done.path}: {done.spaces} "
                f"spaces, {done.questions} questions, {done.recordings} recordings."
                + (" Restart the node now." if args.force else "")
            )
    except BackupError as exc:
        print(f"causerie {args.command}: {exc}", file=sys.stderr)
        return 2
    return 0


def _rehearse_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from .rehearse.options import DESCRIPTION, add_arguments

    rehearse = commands.add_parser(
        "rehearse",
        help="load-rehearse a deployment with simulated listeners (Locust); report with charts",
        description=DESCRIPTION,
    )
    add_arguments(rehearse)


def _rehearse(argv: Sequence[str] | None) -> int:
    """Run the rehearsal in a fresh process: Locust monkey-patches the standard library with
    gevent when imported, which must happen before anything else (and never in a server)."""
    words = list(sys.argv[1:] if argv is None else argv)
    words = words[words.index("rehearse") + 1 :]
    command = [sys.executable, "-m", "causerie.rehearse", *words]
    if argv is not None:  # called as a function (tests): a child process, not an exec
        import subprocess

        return subprocess.call(command)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, command)


def _edge_config_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    edge = commands.add_parser(
        "edge-config",
        help="print the configuration of a caching edge (nginx or Varnish) for some origins",
        description="Print (or write) the configuration of a caching edge in front of causerie "
        "nodes: LL-HLS parts and blocking playlist reloads collapsed into one origin request "
        "each, space details served stale while the origins are down, writes and live events "
        "passed through. See docs/edges.md.",
    )
    edge.add_argument("--kind", required=True, choices=["nginx", "varnish"])
    edge.add_argument(
        "--listen", default="127.0.0.1:8081", help="address the edge listens on (%(default)s)"
    )
    edge.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="nginx: absolute directory for its cache, temp files, pid and log (default: "
        "relative paths, under `nginx -p DIR`); Varnish: its -n directory in the printed command",
    )
    edge.add_argument(
        "--listeners",
        type=int,
        default=2000,
        help="Varnish: listeners one edge serves at once, to size its threads (%(default)s)",
    )
    edge.add_argument(
        "--part-duration",
        type=float,
        default=0.21333,
        metavar="SECONDS",
        help="the origin's LL-HLS part duration: plain playlists are cached for half of it "
        "(Varnish), blocking reloads wait for it plus 90 ms in nginx's cache lock (%(default)s)",
    )
    edge.add_argument(
        "--public-url",
        metavar="URL",
        help="the address listeners use (https://live.example): the only Host sent to the "
        "origins, whatever clients send (default: the --listen address)",
    )
    edge.add_argument("--output", "-o", type=Path, metavar="FILE", help="write it here")
    edge.add_argument("origins", nargs="+", metavar="ORIGIN", help="http://host:port of a node")


def _edge_config(args: argparse.Namespace, argv: Sequence[str] | None) -> int:
    import shlex

    from .edge.config import EdgeOptions, Origin, render

    words = list(sys.argv[1:] if argv is None else argv)
    try:
        options = EdgeOptions(
            origins=tuple(Origin.parse(url) for url in args.origins),
            listen=args.listen,
            cache_dir=args.cache_dir,
            listeners=args.listeners,
            part_duration=args.part_duration,
            public_url=args.public_url,
            command=shlex.join(["causerie", *words]),
        )
        text = render(args.kind, options)
    except ValueError as exc:
        print(f"causerie edge-config: {exc}", file=sys.stderr)
        return 2
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


def _relay_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    relay = commands.add_parser(
        "relay",
        help="run an event-driven caching relay for LL-DASH and live events (beside an edge)",
        description="Serve /dash/, /feed/ and /time from one origin request per object, "
        "streaming each new chunk to every listener from one event loop per process. It serves "
        "nothing else (404): put it beside Varnish or nginx, which serve the rest. See "
        "docs/edges.md.",
    )
    relay.add_argument(
        "--listen", default="127.0.0.1:8082", help="address to listen on (%(default)s)"
    )
    relay.add_argument(
        "--workers",
        type=int,
        default=1,
        help="processes sharing the port (SO_REUSEPORT), one per core; each fetches every "
        "object once (%(default)s)",
    )
    relay.add_argument(
        "--memory",
        type=float,
        default=256,
        metavar="MiB",
        help="complete objects kept per process, least recently used out first (%(default)s)",
    )
    relay.add_argument(
        "--reader-buffer",
        type=int,
        default=256,
        metavar="KiB",
        help="bytes waiting for one listener before it is dropped as stalled (%(default)s)",
    )
    relay.add_argument(
        "--idle-timeout", type=float, default=30.0, help="keep-alive, s (%(default)s)"
    )
    relay.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        help="from a connection or a request's first byte to the end of its headers, s "
        "(%(default)s)",
    )
    relay.add_argument(
        "--send-timeout",
        type=float,
        default=10.0,
        help="a listener that takes nothing for this long is dropped, s (%(default)s)",
    )
    relay.add_argument(
        "--public-url",
        metavar="URL",
        help="the address listeners use: its host is the only Host sent to the origin "
        "(default: the --listen address)",
    )
    relay.add_argument(
        "--log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    relay.add_argument("origin", metavar="ORIGIN", help="http://host:port of a node or an edge")


def _relay(args: argparse.Namespace) -> int:
    from .edge.config import Origin
    from .edge.relay import Limits, RelayOptions, run

    try:
        if args.workers < 1 or args.memory <= 0 or args.reader_buffer <= 0:
            raise ValueError("--workers, --memory and --reader-buffer are positive")
        options = RelayOptions(
            origin=Origin.parse(args.origin),
            listen=args.listen,
            public_url=args.public_url,
            workers=args.workers,
            limits=Limits(
                memory=int(args.memory * 1024 * 1024),
                reader_buffer=args.reader_buffer * 1024,
                idle_timeout=args.idle_timeout,
                header_timeout=args.header_timeout,
                send_timeout=args.send_timeout,
            ),
        )
        options.public_host  # noqa: B018  (checks --listen)
    except ValueError as exc:
        print(f"causerie relay: {exc}", file=sys.stderr)
        return 2
    try:
        return run(options)
    except OSError as exc:
        print(f"causerie relay: {exc}", file=sys.stderr)
        return 1


def _rotate_secret(args: argparse.Namespace) -> int:
    if args.keep < 0:
        print("causerie rotate-secret: --keep must be 0 or more", file=sys.stderr)
        return 2
    accepted = rotate_secrets(args.data_dir, args.redis, keep=args.keep)
    shown = parse_redis_url(args.redis).shown if args.redis else ""
    where = f"Redis ({shown}) and {args.data_dir}" if args.redis else str(args.data_dir)
    print(
        f"New signing secret in {where}; {accepted - 1} older secret(s) still accepted. "
        "Restart the nodes to use it."
    )
    return 0


def issue_account_token(
    data_dir: Path,
    name: str,
    user: str | None,
    days: float,
    redis_url: str | None = None,
    *,
    operator: bool = False,
) -> str:
    """A signed account token, valid for every space (of every node sharing `redis_url`);
    with `operator`, the site's operator role too."""
    signer = TokenSigner(load_secrets(data_dir, redis_url))
    claims = Claims(
        sub=user or "u-" + secrets.token_urlsafe(9),
        aud=ANY_SPACE,
        kind=TokenKind.USER,
        exp=int(time.time() + days * 86400),
        name=name,
        role=SiteRole.OPERATOR if operator else SiteRole.HOST,
    )
    return signer.issue(claims)


def build_server(node: Node, config: Config) -> uvicorn.Server:
    """The uvicorn server that serves `node` for `causerie serve` and `demo` (and for the tests'
    in-process nodes, so that they test this server): its HTTP protocol, timeouts and proxies."""
    return uvicorn.Server(
        uvicorn.Config(
            node,
            host=config.host,
            port=config.port,
            log_level=config.log_level,
            access_log=False,
            lifespan="on",
            timeout_keep_alive=30,
            timeout_graceful_shutdown=5,
            proxy_headers=False,  # X-Forwarded-For: only from config.trusted_proxies (api/app.py)
            # Deadlines for reading a request's headers and body (slow clients, slowloris);
            # joins and heartbeats answered by the protocol itself (api/join_lane.py).
            http=with_join_lane(timed_http_protocol(), node.lane),
        )
    )


async def _serve(config: Config) -> None:
    node = create_app(config)
    await build_server(node, config).serve()


async def _demo(config: Config) -> None:
    from .node.demo import open_demo_space

    node = create_app(config)
    server = build_server(node, config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
            return
        await asyncio.sleep(0.05)
    space_id, host_token = await open_demo_space(node.services)
    base = config.local_url
    print(
        f"\ncauserie demo is live.\n"
        f"  listen:   {base}/s/{space_id}\n"
        f"  studio:   {base}/studio/{space_id}#host={host_token}\n"
        f"  playlist: {base}/hls/{space_id}/main.m3u8  (ffplay, VLC, Safari)\n"
        f"Press Ctrl+C to stop.\n",
        flush=True,
    )
    await task


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(args, "log_level", "info").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.command == "token":
        print(
            issue_account_token(
                args.data_dir,
                args.name,
                args.user,
                args.days,
                args.redis,
                operator=args.operator,
            )
        )
        return 0
    if args.command == "rotate-secret":
        return _rotate_secret(args)
    if args.command in ("invite", "revoke"):
        return _account_command(args)
    if args.command in ("backup", "restore"):
        return _backup(args)
    if args.command == "edge-config":
        return _edge_config(args, argv)
    if args.command == "relay":
        return _relay(args)
    if args.command == "rehearse":
        return _rehearse(argv)  # the flags are checked together there
    try:
        config = _config(args)
    except ValueError as exc:
        print(f"causerie: {exc}", file=sys.stderr)
        return 2
    runner = _serve if args.command == "serve" else _demo
    # uvloop (installed with uvicorn[standard]) makes each request cheaper; asyncio.run alone
    # would not use it, since the loop is made here and not by uvicorn.
    try:
        with (
            contextlib.suppress(KeyboardInterrupt),
            asyncio.Runner(loop_factory=_loop_factory()) as runner_loop,
        ):
            runner_loop.run(runner(config))
    except RestoreUnderWay as exc:
        print(f"causerie: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
