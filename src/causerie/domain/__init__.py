"""The pure core: every rule of causerie, with no I/O, no asyncio and the clock passed in."""

from .errors import Conflict, DomainError, Invalid, LimitReached, NotAllowed, NotFound
from .roles import ON_STAGE, PERMISSIONS, Action, Role, can, require
from .spaces import Limits, Member, Space, SpaceState, SpeakRequest, clean_name
from .text import clean_text

__all__ = [
    "ON_STAGE",
    "PERMISSIONS",
    "Action",
    "Conflict",
    "DomainError",
    "Invalid",
    "LimitReached",
    "Limits",
    "Member",
    "NotAllowed",
    "NotFound",
    "Role",
    "Space",
    "SpaceState",
    "SpeakRequest",
    "can",
    "clean_name",
    "clean_text",
    "require",
]
