"""The join lane: joins and heartbeats answered inside the HTTP protocol, without ASGI.

A join storm is nothing but `POST /api/spaces/{id}/join` and `…/heartbeat`. Through ASGI each
costs a request-response cycle, a task, an event, the scope, five middlewares and their
messages: measured (bench/README.md, `joins`), that machinery cost more than the join itself,
and even an app that does nothing got only 0.26–0.4× of nginx per core. So the node's HTTP
protocol (uvicorn's httptools protocol with the read deadlines of http_timeouts.py) answers
these two itself, in the parser's callbacks, running the same use case (`answer_join`,
`answer_heartbeat` of joins.py, which FastJoins runs for ASGI) eagerly (eager.py): a task is
made only if the use case has to wait (a store read, Redis).

It takes a request only when the request target is exactly one of these two paths (no query,
no percent-encoding), with POST, no upgrade, no other request of the connection in progress,
its output not backed up (a client that does not read its answers gets uvicorn's
back-pressure), and no root path or concurrency limit configured. Everything else goes the
ASGI way, unchanged.

The answers are the ASGI path's, byte for byte (tests/api/test_join_lane.py), because the
same guards run in the same order (app.Node): header limits (431), the body limit
(`BodyLimit`: a bad or too large Content-Length, or a body read up to its limit when it has
none), admission control (503 + Retry-After, counted, in flight), then the use case; CORS
fields as `PublicCors` adds them; and the response head as uvicorn writes it (its Date and
Server fields, `connection: close` when the connection ends there, `100 Continue` when the
body is first read, a 500 if the use case raises something unexpected). Nothing here reads
the client's address: joins and heartbeats have no per-address limit, so the trusted-proxy
rewrite (`X-Forwarded-For`) changes nothing they answer.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Coroutine
from typing import Any

from ..asgi import Answer, error_answer, first_header
from ..eager import start
from ..node.services import Services
from .admission import Admission, body_too_large, declared_length, header_fields_error
from .cors import ALLOW_ANY_ORIGIN, EXPOSE
from .joins import answer_heartbeat, answer_join

try:
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE
except ImportError:  # no httptools: no lane (uvicorn falls back to h11 and ASGI)
    STATUS_LINE = {}

TARGET = re.compile(rb"^/api/spaces/([A-Za-z0-9_-]{1,32})/(join|heartbeat)$")
"""The request targets the lane takes (joins.FAST_PATH, before any decoding)."""

_CORS = b"".join(name + b": " + value + b"\r\n" for name, value in (ALLOW_ANY_ORIGIN, EXPOSE))
_SERVER_ERROR: Answer = (
    500,
    [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", b"21")],
    b"Internal Server Error",
)  # uvicorn's own, when an application raises (then the connection is closed)


_written: tuple[list[tuple[bytes, bytes]], bytes] = ([], b"")


def _fields(default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """uvicorn's Date and Server fields as written (the list is made anew every second)."""
    global _written
    if _written[0] is not default_headers:
        text = b"".join(name + b": " + value + b"\r\n" for name, value in default_headers)
        _written = (default_headers, text)
    return _written[1]


class JoinLane:
    """What the lane needs of the node: its services, admission control and body limit."""

    def __init__(self, svc: Services, admission: Admission, max_body_bytes: int) -> None:
        self.svc = svc
        self.admission = admission
        self.max_body_bytes = max_body_bytes


class _NoEvent:
    def set(self) -> None:
        """uvicorn wakes a cycle's reader when the connection is lost: nobody reads here."""


class Exchange:
    """One request the lane took, from its headers to its answer. While it is the
    connection's current request it stands in for uvicorn's RequestResponseCycle: uvicorn's
    protocol reads `response_complete`, sets `disconnected` and `keep_alive` (shutdown), and
    queues pipelined requests behind it until it is answered."""

    __slots__ = (
        "admitted",
        "body",
        "body_read",
        "declared",
        "disconnected",
        "http_version",
        "is_join",
        "keep_alive",
        "path",
        "response_complete",
        "running",
        "size",
        "space_id",
    )
    message_event = _NoEvent()

    def __init__(self, space_id: str, path: str, keep_alive: bool, http_version: str) -> None:
        self.space_id = space_id
        self.path = path
        self.is_join = path.endswith("/join")
        self.keep_alive = keep_alive
        self.http_version = http_version
        self.response_complete = False
        self.disconnected = False
        self.declared: int | None = None  # the Content-Length, if any
        self.body: list[bytes] = []
        self.size = 0
        self.body_read = False  # the whole body is here
        self.admitted = False  # counted in flight by admission control
        self.running = False  # the use case was started


def with_join_lane(
    base: type[asyncio.Protocol] | str, lane: JoinLane
) -> type[asyncio.Protocol] | str:
    """`base` (the node's httptools protocol, http_timeouts.py) with the lane; `base` itself
    when it is not that (httptools missing: "auto")."""
    if isinstance(base, str) or not hasattr(base, "_keep_alive"):
        return base  # not the protocol of http_timeouts.py (httptools missing)
    svc, admission, max_body = lane.svc, lane.admission, lane.max_body_bytes

    class JoinLaneProtocol(base):  # type: ignore[valid-type,misc]
        """The node's HTTP protocol, answering joins and heartbeats itself."""

        _exchange: Exchange | None = None  # the lane's request whose body is being read
        expect_100_continue: bool  # uvicorn's: the request asked for `100 Continue`

        def on_headers_complete(self) -> None:
            exchange = self._take()
            if exchange is None:
                super().on_headers_complete()
                return
            self._headers_ended()  # the deadline for the body (http_timeouts.py)
            self.cycle = exchange
            # Node: header limits, before anything else (and before CORS).
            too_large = header_fields_error(self.headers)
            if too_large is not None:
                self._answer(exchange, error_answer(431, too_large), cors=False)
                return
            # BodyLimit: the declared length, else the whole body read first.
            refused, exchange.declared = declared_length(self.headers, max_body)
            if refused is not None:
                self._answer(exchange, refused)
                return
            self._exchange = exchange
            if exchange.declared is None:
                self._continue()
            else:
                self._admit(exchange)

        def _take(self) -> Exchange | None:
            """The request as an exchange of the lane's, or None when it goes the ASGI way."""
            match = TARGET.match(self.url)
            if (
                match is None
                or self.parser.get_method() != b"POST"
                or self.parser.should_upgrade()
                or not (self.cycle is None or self.cycle.response_complete)
                or self.flow.write_paused
                or self.root_path
                or self.limit_concurrency is not None
            ):
                return None
            version = self.parser.get_http_version()
            keep_alive = version != "1.0" and self.parser.should_keep_alive()  # as uvicorn
            return Exchange(match[1].decode(), self.url.decode(), keep_alive, version)

        def on_body(self, body: bytes) -> None:
            exchange = self._exchange
            if exchange is None:
                super().on_body(body)
                return
            if exchange.response_complete:
                return  # answered before its body came (a refusal, a heartbeat): thrown away
            exchange.size += len(body)
            if exchange.declared is None and exchange.size > max_body:
                self._answer(exchange, body_too_large(max_body))
                return
            exchange.body.append(body)

        def on_message_complete(self) -> None:
            exchange = self._exchange
            if exchange is None:
                super().on_message_complete()
                return
            self._exchange = None
            self._message_ended()
            exchange.body_read = True
            if exchange.response_complete:
                return
            if not exchange.admitted:
                self._admit(exchange)  # BodyLimit has read it all: admission next
            elif exchange.is_join:
                self._run(exchange)  # admitted, waiting for its body

        def _admit(self, exchange: Exchange) -> None:
            """Admission control, then the use case (a join needs its whole body first)."""
            refused = admission.refusal("POST", exchange.path)
            if refused is not None:
                self._answer(exchange, refused)
                return
            admission.in_flight += 1
            exchange.admitted = True
            if exchange.is_join and not exchange.body_read:
                self._continue()  # FastJoins reads the body: uvicorn says 100 Continue
                return
            self._run(exchange)

        def _continue(self) -> None:
            """What uvicorn does when the application first asks for the body."""
            if self.expect_100_continue and not self.transport.is_closing():
                self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.expect_100_continue = False

        def _run(self, exchange: Exchange) -> None:
            exchange.running = True
            use_case: Coroutine[Any, Any, Answer]
            if exchange.is_join:
                content_type = first_header(self.headers, b"content-type")
                body = b"".join(exchange.body)
                use_case = answer_join(svc, exchange.space_id, content_type, body)
            else:
                authorization = first_header(self.headers, b"authorization")
                use_case = answer_heartbeat(svc, exchange.space_id, authorization)
            try:
                outcome = start(use_case)
            except Exception as exc:
                admission.in_flight -= 1
                self._failed(exchange, exc)
                return
            if isinstance(outcome, asyncio.Task):
                # It waits (a store read, Redis): pipelined requests queue behind it, and the
                # server waits for it on shutdown as for any request.
                outcome.add_done_callback(lambda task: self._ran(exchange, task))
                outcome.add_done_callback(self.tasks.discard)
                self.tasks.add(outcome)
                return
            admission.in_flight -= 1
            self._answer(exchange, outcome)

        def _ran(self, exchange: Exchange, task: asyncio.Task[Answer]) -> None:
            admission.in_flight -= 1
            if task.cancelled():
                self._failed(exchange, asyncio.CancelledError())
            elif (exc := task.exception()) is not None:
                self._failed(exchange, exc)
            else:
                self._answer(exchange, task.result())

        def _failed(self, exchange: Exchange, exc: BaseException) -> None:
            """As uvicorn answers an application that raised: logged, a 500, then closed."""
            self.logger.error("Exception in ASGI application\n", exc_info=exc)
            exchange.keep_alive = False
            self._answer(exchange, _SERVER_ERROR, cors=False)

        def _answer(self, exchange: Exchange, answer: Answer, cors: bool = True) -> None:
            """Write the answer as uvicorn's cycle does (`send`), then what follows it."""
            exchange.response_complete = True
            if exchange.disconnected:
                return
            status, headers, body = answer
            if self.access_log and self.access_logger.isEnabledFor(logging.INFO):
                self.access_logger.info(
                    '%s - "%s %s HTTP/%s" %d',
                    f"{self.client[0]}:{self.client[1]}" if self.client else "",
                    "POST",
                    exchange.path,
                    exchange.http_version,
                    status,
                )
            head = [STATUS_LINE[status], _fields(self.server_state.default_headers)]
            for name, value in headers:
                head += (name, b": ", value, b"\r\n")
            if cors:
                head.append(_CORS)
            if not exchange.keep_alive:
                head.append(b"connection: close\r\n")
            head += (b"\r\n", body)
            self.expect_100_continue = False
            self.transport.write(b"".join(head))
            if not exchange.keep_alive:
                self.transport.close()
            self._keep_alive()

        def connection_lost(self, exc: Exception | None) -> None:
            exchange = self._exchange
            if exchange is not None and exchange.admitted and not exchange.running:
                admission.in_flight -= 1  # admitted, and gone before its body came
                exchange.running = True
            super().connection_lost(exc)

    return JoinLaneProtocol
