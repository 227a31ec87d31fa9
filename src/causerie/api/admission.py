"""ASGI guards in front of the control plane: body size and admission control.

Admission control refuses a control-plane request with 503 and a jittered Retry-After *before*
any work is done when the node is overloaded, so it answers quickly instead of queueing until
everything times out. Two signals say "overloaded":

- requests in flight above a bound (work that waits on I/O piles up), and
- the event loop running late (`LoopLag`): a node whose handlers never wait is saturated by
  CPU instead, and then requests queue *before* they reach the application, invisible to the
  in-flight count. The lag is what every request, media included, waits on top of its own
  work; refusing new control-plane work while it is high keeps it near the bound.

Media requests (`/hls/`) never pass through here: people already listening are never refused
for control-plane load, and shedding that load is what keeps their parts on time.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Iterable, Sequence

from ..asgi import Answer, ASGIApp, Header, Message, Receive, Scope, Send, error_answer, send_answer

MAX_HEADERS = 100
MAX_HEADER_BYTES = 32 * 1024


def header_limit_error(scope: Scope) -> str | None:
    """Why the request's header fields are over the limits, or None when they are not.

    uvicorn (with httptools) bounds neither the number nor the size of header fields (nginx, in
    front, refuses beyond 4 x 8 KiB); past these limits a request gets 431 (RFC 6585 §5).
    """
    return header_fields_error(scope.get("headers", ()))


def header_fields_error(headers: Sequence[Header]) -> str | None:
    """`header_limit_error`, for the header fields of a request."""
    if len(headers) > MAX_HEADERS:
        return f"the request has more than {MAX_HEADERS} header fields"
    if sum(len(name) + len(value) for name, value in headers) > MAX_HEADER_BYTES:
        return f"the request's header fields are larger than {MAX_HEADER_BYTES} bytes"
    return None


def body_too_large(max_bytes: int) -> Answer:
    """The 413 for a body over `max_bytes`."""
    return error_answer(413, f"the body is larger than {max_bytes} bytes")


def declared_length(headers: Iterable[Header], max_bytes: int) -> tuple[Answer | None, int | None]:
    """The refusal of a request whose Content-Length is malformed (400) or over `max_bytes`
    (413), else None; and the length it declares (None: it declares none)."""
    length = None
    for name, value in headers:
        if name == b"content-length":
            if not value.isdigit():
                return error_answer(400, "bad Content-Length"), None
            length = int(value)
    if length is not None and length > max_bytes:
        return body_too_large(max_bytes), length
    return None, length


class BodyLimit:
    """Refuse request bodies over `max_bytes` with 413, whether or not they announce a length.

    A body without Content-Length (chunked) is read here first, up to the limit, and handed on
    whole: the framework would otherwise turn a failure while reading into a vague 400.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        refused, length = declared_length(scope["headers"], self.max_bytes)
        if refused is not None:
            await send_answer(send, refused)
            return
        if length is not None:
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await send_answer(send, body_too_large(self.max_bytes))
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        delivered = False

        async def replay() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class LoopLag:
    """How late this thread's event loop runs, measured by a ticker that sleeps `interval`.

    Two readings: `average()`, a moving average (weight `smoothing` per tick) of how much later
    than asked the ticker woke – one stall barely moves it, a loop that stays behind raises it
    within a few ticks; and `overdue()`, how long the ticker has been due without running –
    the time the work being done right now has been keeping everything else waiting (a burst
    of requests that arrived together is handled in one turn of the loop). The ticker starts
    with the first reading.
    """

    def __init__(self, interval: float = 0.01, smoothing: float = 0.2) -> None:
        self.interval = interval
        self.smoothing = smoothing
        self._average = 0.0
        self._due = 0.0
        self._task: asyncio.Task[None] | None = None

    def average(self) -> float:
        """Seconds the loop has been running behind, on average lately (0 when it keeps up)."""
        self._start()
        return self._average

    def overdue(self) -> float:
        """Seconds the ticker has been due without getting its turn (0 when it is not due)."""
        self._start()
        return max(0.0, time.monotonic() - self._due) if self._due else 0.0

    def _start(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._tick(), name="loop-lag")

    async def _tick(self) -> None:
        while True:
            self._due = time.monotonic() + self.interval
            await asyncio.sleep(self.interval)
            lag = max(0.0, time.monotonic() - self._due)
            self._average += (lag - self._average) * self.smoothing

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()


class Admission:
    """Refuse control-plane work with 503 + Retry-After at once when the node is overloaded:
    `limit` requests in flight, or – while requests come at `busy_rate` a second or more – the
    event loop behind by more than `max_lag` seconds on average lately, or by more than twice
    that right now.

    The request rate tells a loop late because of its own requests (what refusing helps) from
    one late because the machine is busy elsewhere (a process descheduled for a moment, a
    browser on the same cores): a few requests a second are never refused for lag.
    """

    def __init__(
        self,
        app: ASGIApp,
        limit: int,
        retry_after: tuple[int, int] = (1, 5),
        max_lag: float | None = None,
        busy_rate: int = 100,
    ) -> None:
        self.app = app
        self.limit = limit
        self.retry_after = retry_after
        self.max_lag = max_lag
        self.busy_rate = busy_rate
        self.lag = LoopLag()
        self.in_flight = 0
        self.refused = 0
        self.refused_for_lag = 0
        self.refused_joins = 0
        """Of the refused requests, joins (the launch-night figure: joins refused vs admitted)."""
        self._second = 0  # the current whole second (monotonic clock)
        self._this_second = 0  # requests that arrived in it
        self._last_second = 0  # requests that arrived in the second before

    def _arrived(self) -> int:
        """Count a request; return how many arrived in the last second or so."""
        second = int(time.monotonic())
        if second != self._second:
            self._last_second = self._this_second if second == self._second + 1 else 0
            self._second, self._this_second = second, 0
        self._this_second += 1
        return max(self._this_second, self._last_second)

    def overloaded(self) -> bool:
        """Whether a new request should be refused now (and count it if so)."""
        busy = self._arrived() >= self.busy_rate
        if self.in_flight >= self.limit:
            self.refused += 1
            return True
        if self.max_lag is None:
            return False
        late = self.lag.average() > self.max_lag or self.lag.overdue() > 2 * self.max_lag
        if busy and late:
            self.refused += 1
            self.refused_for_lag += 1
            return True
        return False

    def refusal(self, method: str, path: str) -> Answer | None:
        """The 503 to answer a new request with when the node is overloaded (counted), else
        None."""
        if not self.overloaded():
            return None
        if method == "POST" and path.endswith("/join"):
            self.refused_joins += 1
        # Jitter spreads the retries so refused clients do not come back in one wave.
        wait = random.randint(*self.retry_after)
        return error_answer(
            503,
            f"the server is busy; please retry in {wait} s",
            [(b"retry-after", str(wait).encode())],
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Health checks must answer even under overload.
        if scope["type"] != "http" or scope["path"] in ("/healthz", "/metrics"):
            await self.app(scope, receive, send)
            return
        refused = self.refusal(scope["method"], scope["path"])
        if refused is not None:
            await send_answer(send, refused)
            return
        if scope["path"].endswith("/events"):
            # An event stream is refused like any request when the node is overloaded (opening
            # one costs a snapshot and a subscription: a storm of them once starved the media),
            # but once open it is long-lived and costs nothing while idle: not work in flight.
            await self.app(scope, receive, send)
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
