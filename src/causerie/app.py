"""The ASGI application for one node, built from its configuration: the composition root.

`node.factory` builds the parts (local or Redis), `node.lifecycle` runs what goes on beside the
requests, and `api.app.Node` answers HTTP with them. `causerie serve` and the tests build a node
here and nowhere else.
"""

from __future__ import annotations

from .api.app import Node
from .node.config import Config
from .node.factory import build_services
from .node.lifecycle import Lifecycle


def create_app(config: Config) -> Node:
    """The ASGI application for one node, built from its configuration."""
    svc, shared = build_services(config)
    return Node(svc, Lifecycle(svc, shared))
