"""Counting listeners honestly and cheaply."""

from .hyperloglog import HyperLogLog
from .presence import HEARTBEAT_INTERVAL, LocalPresence, Presence

__all__ = ["HEARTBEAT_INTERVAL", "HyperLogLog", "LocalPresence", "Presence"]
