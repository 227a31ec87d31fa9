"""The rehearsal listeners for plain `locust` (its web UI, its own distribution, its CSV files).

    LOCUSTFILE=$(.venv/bin/python -c 'import causerie.rehearse.locustfile as m; print(m.__file__)')
    locust -f "$LOCUSTFILE" --host http://edge:8080 --space ID -u 10000 -r 200 --master

The figures show in Locust's statistics as requests of the type `figure` (time to first audio,
join admitted, part late, part delay, wait in line, retry wait; the value in ms). See
docs/rehearse.md.
"""

from __future__ import annotations

from typing import Any

from locust import events

from causerie.rehearse.listener import Listener


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument(
        "--space", default=None, help="the space to listen to (default: a live one)"
    )
    parser.add_argument(
        "--actions-every",
        type=float,
        default=30.0,
        help="each listener reacts, upvotes or asks about once this often (0: never)",
    )


__all__ = ["Listener"]
