"""The rehearsal process: Locust in-process (library API), progress, report, exit code.

Run as `python -m causerie.rehearse` (what `causerie rehearse` executes): Locust monkey-patches the
standard library with gevent when it is imported, so it gets a process of its own, and nothing of
the server is imported here.
"""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import signal
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import gevent
import gevent.event
from locust import argument_parser
from locust.env import Environment
from locust.runners import MasterRunner, Runner

from . import figures as f
from .backoff import retry_after_seconds, retry_delay
from .listener import Listener
from .options import build_parser, check
from .report import html_report, progress_line, summary_json, text_summary

log = logging.getLogger("causerie.rehearse")

USAGE_ERROR = 2


class TargetError(Exception):
    """The target cannot be rehearsed against (unreachable, no such space, nothing live)."""


def _get_json(url: str, tries: int = 5) -> Any:
    """GET JSON from the target, politely retrying refusals; raise TargetError."""
    for attempt in range(tries):
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                return json.load(response)
        except urllib.error.HTTPError as exc:
            if exc.code not in (429, 502, 503, 504) or attempt + 1 == tries:
                raise TargetError(f"{url} answered HTTP {exc.code}") from None
            gevent.sleep(retry_delay(retry_after_seconds(exc.headers.get("Retry-After")), attempt))
        except (OSError, ValueError) as exc:
            raise TargetError(f"cannot reach {url}: {exc}") from None
    raise TargetError(f"{url} kept refusing")  # pragma: no cover - the loop returns or raises


def preflight(target: str, space: str | None) -> str | None:
    """Check the target before starting anyone: the space exists and is live (or one is)."""
    if space:
        data = _get_json(f"{target}/api/spaces/{space}")
        if data.get("state") != "live":
            raise TargetError(f"space {space} is {data.get('state')}, not live")
        return space
    data = _get_json(f"{target}/api/spaces")
    live = [s["id"] for s in data.get("spaces", []) if s.get("state") == "live"]
    if not live:
        raise TargetError(f"no live space at {target} (GET /api/spaces)")
    return None


def locust_options(args: argparse.Namespace) -> argparse.Namespace:
    """Locust's own options (its defaults, headless) plus ours, which a master hands to workers."""
    parser = argument_parser.get_empty_argument_parser(add_help=False, default_config_files=[])
    argument_parser.setup_parser_arguments(parser)
    options = parser.parse_args(args=[])
    options.headless = True
    options.host = args.target
    options.space = args.space
    options.actions_every = args.actions_every
    return options


def snapshot(runner: Runner, started: float) -> f.Snapshot:
    """Cumulative statistics now (on a master: as last reported by the workers)."""
    figures: dict[str, f.Histogram] = {}
    requests = 0
    for (name, method), entry in list(runner.stats.entries.items()):
        if method == f.FIGURE:
            figures[name] = f.Histogram(entry.num_requests, dict(entry.response_times))
        elif not name.endswith("(body)"):  # a body that broke off is an error, not a request
            requests += entry.num_requests
    errors: dict[str, int] = {}
    for error in list(runner.stats.errors.values()):
        kind = f.error_kind(error.error)
        errors[kind] = errors.get(kind, 0) + error.occurrences
    for problem in list(runner.exceptions.values()):  # bugs in a listener: never silent
        kind = "exception in a listener: " + problem["msg"].splitlines()[0][:80]
        errors[kind] = errors.get(kind, 0) + problem["count"]
    return f.Snapshot(
        at=time.monotonic() - started,
        users=runner.user_count,
        requests=requests,
        figures=figures,
        parts=figures[f.PART_RECEIVED].count if f.PART_RECEIVED in figures else 0,
        errors=errors,
    )


def requests_by_name(runner: Runner) -> list[tuple[str, int, int, float, float]]:
    rows = []
    for (name, method), entry in sorted(runner.stats.entries.items()):
        if method == f.FIGURE or not entry.num_requests:
            continue
        p50 = entry.get_response_time_percentile(0.5) / 1000
        p99 = entry.get_response_time_percentile(0.99) / 1000
        rows.append((name, entry.num_requests, entry.num_failures, p50, p99))
    return rows


def run_worker(args: argparse.Namespace) -> int:
    env = Environment(user_classes=[Listener], parsed_options=locust_options(args))
    runner = env.create_worker_runner(args.master_host, args.master_port)
    print(f"rehearsal worker: connected to {args.master_host}:{args.master_port}", file=sys.stderr)
    runner.greenlet.join()
    return 0


def wait_for_workers(runner: MasterRunner, expected: int, max_wait: float) -> bool:
    deadline = time.monotonic() + max_wait
    while len(runner.clients.ready) < expected:
        if time.monotonic() > deadline:
            return False
        gevent.sleep(0.5)
    return True


def rehearse(args: argparse.Namespace, command: str) -> int:
    try:
        if args.report:  # before the run, not after it: a report that cannot be written fails now
            args.report.mkdir(parents=True, exist_ok=True)
        preflight(args.target, args.space)
    except OSError as exc:
        print(
            f"causerie rehearse: cannot write the report in {args.report}: {exc}", file=sys.stderr
        )
        return USAGE_ERROR
    except TargetError as exc:
        print(f"causerie rehearse: {exc}", file=sys.stderr)
        return USAGE_ERROR
    env = Environment(
        user_classes=[Listener], host=args.target, parsed_options=locust_options(args)
    )
    runner: Runner
    if args.master:
        runner = env.create_master_runner(args.master_bind_host, args.master_port)
        print(
            f"rehearsal master: waiting for {args.expect_workers} worker(s) on port "
            f"{args.master_port}",
            file=sys.stderr,
        )
        if not wait_for_workers(runner, args.expect_workers, args.expect_workers_max_wait):
            print("causerie rehearse: the workers did not all come", file=sys.stderr)
            runner.quit()
            return 1
    else:
        runner = env.create_local_runner()
    step = 3.0 if args.master else 1.0  # workers report every 3 s
    started = time.monotonic()
    snapshots = [snapshot(runner, started)]
    spawn_rate = args.listeners / args.ramp if args.ramp > 0 else float(args.listeners)
    runner.start(args.listeners, spawn_rate=spawn_rate)

    def sample() -> None:
        last_progress = 0.0
        while True:
            gevent.sleep(1.0)
            snapshots.append(snapshot(runner, started))
            now = snapshots[-1].at
            if args.progress_every and now - last_progress >= args.progress_every - 1e-6:
                earlier = next(
                    (s for s in snapshots if s.at >= now - args.progress_every - 0.5),
                    snapshots[0],
                )
                print(_progress(snapshots[-1], earlier, args.listeners), file=sys.stderr)
                last_progress = now

    sampler = gevent.spawn(sample)
    interrupted = gevent.event.Event()

    def on_interrupt() -> None:  # Ctrl+C: stop early and still report; a second one kills
        print("interrupted: stopping the listeners (Ctrl+C again to quit at once)", file=sys.stderr)
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        interrupted.set()

    handler = gevent.signal_handler(signal.SIGINT, on_interrupt)
    interrupted.wait(max(0.0, args.duration - (time.monotonic() - started)))
    handler.cancel()
    sampler.kill()
    runner.stop()
    if args.master:
        gevent.sleep(3.5)  # the workers' last reports
    # The users stopped a moment ago: the end of the run still had them all.
    snapshots.append(replace(snapshot(runner, started), users=snapshots[-1].users))
    rows = requests_by_name(runner)
    runner.quit()

    # About a hundred points per chart, whatever the length of the run.
    windows = f.series(snapshots, max(step, round(snapshots[-1].at / 100)))
    summary = f.summarize(
        snapshots,
        target=args.target,
        space=args.space,
        listeners=args.listeners,
        ramp=args.ramp,
        duration=args.duration,
        step=step,
        requests_by_name=rows,
    )
    ok, verdict = f.judge(summary, args.max_errors, args.max_late)
    sys.stdout.write(text_summary(summary, verdict))
    if args.report:
        (args.report / "report.html").write_text(html_report(summary, windows, verdict, command))
        (args.report / "report.json").write_text(summary_json(summary, windows, verdict, ok))
        print(f"report: {args.report / 'report.html'}", file=sys.stderr)
    return 0 if ok else 1


def _progress(now: f.Snapshot, earlier: f.Snapshot, listeners: int) -> str:
    recent = f.window(earlier, now) if now.at > earlier.at else None
    refused = sum(n for kind, n in now.errors.items() if kind in f.REFUSAL_KINDS)
    return progress_line(
        now.at,
        now.users,
        listeners,
        recent,
        now.parts,
        now.figure(f.PART_LATE).count,
        sum(now.errors.values()) - refused,
        refused,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    words = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(words)
    check(parser, args)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.worker:
        return run_worker(args)
    return rehearse(args, shlex.join(["causerie", "rehearse", *words]))
