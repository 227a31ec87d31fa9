"""Raw ASGI helpers for the paths that bypass the framework (media, fast joins, guards,
forwarding to the owner).

The one way an error body is written, whether FastAPI or raw ASGI code answers:
`{"error": code, "message": text}` with the code named after the status, compact JSON as
Starlette's JSONResponse writes it, never cached by edges.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "not_allowed",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    412: "precondition_failed",
    413: "too_large",
    415: "unsupported_media_type",
    428: "precondition_required",
    422: "invalid",
    429: "too_many_requests",
    431: "too_large",
    501: "not_implemented",
    503: "unavailable",
    507: "insufficient_storage",
}


def error_body(status: int, message: str) -> dict[str, str]:
    """The JSON of an error answer."""
    return {"error": ERROR_CODES.get(status, "error"), "message": message}


def json_bytes(content: Any) -> bytes:
    """JSON exactly as Starlette's JSONResponse writes it."""
    return json.dumps(
        content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")
    ).encode("utf-8")


Header = tuple[bytes, bytes]
Answer = tuple[int, list[Header], bytes]
"""A whole response: status, header fields, body (for answers made before they are sent)."""


def error_answer(status: int, message: str, headers: Sequence[Header] = ()) -> Answer:
    """A JSON error response: `{"error": code, "message": text}`, never cached."""
    body = json_bytes(error_body(status, message))
    return (
        status,
        [
            (b"content-length", str(len(body)).encode()),
            (b"content-type", b"application/json"),
            (b"cache-control", b"no-store"),
            *headers,
        ],
        body,
    )


async def send_answer(send: Send, answer: Answer) -> None:
    """Send a whole response made beforehand."""
    status, headers, body = answer
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_error(send: Send, status: int, message: str, headers: Sequence[Header] = ()) -> None:
    """Send a complete JSON error response from raw ASGI code."""
    await send_answer(send, error_answer(status, message, headers))


def first_header(headers: Sequence[Header], name: bytes) -> bytes | None:
    """The value of the first header field called `name` (lower case), as Starlette reads it."""
    for field, value in headers:
        if field == name:
            return value
    return None


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body (already bounded by `admission.BodyLimit`); None if the client
    went away before sending all of it."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)
