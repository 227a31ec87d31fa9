"""Joining and heartbeats: the two requests every listener makes (the use cases).

Both are answered without a write per listener: a join signs a token (counted in sketches,
never stored), a heartbeat marks the listener in the presence sketch. The HTTP adapters are
api/joins.py (the fast raw-ASGI path a storm takes) and api/spaces.py (the documented routes).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from ..domain import Conflict, SpaceState, check_space_id
from ..domain.spaces import NAME_MAX
from ..domain.text import clean_text
from ..security.tokens import Claims, TokenKind
from .schemas import Joined, JoinRequest, Waiting, WaitingPlace
from .services import Services
from .views import playlist_url

LISTENER_NAME_MAX = NAME_MAX
"""The longest display name a listener may give (longer names are cut)."""


async def join(
    svc: Services, space_id: str, body: JoinRequest | None
) -> tuple[Joined | Waiting, dict[str, str]]:
    """A listener token for the space (signed statelessly, nothing stored), or, if the space
    is full, a place in its line; with the response headers to send."""
    check_space_id(space_id)
    space = await svc.cached_space(space_id)
    now = svc.clock()
    await svc.stats.join_attempted(space_id, now)
    if space.state is SpaceState.ENDED:
        raise Conflict("the space has ended")
    if space.capacity is not None:
        ticket = body.ticket if body else None
        entered = await svc.waiting_room.enter(space_id, space.capacity, ticket, now)
        if entered is not None:
            signed, place = entered
            svc.metrics.inc("causerie_join_waits_total")
            waiting = WaitingPlace(
                ticket=signed,
                position=place.position,
                estimated_wait_seconds=place.estimated_wait,
                retry_after=place.retry_after,
            )
            return Waiting(waiting=waiting), {"Retry-After": str(place.retry_after)}
    elif body is not None and body.ticket is not None:
        # The cap was lifted while this person waited: the ticket must still be genuine.
        svc.waiting_room.tickets.verify(body.ticket, space_id=space_id, now=now)
    listener_id = "l-" + secrets.token_urlsafe(9)
    expires = int(now) + svc.config.listener_token_ttl
    token = svc.signer.issue(
        Claims(
            sub=listener_id,
            aud=space_id,
            kind=TokenKind.LISTENER,
            exp=expires,
            name=listener_name(body.name if body else None),
        )
    )
    await svc.presence.seen(space_id, listener_id, now)
    await svc.stats.joined(space_id, listener_id, now)
    svc.metrics.inc("causerie_joins_total")
    # Built from values made here: no need to validate them again (a few µs per join).
    joined = Joined.model_construct(
        token=token,
        listener_id=listener_id,
        playlist_url=playlist_url(space_id),
        heartbeat_interval=svc.config.heartbeat_interval,
        expires_at=datetime.fromtimestamp(expires, UTC),
    )
    return joined, {}


def listener_name(name: str | None) -> str:
    """The display name a listener gave (cut to `LISTENER_NAME_MAX` characters), cleaned like
    every other text: one that cannot be stored or shown (a lone surrogate, say) is refused
    before a token is made, rather than carried in it to fail later."""
    if not name:
        return ""
    return clean_text(
        name[:LISTENER_NAME_MAX], field="name", max_length=LISTENER_NAME_MAX, required=False
    )


async def heartbeat(svc: Services, space_id: str, claims: Claims) -> None:
    """Record that the bearer of `claims` (a token for the space) is still listening."""
    space = await svc.cached_space(space_id)
    if space.state is SpaceState.ENDED:
        raise Conflict("the space has ended")
    now = svc.clock()
    await svc.presence.seen(space_id, claims.sub, now)
    await svc.stats.heartbeat(space_id, claims.sub, now)
    svc.metrics.inc("causerie_heartbeats_total")
