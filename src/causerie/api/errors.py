"""Every error leaves the API as JSON with a code and a message for people, mapped here once."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..asgi import error_body
from ..cluster.replication import refused_for_now
from ..domain import Conflict, DomainError, Invalid, LimitReached, NotAllowed, NotFound
from ..ratelimit import TooManyRequests
from ..security.tokens import InvalidToken

STATUS_FOR: dict[type[DomainError], int] = {
    NotFound: 404,
    NotAllowed: 403,
    Conflict: 409,
    LimitReached: 429,
    Invalid: 422,
}


STORE_RETRY_AFTER = "2"
"""Seconds a client is asked to wait when Redis cannot take a request (a failover: ~2.5 s)."""


def store_unavailable(exc: BaseException) -> str | None:
    """Why a Redis error means "retry shortly" (503), or None if it is a bug (500).

    Unreachable (restarting, or no primary during a Sentinel failover): nothing was done. A
    write Redis refused for now, or that no replica acknowledged in time (cluster/
    replication.py): it was not acknowledged, and retrying is safe.
    """
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return "the shared store is unavailable; please retry"
    if refused_for_now(exc):
        return "the shared store cannot keep this change safely right now; please retry"
    return None


class ApiError(Exception):
    """An HTTP error raised by the API layer itself."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """The JSON error every endpoint returns; errors are never cached by edges."""
    return JSONResponse(
        error_body(status, message),
        status_code=status,
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def describe_validation_errors(errors: Sequence[Mapping[str, Any]]) -> str:
    """Turn pydantic's error list into one readable sentence."""
    parts = []
    for error in errors[:5]:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body")
        message = str(error.get("msg", "is invalid"))
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts) or "the request is invalid"


def install_error_handlers(app: FastAPI) -> None:
    """Map domain, token, validation and HTTP errors to JSON responses."""

    @app.exception_handler(DomainError)
    async def _domain(_: Request, exc: DomainError) -> JSONResponse:
        return error_response(STATUS_FOR.get(type(exc), 400), exc.message)

    @app.exception_handler(InvalidToken)
    async def _token(_: Request, exc: InvalidToken) -> JSONResponse:
        return error_response(401, str(exc), {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(TooManyRequests)
    async def _rate(_: Request, exc: TooManyRequests) -> JSONResponse:
        return error_response(429, exc.message, {"Retry-After": exc.retry_after})

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.headers)

    @app.exception_handler(RedisError)
    async def _store_down(_: Request, exc: Exception) -> JSONResponse:
        message = store_unavailable(exc)
        if message is None:
            raise exc  # a bug: the server's 500
        return error_response(503, message, {"Retry-After": STORE_RETRY_AFTER})

    @app.exception_handler(RecursionError)
    async def _too_deep(_: Request, exc: RecursionError) -> JSONResponse:
        # JSON nested thousands deep: the parser gives up; the body is refused, not a 500.
        return error_response(400, "the body is nested too deeply")

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        # A body that is not JSON at all is a bad request, not a semantic error.
        if any(e.get("type") == "json_invalid" for e in errors):
            return error_response(400, "the body is not valid JSON")
        return error_response(422, describe_validation_errors(errors))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        message = exc.detail if isinstance(exc.detail, str) else "request failed"
        if exc.status_code == 404 and message == "Not Found":
            message = "there is nothing at this address"
        if exc.status_code == 400 and message == "There was an error parsing the body":
            message = "the body is not valid JSON"  # e.g. nested too deep: as the fast path says
        return error_response(exc.status_code, message, dict(exc.headers or {}))
