"""The demo space of `causerie demo`: two synthetic voices in conversation, live."""

from __future__ import annotations

import time
from datetime import datetime

from ..domain import Role, Space, SpaceState, new_space_id
from ..media.demo import DemoSpeaker, demo_voices, load_voice
from ..security.tokens import Claims, TokenKind
from ..store import update_space
from .services import Services

DEMO_HOST = "demo-host"
DEMO_GUEST = "demo-guest"
TITLE = "Causerie demo: how a million people listen in"
DESCRIPTION = (
    "Two synthetic voices talk about causerie. You hear them about a second behind live; "
    "any HLS player can play this space too."
)


async def _find_or_create(svc: Services) -> Space:
    for space in await svc.store.list_spaces([SpaceState.LIVE, SpaceState.SCHEDULED]):
        if space.host_id == DEMO_HOST:
            return space
    space = Space.create(
        space_id=new_space_id(),
        host_id=DEMO_HOST,
        host_name="Ada (host)",
        title=TITLE,
        description=DESCRIPTION,
        now=svc.now(),
    )
    await svc.store.create_space(space)
    return space


def _go_live(space: Space, now: datetime) -> None:
    if space.state is SpaceState.SCHEDULED:
        space.start(DEMO_HOST, now)
    if space.role_of(DEMO_GUEST) is Role.LISTENER:
        space.invite_speaker(DEMO_HOST, DEMO_GUEST, "Basile (guest)")
        space.accept_invitation(DEMO_GUEST)


async def open_demo_space(svc: Services) -> tuple[str, str]:
    """Put the demo space on the air with its two speakers; returns (space id, host token)."""
    space = await _find_or_create(svc)
    space, _ = await update_space(svc.store, space.id, lambda s: _go_live(s, svc.now()))
    svc.remember(space)
    pipeline = await svc.broadcasts.start(space.id)
    voices = demo_voices()
    for speaker_id, voice in ((DEMO_HOST, "host"), (DEMO_GUEST, "guest")):
        source = pipeline.mixer.add_input(speaker_id)
        speaker = DemoSpeaker(load_voice(voices[voice]), source.push)
        speaker.start()
        svc.broadcasts.attach(space.id, speaker.stop)
    token = svc.signer.issue(
        Claims(
            sub=DEMO_HOST,
            aud=space.id,
            kind=TokenKind.USER,
            exp=int(time.time()) + 7 * 86400,
            name="Ada (host)",
        )
    )
    return space.id, token
