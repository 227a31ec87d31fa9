"""Waiting rooms: a line per capped space (kept locally or in Redis) and its tickets."""

from .local import LocalLines
from .protocol import Lines
from .redis import RedisLines
from .room import WaitingRoom

__all__ = ["Lines", "LocalLines", "RedisLines", "WaitingRoom"]
