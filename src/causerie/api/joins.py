"""Joining and heartbeats: the two requests every listener makes, and their fast path.

`join` and `heartbeat` are the logic, shared by the FastAPI routes in spaces.py (which
document them in /openapi.json) and by `FastJoins`, a small raw ASGI app that answers exactly
`POST /api/spaces/{id}/join` and `POST /api/spaces/{id}/heartbeat` without the framework's
routing, dependency injection and response machinery (several times cheaper per request; a
join storm is nothing but these). Everything else, including every odd form of these paths
(another method, a trailing slash, an id that is not an id), goes on to FastAPI, so the
answers stay the same. Both sit behind BodyLimit and Admission.
"""

from __future__ import annotations

import json
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request

from ..domain import Conflict, DomainError, NotFound, SpaceState
from ..domain.text import clean_text
from ..tokens import Claims, InvalidToken, TokenKind
from .auth import authenticate
from .errors import STATUS_FOR, describe_validation_errors, error_body
from .limits import ASGIApp, Receive, Scope, Send
from .schemas import Joined, JoinRequest, Waiting, WaitingPlace
from .services import Services

SPACE_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
FAST_PATH = re.compile(r"^/api/spaces/([A-Za-z0-9_-]{1,32})/(join|heartbeat)$")


def check_space_id(space_id: str) -> None:
    if not SPACE_ID.match(space_id):
        raise NotFound("no such space")


def playlist_url(space_id: str) -> str:
    return f"/hls/{space_id}/index.m3u8"


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
        assert svc.waiting_room is not None
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
        assert svc.waiting_room is not None
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
    """The display name a listener gave (cut to 60 characters), cleaned like every other text:
    one that cannot be stored or shown (a lone surrogate, say) is refused before a token is
    made, rather than carried in it to fail later."""
    if not name:
        return ""
    return clean_text(name[:60], field="name", max_length=60, required=False)


async def heartbeat(svc: Services, space_id: str, request: Request) -> None:
    """Record that the bearer of the request's listener token is still listening."""
    check_space_id(space_id)
    claims = authenticate(request, svc, space_id)
    space = await svc.cached_space(space_id)
    if space.state is SpaceState.ENDED:
        raise Conflict("the space has ended")
    now = svc.clock()
    await svc.presence.seen(space_id, claims.sub, now)
    await svc.stats.heartbeat(space_id, claims.sub, now)
    svc.metrics.inc("causerie_heartbeats_total")


# -- the fast path ----------------------------------------------------------------------------


def _is_json(content_type: bytes) -> bool:
    """As FastAPI decides whether a body is JSON: application/json or application/*+json."""
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


def _json_bytes(content: Any) -> bytes:
    """Exactly what Starlette's JSONResponse sends."""
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


def read_join_body(body: bytes, content_type: bytes | None) -> JoinRequest | None:
    """The join's optional body as FastAPI reads it; ValueError for JSON that does not parse,
    ValidationError for a body of the wrong shape."""
    if not body:
        return None
    value: Any = body
    if content_type is not None and _is_json(content_type):
        value = json.loads(body)  # a ValueError when it is not JSON
    if value is None:
        return None
    return JoinRequest.model_validate(value, from_attributes=True)


class FastJoins:
    """Answer joins and heartbeats directly; pass every other request on to `app`."""

    def __init__(self, app: ASGIApp, svc: Services) -> None:
        self.app = app
        self.svc = svc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        match = None
        if scope["type"] == "http" and scope["method"] == "POST":
            match = FAST_PATH.match(scope["path"])
        if match is None:
            await self.app(scope, receive, send)
            return
        space_id, action = match.groups()
        try:
            if action == "join":
                await self._join(space_id, scope, receive, send)
            else:
                await heartbeat(self.svc, space_id, Request(scope))
                await send({"type": "http.response.start", "status": 204, "headers": []})
                await send({"type": "http.response.body", "body": b""})
        except DomainError as exc:
            await _send_error(send, STATUS_FOR.get(type(exc), 400), exc.message)
        except InvalidToken as exc:
            await _send_error(send, 401, str(exc), [(b"www-authenticate", b"Bearer")])

    async def _join(self, space_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
                break  # the first, as Starlette reads it
        body = await _read_body(receive)
        try:
            request = read_join_body(body, content_type)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            await _send_error(send, 422, describe_validation_errors(list(errors)))
            return
        except ValueError:
            await _send_error(send, 400, "the body is not valid JSON")
            return
        answer, headers = await join(self.svc, space_id, request)
        content = answer.__pydantic_serializer__.to_json(answer)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(content)).encode()),
                    (b"content-type", b"application/json"),
                    *((k.lower().encode(), v.encode()) for k, v in headers.items()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": content})


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def _send_error(
    send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] = ()
) -> None:
    """The same bytes and headers as `errors.error_response`."""
    content = _json_bytes(error_body(status, message))
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-length", str(len(content)).encode()),
                (b"content-type", b"application/json"),
                (b"cache-control", b"no-store"),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": content})


__all__ = ["FastJoins", "check_space_id", "heartbeat", "join", "playlist_url"]
