"""The pure core: every rule of causerie, with no I/O, no asyncio and the clock passed in."""

from .errors import Conflict, DomainError, Invalid, LimitReached, NotAllowed, NotFound
from .roles import ON_STAGE, PERMISSIONS, Action, Role, can, require
from .spaces import (
    SPACE_ID,
    Member,
    Space,
    SpaceLimits,
    SpaceState,
    SpeakRequest,
    check_space_id,
    clean_name,
    hand_order,
    new_space_id,
)
from .text import clean_text

__all__ = [
    "ON_STAGE",
    "PERMISSIONS",
    "SPACE_ID",
    "Action",
    "Conflict",
    "DomainError",
    "Invalid",
    "LimitReached",
    "Member",
    "NotAllowed",
    "NotFound",
    "Role",
    "Space",
    "SpaceLimits",
    "SpaceState",
    "SpeakRequest",
    "can",
    "check_space_id",
    "clean_name",
    "clean_text",
    "hand_order",
    "new_space_id",
    "require",
]
