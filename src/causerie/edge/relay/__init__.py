"""`causerie relay`: an event-driven caching relay for what every listener fetches alike.

LL-DASH manifests, init sections and segments (`/dash/…`), windows of live events (`/feed/…`)
and the clock (`/time`): each object is fetched from the origin once, however many listeners
ask, and every new piece of it is written to all its readers from one loop as it arrives
(docs/edges.md: why, and the measurements). It sits beside Varnish or nginx, which serve the
rest (pages, API, LL-HLS).
"""

from .process import RelayOptions, run
from .server import Limits

__all__ = ["Limits", "RelayOptions", "run"]
