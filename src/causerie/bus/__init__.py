"""Live events: a protocol and its in-process implementation."""

from .local import LocalBus
from .protocol import Bus, Event

__all__ = ["Bus", "Event", "LocalBus"]
