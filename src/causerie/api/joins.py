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
from starlette.requests import Request

from ..asgi import ASGIApp, Receive, Scope, Send, read_body, send_error
from ..domain import DomainError
from ..node.joins import heartbeat, join
from ..node.schemas import JoinRequest
from ..node.services import Services
from ..security.tokens import InvalidToken
from .auth import authenticate
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
                await heartbeat(
                    self.svc, space_id, await authenticate(Request(scope), self.svc, space_id)
                )
                await send({"type": "http.response.start", "status": 204, "headers": []})
                await send({"type": "http.response.body", "body": b""})
        except DomainError as exc:
            await send_error(send, STATUS_FOR.get(type(exc), 400), exc.message)
        except InvalidToken as exc:
            await send_error(send, 401, str(exc), [(b"www-authenticate", b"Bearer")])
        except RedisError as exc:  # as api/errors.py answers it (a failover: 503, retry)
            message = store_unavailable(exc)
            if message is None:
                raise
            await send_error(send, 503, message, [(b"retry-after", STORE_RETRY_AFTER.encode())])

    async def _join(self, space_id: str, scope: Scope, receive: Receive, send: Send) -> None:
        content_type = None
        for name, value in scope["headers"]:
            if name == b"content-type":
                content_type = value
                break  # the first, as Starlette reads it
        body = await read_body(receive)
        try:
            request = read_join_body(body, content_type)
        except ValidationError as exc:
            errors = exc.errors(include_url=False)
            await send_error(send, 422, describe_validation_errors(list(errors)))
            return
        except (ValueError, RecursionError):  # not JSON, or nested beyond what json reads
            await send_error(send, 400, "the body is not valid JSON")
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


__all__ = ["FastJoins"]
