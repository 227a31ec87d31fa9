"""The fast path of the two requests every listener makes: joins and heartbeats.

`join` and `heartbeat` (node/joins.py) are the use cases, shared by the FastAPI routes in
spaces.py (which document them in /openapi.json) and by `FastJoins`, a small raw ASGI app that
answers exactly `POST /api/spaces/{id}/join` and `POST /api/spaces/{id}/heartbeat` without the
framework's
routing, dependency injection and response machinery (several times cheaper per request; a
join storm is nothing but these). Everything else, including every odd form of these paths
(another method, a trailing slash, an id that is not an id), goes on to FastAPI, so the
answers stay the same. Both sit behind BodyLimit and Admission.
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError
from redis.exceptions import RedisError

from ..asgi import (
    Answer,
    ASGIApp,
    Receive,
    Scope,
    Send,
    error_answer,
    first_header,
    read_body,
    send_answer,
)
from ..domain import DomainError
from ..node.joins import heartbeat, join
from ..node.schemas import JoinRequest
from ..node.services import Services
from ..security.tokens import InvalidToken
from .auth import authenticate_header
from .errors import STATUS_FOR, STORE_RETRY_AFTER, describe_validation_errors, store_unavailable

FAST_PATH = re.compile(r"^/api/spaces/([A-Za-z0-9_-]{1,32})/(join|heartbeat)$")


# -- the fast path ----------------------------------------------------------------------------


def _is_json(content_type: bytes) -> bool:
    """As FastAPI decides whether a body is JSON: application/json or application/*+json."""
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or (
        media.startswith(b"application/") and media.endswith(b"+json")
    )


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


def _refused(exc: Exception) -> Answer:
    """The error answer for what a join or heartbeat raised, as api/errors.py maps it."""
    if isinstance(exc, DomainError):
        return error_answer(STATUS_FOR.get(type(exc), 400), exc.message)
    if isinstance(exc, InvalidToken):
        return error_answer(401, str(exc), [(b"www-authenticate", b"Bearer")])
    message = store_unavailable(exc)  # a Redis failover: 503, retry
    if message is None:
        raise exc
    return error_answer(503, message, [(b"retry-after", STORE_RETRY_AFTER.encode())])


async def answer_join(
    svc: Services, space_id: str, content_type: bytes | None, body: bytes
) -> Answer:
    """The whole answer to `POST /api/spaces/{space_id}/join` with `body`."""
    try:
        request = read_join_body(body, content_type)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        return error_answer(422, describe_validation_errors(list(errors)))
    except (ValueError, RecursionError):  # not JSON, or nested beyond what json reads
        return error_answer(400, "the body is not valid JSON")
    try:
        answer, headers = await join(svc, space_id, request)
    except (DomainError, InvalidToken, RedisError) as exc:
        return _refused(exc)
    content = answer.__pydantic_serializer__.to_json(answer)
    return (
        200,
        [
            (b"content-length", str(len(content)).encode()),
            (b"content-type", b"application/json"),
            *((k.lower().encode(), v.encode()) for k, v in headers.items()),
        ],
        content,
    )


async def answer_heartbeat(svc: Services, space_id: str, authorization: bytes | None) -> Answer:
    """The whole answer to `POST /api/spaces/{space_id}/heartbeat` (its Authorization)."""
    # Decoded as Starlette decodes header values.
    header = authorization.decode("latin-1") if authorization is not None else None
    try:
        await heartbeat(svc, space_id, await authenticate_header(header, svc, space_id))
    except (DomainError, InvalidToken, RedisError) as exc:
        return _refused(exc)
    return 204, [], b""


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
        if action == "join":
            content_type = first_header(scope["headers"], b"content-type")
            body = await read_body(receive)
            if body is None:
                return  # the client went away: nobody to join
            answer = await answer_join(self.svc, space_id, content_type, body)
        else:
            authorization = first_header(scope["headers"], b"authorization")
            answer = await answer_heartbeat(self.svc, space_id, authorization)
        await send_answer(send, answer)


__all__ = ["FAST_PATH", "FastJoins", "answer_heartbeat", "answer_join"]
