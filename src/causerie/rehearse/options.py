"""The command line of `causerie rehearse` (argparse only: importing this loads no Locust)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from urllib.parse import urlsplit

SPACE_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # as the API checks it (api/spaces.py)


def target_url(text: str) -> str:
    """An http(s) base URL with a host, without a trailing slash."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an http:// or https:// URL with a host (e.g. http://127.0.0.1:8080)"
        )
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} has a bad port") from None
    if parts.query or parts.fragment:
        raise argparse.ArgumentTypeError(f"{text!r}: give the base URL, without ? or #")
    return text.rstrip("/")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not at least 1")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds >= 0")
    return value


def ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not between 0 and 1")
    return value


def space_id(text: str) -> str:
    if not SPACE_ID.match(text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a space id")
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The flags of `causerie rehearse`."""
    parser.add_argument(
        "--target",
        type=target_url,
        metavar="URL",
        help="the deployment to rehearse against: an edge or a node, e.g. http://127.0.0.1:8080 "
        "(required, except with --worker)",
    )
    parser.add_argument(
        "--listeners",
        type=positive_int,
        default=100,
        metavar="N",
        help="simulated listeners in all (over every worker) (default %(default)s)",
    )
    parser.add_argument(
        "--ramp",
        type=seconds,
        default=10.0,
        metavar="SECONDS",
        help="start the listeners evenly over this long (default %(default)s)",
    )
    parser.add_argument(
        "--duration",
        type=seconds,
        metavar="SECONDS",
        help="how long the whole rehearsal lasts, ramp included (default: the ramp + 60)",
    )
    parser.add_argument(
        "--space",
        type=space_id,
        metavar="ID",
        help="the space to listen to (default: a live space from GET /api/spaces)",
    )
    parser.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="write report.html (charts) and report.json here",
    )
    parser.add_argument(
        "--max-errors",
        type=ratio,
        default=0.01,
        metavar="RATIO",
        help="exit 1 if more than this share of requests failed (polite 503/429 refusals "
        "excepted) (default %(default)s)",
    )
    parser.add_argument(
        "--max-late",
        type=ratio,
        default=1.0,
        metavar="RATIO",
        help="exit 1 if more than this share of parts came late (default %(default)s: no limit)",
    )
    parser.add_argument(
        "--actions-every",
        type=seconds,
        default=30.0,
        metavar="SECONDS",
        help="each listener reacts, upvotes or asks about once this often, at random "
        "(0: never) (default %(default)s)",
    )
    parser.add_argument(
        "--progress-every",
        type=seconds,
        default=3.0,
        metavar="SECONDS",
        help="a progress line on stderr this often (default %(default)s)",
    )
    distributed = parser.add_argument_group(
        "distributed (Locust master and workers; see docs/rehearse.md)"
    )
    role = distributed.add_mutually_exclusive_group()
    role.add_argument(
        "--master",
        action="store_true",
        help="be the master: hand the listeners out to workers, gather their figures, report",
    )
    role.add_argument(
        "--worker", action="store_true", help="be a worker: run the listeners a master gives"
    )
    distributed.add_argument(
        "--expect-workers",
        type=positive_int,
        default=1,
        metavar="N",
        help="master: wait for N workers before starting (default %(default)s)",
    )
    distributed.add_argument(
        "--expect-workers-max-wait",
        type=seconds,
        default=60.0,
        metavar="SECONDS",
        help="master: give up if they are not all there after this long (default %(default)s)",
    )
    distributed.add_argument(
        "--master-host",
        default="127.0.0.1",
        metavar="HOST",
        help="worker: the master's address (default %(default)s)",
    )
    distributed.add_argument(
        "--master-bind-host",
        default="*",
        metavar="HOST",
        help="master: the address to listen on for workers (default all: %(default)s)",
    )
    distributed.add_argument(
        "--master-port",
        type=positive_int,
        default=5557,
        metavar="PORT",
        help="master: the port workers connect to (default %(default)s)",
    )


def build_parser(prog: str = "causerie rehearse") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(parser)
    return parser


DESCRIPTION = (
    "Rehearse the big night against a deployment: simulated listeners (Locust users) open the "
    "space's page, join (honouring 503/429 Retry-After and the waiting room), play as the "
    "page's dash.js does (the LL-DASH manifest, one streamed request per segment), follow the "
    "live events' feed windows, send heartbeats, react, ask and upvote. Prints progress to "
    "stderr and a summary to stdout (requests per listener per second included); --report DIR "
    "writes an HTML report with charts. Exit 1 if errors exceed --max-errors. See "
    "docs/rehearse.md."
)


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Checks across flags; a failure is a usage error (exit 2)."""
    if not args.worker and not args.target:
        parser.error("--target URL is required (except with --worker)")
    if args.duration is None:
        args.duration = args.ramp + 60.0
    if args.duration <= 0:
        parser.error("--duration must be more than 0 seconds")
    if args.ramp > args.duration:
        parser.error(f"--ramp {args.ramp:g} is longer than --duration {args.duration:g}")
