"""The rehearsal listener: a Locust user that does what a person on the listener page does.

One visit: open the page (`GET /api/spaces` first when no space is given, as the index page
does; then the space's details, the settings and the questions), join (tried again politely
after 503/429 with Retry-After and full-jitter backoff; a waiting-room answer is followed:
re-join with the ticket after `retry_after`), then play as the page's dash.js does in Chromium:
the MPD and the node's clock, the init section, then one request per segment, read chunk by
chunk as it streams (manifest.py). Meanwhile, as the page: the live events from the feed, one
streamed window at a time (web/static/feed.js), heartbeats every `heartbeat_interval` ± 10 %
(web/static/space.js), and now and then a reaction, an upvote or a question (api/audience.py;
the listener token as Bearer). Importing this module imports Locust, which monkey-patches the
standard library with gevent: only the rehearsal process imports it.
"""

from __future__ import annotations

import json
import random
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import gevent
from geventhttpclient.response import HTTPConnectionClosed, HTTPParseError
from locust import FastHttpUser, constant, task

from . import figures as f
from .backoff import RETRYABLE, retry_after_seconds, retry_delay, wait_in_line_seconds
from .manifest import (
    LIVE_DELAY,
    Manifest,
    ManifestError,
    PlayerClock,
    box_header,
    moof_timing,
    parse_manifest,
)

UPDATE_FALLBACK = 60.0
"""Seconds between manifest reads when the MPD names no minimumUpdatePeriod."""
STREAM_ERRORS = (HTTPConnectionClosed, HTTPParseError)
"""How a response body that breaks off shows (besides OSError)."""

EMOJI = ("👏", "❤️", "😂", "🔥", "😮", "💯", "🙏", "👍")
QUESTIONS = (
    "How do you keep the latency this low with so many people listening?",
    "What would you do differently if you started again today?",
    "Which part of the launch worried you the most?",
    "Where can we read more about this?",
)


@dataclass(frozen=True, slots=True)
class Answer:
    """An HTTP answer (status 0: none), its body, and the error kind if it was a failure."""

    status: int
    headers: dict[str, str]
    body: bytes
    error: str | None

    @property
    def retry_after(self) -> float | None:
        return retry_after_seconds(self.headers.get("retry-after"))

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


class VisitOver(Exception):
    """The visit cannot go on (the space is gone or ended); the user starts a new one later."""


def manifest_path(space_id: str) -> str:
    """Where the page's dash.js reads a space's MPD."""
    return f"/dash/{space_id}/manifest.mpd"


def _read(response: Any, size: int) -> bytes:
    """`size` bytes of a streamed body (fewer only at its end); blocks until they are in."""
    return response.read(size) if size > 0 else b""


def _ndjson(response: Any) -> Iterator[dict[str, Any]]:
    """The lines of a streamed newline-delimited JSON body, parsed, as they come; empty lines
    (an open window's keep-alive) and lines that are not objects skipped."""
    # The underlying response reads up to a given separator; the wrapper's readline() only
    # knows HTTP's CRLF.
    raw = getattr(response, "_response", response)
    while True:
        line = raw.readline(b"\n")
        if not line:
            return
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if isinstance(event, dict):
            yield event


def _cause(response: Any) -> str:
    cause = getattr(response, "error", None)
    return type(cause).__name__ if cause is not None else "no answer"


def _waiting(data: Any) -> dict[str, Any] | None:
    """The waiting-room part of a join answer, if the space is full."""
    if isinstance(data, dict) and isinstance(data.get("waiting"), dict):
        return data["waiting"]
    return None


class Visit:
    """One listener's visit, from opening the page until the rehearsal stops it."""

    def __init__(self, user: Listener) -> None:
        self.user = user
        self.client = user.client
        self.events = user.environment.events
        options = user.environment.parsed_options
        self.space: str | None = getattr(options, "space", None)
        self.actions_every: float = getattr(options, "actions_every", 30.0) or 0.0
        self.rng = random.Random()
        self.started = time.time()
        self.token = ""
        self.listener_id = ""
        self.heartbeat_interval = 15.0
        self.next_heartbeat = float("inf")
        self.next_action = float("inf")
        self.voted: set[str] = set()
        self.first_audio = True
        self.feed_restart = False
        self.greenlets: list[gevent.Greenlet] = []

    # -- recording ------------------------------------------------------------------------------

    def figure(self, name: str, seconds: float) -> None:
        """Record one value of a figure (see figures.py), in Locust's statistics."""
        self.events.request.fire(
            request_type=f.FIGURE,
            name=name,
            response_time=max(0.0, seconds) * 1000,
            response_length=0,
            exception=None,
            context={},
        )

    def request(
        self,
        method: str,
        path: str,
        name: str,
        *,
        ok: tuple[int, ...] = (200,),
        body: Any = None,
        token: str = "",
        waiting_ok: bool = False,
    ) -> Answer:
        """One request, recorded under `name`; a failure is recorded by kind ("HTTP 503",
        "ConnectionRefusedError"…). With `waiting_ok`, a waiting-room answer is a success."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with self.client.request(
            method, path, name=name, json=body, headers=headers, catch_response=True
        ) as response:
            status = response.status_code or 0
            content = response.content or b""
            answer_headers = {k.lower(): v for k, v in (response.headers or {}).items()}
            error = None
            if status not in ok:
                waiting = waiting_ok and status and _waiting(_json(content)) is not None
                if not waiting:
                    if status:
                        error = f"HTTP {status}"
                    else:
                        cause = getattr(response, "error", None)
                        error = type(cause).__name__ if cause is not None else "no answer"
            if error is None:
                response.success()
            else:
                response.failure(error)
        return Answer(status, answer_headers, content, error)

    def error(self, method: str, name: str, exc: BaseException) -> None:
        """Record a failure that is not an HTTP answer (a stream that broke off)."""
        self.events.request.fire(
            request_type=method,
            name=name,
            response_time=0,
            response_length=0,
            exception=exc,
            context={},
        )

    def spawn(self, fn: Callable[..., None], *args: Any) -> None:
        """Run `fn` beside the visit (the feed, presence), ended with it; a bug in it is
        recorded as Locust records a listener's (never silent)."""

        def guarded() -> None:
            try:
                fn(*args)
            except VisitOver:
                pass
            except Exception as exc:
                self.user.environment.events.user_error.fire(
                    user_instance=self.user, exception=exc, tb=sys.exc_info()[2]
                )

        self.greenlets = [g for g in self.greenlets if not g.dead]
        self.greenlets.append(gevent.spawn(guarded))

    def retrying(self, method: str, path: str, name: str, **kwargs: Any) -> Answer:
        """`request` until it succeeds or fails for a reason that waiting cannot fix."""
        attempt = 0
        while True:
            answer = self.request(method, path, name, **kwargs)
            if answer.error is None or answer.status not in RETRYABLE:
                return answer
            delay = retry_delay(answer.retry_after, attempt, self.rng)
            self.figure(f.RETRY_WAIT, delay)
            attempt += 1
            gevent.sleep(delay)

    # -- the visit ------------------------------------------------------------------------------

    def run(self) -> None:
        space_id = self.open_details()
        # The page follows the space's events from the start (before play is pressed).
        self.spawn(self.follow_feed, space_id)
        try:
            self.join(space_id)
            self.figure(f.JOIN_ADMITTED, time.time() - self.started)
            now = time.monotonic()
            # As the listener page: the first heartbeat one interval after a fresh join.
            self.next_heartbeat = now + self._heartbeat_wait()
            if self.actions_every:
                self.next_action = now + self.rng.expovariate(1 / self.actions_every)
            self.spawn(self.presence, space_id)
            self.listen(space_id)
        finally:
            gevent.killall(self.greenlets, block=False)

    def open_details(self) -> str:
        """GET the space's details as the page does; without --space, pick a live one first."""
        space_id = self.space
        if space_id is None:
            answer = self.retrying("GET", "/api/spaces", "GET /api/spaces")
            if answer.error:
                raise VisitOver(answer.error)
            spaces = (answer.json() or {}).get("spaces", [])
            live = [s["id"] for s in spaces if s.get("state") == "live"]
            if not live:
                self.events.request.fire(
                    request_type="GET",
                    name="GET /api/spaces",
                    response_time=0,
                    response_length=0,
                    exception=Exception("no live space"),
                    context={},
                )
                raise VisitOver("no live space")
            space_id = self.rng.choice(live)
        answer = self.retrying("GET", f"/api/spaces/{space_id}", "GET /api/spaces/{id}")
        if answer.error:
            raise VisitOver(answer.error)
        if (answer.json() or {}).get("state") == "ended":
            raise VisitOver("the space has ended")
        # What the page reads once as it opens: the server's settings and the questions.
        self.request("GET", "/api/settings", "GET /api/settings")
        self.request("GET", f"/api/spaces/{space_id}/questions", "GET questions")
        return space_id

    def join(self, space_id: str) -> None:
        """Join, politely: the listener token."""
        attempt = 0
        ticket: str | None = None
        while True:
            body = {"ticket": ticket} if ticket else None
            answer = self.request(
                "POST", f"/api/spaces/{space_id}/join", "POST join", body=body, waiting_ok=True
            )
            data = answer.json()
            waiting = _waiting(data)
            if waiting is not None:
                # A full space: a place in line. As the page does (web/static/api.js
                # waitDelaySeconds), come back with the ticket after a random time up to
                # `retry_after` (full jitter, at least 0.5 s), so that people told the same wait
                # do not return together.
                ticket = waiting.get("ticket") or ticket
                wait = wait_in_line_seconds(waiting.get("retry_after"), self.rng)
                self.figure(f.WAIT_IN_LINE, wait)
                gevent.sleep(wait)
                continue
            if ticket and answer.status == 422:
                ticket = None  # a ticket no longer taken (expired): queue anew, as the page does
                continue
            if answer.error is None and isinstance(data, dict) and data.get("token"):
                self.token = data["token"]
                self.listener_id = data.get("listener_id", "")
                self.heartbeat_interval = float(data.get("heartbeat_interval") or 15.0)
                return
            if answer.status not in RETRYABLE:
                raise VisitOver(answer.error or "join answer without a token")
            delay = retry_delay(answer.retry_after, attempt, self.rng)
            self.figure(f.RETRY_WAIT, delay)
            attempt += 1
            gevent.sleep(delay)

    def listen(self, space_id: str) -> None:
        """Play the LL-DASH stream as the page's dash.js does, until the space ends."""
        path = manifest_path(space_id)
        manifest = self.read_manifest(path)
        self.sync_clock(path, manifest)
        self.retrying("GET", manifest.init_url(path), "GET init")
        asked = time.time()
        clock = PlayerClock(asked - LIVE_DELAY)
        number = manifest.segment_at(asked - LIVE_DELAY)
        next_update = time.monotonic() + (manifest.update_period or UPDATE_FALLBACK)
        failures = 0
        while True:
            last = manifest.last_number()
            if last is not None and number > last:
                raise VisitOver("the space has ended")
            wait = manifest.available_at(number) - time.time()
            if wait > 0:
                gevent.sleep(wait)
            status = self.stream_segment(path, manifest, number, clock)
            failures = 0 if status == 200 else failures + 1
            if status in RETRYABLE:
                # The node is away or busy (between two owners, say): the same segment again,
                # after a growing, jittered wait; if it is gone by then, the 404 says so.
                delay = retry_delay(None, failures - 1, self.rng)
                self.figure(f.RETRY_WAIT, delay)
                gevent.sleep(delay)
                continue
            if status == 404:
                # The run changed (a failover: a new Period, new URLs) or the space ended: the
                # manifest says which, as the page's dash.js reads it again on a 404.
                run = manifest.run
                manifest = self.read_manifest(path)
                if manifest.run != run:
                    self.retrying("GET", manifest.init_url(path), "GET init")
                    asked = time.time()
                    clock = PlayerClock(asked - LIVE_DELAY)
                    number = manifest.segment_at(asked - LIVE_DELAY)
                    continue
                if manifest.last_number() is None:
                    live = manifest.segment_at(time.time() - LIVE_DELAY)
                    if number < live - 1:
                        number = live  # fell behind what the node holds: back to live
                    else:
                        # Asked before it exists (the node answers 404 more than a segment
                        # ahead): the same one again in a moment, never a tight loop.
                        gevent.sleep(manifest.segment_seconds / 2)
                    continue
            number += 1
            if time.monotonic() >= next_update:
                # dash.js reads the manifest again every minimumUpdatePeriod, and its clock.
                manifest = self.read_manifest(path)
                self.sync_clock(path, manifest)
                next_update = time.monotonic() + (manifest.update_period or UPDATE_FALLBACK)

    def read_manifest(self, path: str) -> Manifest:
        answer = self.retrying("GET", path, "GET manifest")
        if answer.error:
            raise VisitOver(answer.error)
        try:
            return parse_manifest(answer.text)
        except ManifestError as exc:
            self.error("GET", "GET manifest", exc)
            raise VisitOver(str(exc)) from None

    def sync_clock(self, path: str, manifest: Manifest) -> None:
        """The MPD's UTCTiming source (the node's /time), as dash.js reads it."""
        if manifest.time_url:
            self.request("GET", urljoin(path, manifest.time_url), "GET time")

    def stream_segment(self, path: str, manifest: Manifest, number: int, clock: PlayerClock) -> int:
        """GET one segment and read it chunk by chunk as it streams; its HTTP status."""
        requested = time.time()
        url = manifest.media_url(path, number)
        with self.client.request(
            "GET", url, name=f.SEGMENT_REQUEST, stream=True, catch_response=True
        ) as response:
            status = response.status_code or 0
            if status != 200:
                response.failure(f"HTTP {status}" if status else _cause(response))
                return status
            response.success()
            try:
                self.read_chunks(response, manifest, requested, clock)
            except (OSError, ManifestError, *STREAM_ERRORS) as exc:
                self.error("GET", f.SEGMENT_STREAM, exc)
            finally:
                response.release()
        return status

    def read_chunks(
        self, response: Any, manifest: Manifest, requested: float, clock: PlayerClock
    ) -> None:
        """Read CMAF boxes as they come; record each chunk (`moof` + `mdat`) when it is in."""
        timing: tuple[int, int] | None = None
        while True:
            header = _read(response, 8)
            if not header:
                return  # the segment is complete
            size, kind, length = box_header(header)
            if length > 8:
                header += _read(response, length - 8)
                size, kind, length = box_header(header)
            if size < length:
                raise ManifestError(f"a {kind!r} box of {size} bytes")
            body = _read(response, size - length)
            if len(header) < length or len(body) < size - length:
                raise ManifestError("the segment was cut short")
            if kind == "moof":
                timing = moof_timing(body)
            elif kind == "mdat" and timing is not None:
                self.chunk_in(manifest, timing, requested, clock)
                timing = None

    def chunk_in(
        self,
        manifest: Manifest,
        timing: tuple[int, int],
        requested: float,
        clock: PlayerClock,
    ) -> None:
        now = time.time()
        start, end = manifest.chunk_time(*timing)
        self.figure(f.PART_RECEIVED, 0.0)
        if self.first_audio:
            self.figure(f.TIME_TO_FIRST_AUDIO, now - self.started)
            self.first_audio = False
        late = clock.arrived(start, end, now)
        if late > 0:
            self.figure(f.PART_LATE, late)
        if end > requested:  # made while this listener waited for it (not a backlog)
            self.figure(f.PART_DELAY, now - end)

    # -- the live events: the feed windows ----------------------------------------------------

    def follow_feed(self, space_id: str) -> None:
        """The window in progress, then each next one as its time begins (web/static/feed.js):
        one request per window, read line by line as it streams."""
        number, seconds = self.feed_now(space_id)
        while True:
            self.spawn(self.read_window, space_id, number, seconds)
            gevent.sleep(max(0.0, (number + 1) * seconds - time.time()))
            number += 1
            if self.feed_restart:  # a window was gone (410): from the window in progress
                self.feed_restart = False
                number, seconds = self.feed_now(space_id)

    def feed_now(self, space_id: str) -> tuple[int, float]:
        attempt = 0
        while True:
            answer = self.request("GET", f"/feed/{space_id}/now", "GET feed now")
            data = answer.json() if not answer.error else None
            if isinstance(data, dict) and isinstance(data.get("window"), int):
                return data["window"], float(data.get("seconds") or 15.0)
            delay = retry_delay(answer.retry_after, attempt, self.rng)
            attempt += 1
            self.figure(f.RETRY_WAIT, delay)
            gevent.sleep(delay)

    def read_window(self, space_id: str, number: int, seconds: float) -> None:
        """Window `number` to its end line, asked again (politely) if its stream breaks off;
        given up once the window after it is over too."""
        attempt = 0
        while time.time() < (number + 2) * seconds:
            status, complete, retry_after = self.stream_window(space_id, number)
            if complete:
                return
            if status == 410:  # fell behind what the node keeps: read the space again
                self.request("GET", f"/api/spaces/{space_id}", "GET /api/spaces/{id}")
                self.feed_restart = True
                return
            delay = retry_delay(retry_after, attempt, self.rng)
            attempt += 1
            self.figure(f.RETRY_WAIT, delay)
            gevent.sleep(delay)

    def stream_window(self, space_id: str, number: int) -> tuple[int, bool, float | None]:
        """(status, whether the end line came, Retry-After) of one window request."""
        asked = time.time()
        with self.client.request(
            "GET",
            f"/feed/{space_id}/{number}.ndjson",
            name=f.WINDOW_REQUEST,
            stream=True,
            catch_response=True,
        ) as response:
            status = response.status_code or 0
            if status != 200:
                if status == 410:
                    response.success()  # what a listener that fell behind is told: not a failure
                else:
                    response.failure(f"HTTP {status}" if status else _cause(response))
                headers = {k.lower(): v for k, v in (response.headers or {}).items()}
                return status, False, retry_after_seconds(headers.get("retry-after"))
            response.success()
            try:
                for event in _ndjson(response):
                    if event.get("type") == "end":
                        return status, True, None
                    at = event.get("at")
                    if isinstance(at, (int, float)) and at > asked:
                        self.figure(f.EVENT_DELAY, time.time() - at)
            except (OSError, *STREAM_ERRORS) as exc:
                self.error("GET", f.WINDOW_STREAM, exc)
            finally:
                response.release()
        return status, False, None

    # -- what listeners do meanwhile -------------------------------------------------------------

    def _heartbeat_wait(self) -> float:
        # ± 10 %, as the page does: after a join storm, heartbeats spread out.
        return self.heartbeat_interval * (0.9 + 0.2 * self.rng.random())

    def presence(self, space_id: str) -> None:
        """Heartbeats, and now and then an action, each when due, until the visit ends."""
        while True:
            wake = min(self.next_heartbeat, self.next_action)
            gevent.sleep(min(3600.0, max(0.0, wake - time.monotonic())))
            now = time.monotonic()
            if now >= self.next_heartbeat:
                self.heartbeat(space_id)
            if now >= self.next_action:
                self.act(space_id)

    def heartbeat(self, space_id: str) -> None:
        answer = self.request(
            "POST",
            f"/api/spaces/{space_id}/heartbeat",
            "POST heartbeat",
            ok=(204,),
            token=self.token,
        )
        wait = self._heartbeat_wait()
        if answer.status == 401:  # the token expired: a fresh one, quietly, as the page does
            self.join(space_id)
        elif answer.error and answer.retry_after is not None:
            wait = max(wait, answer.retry_after)
        self.next_heartbeat = time.monotonic() + wait

    def act(self, space_id: str) -> None:
        """React (most often), upvote a question, or ask one."""
        roll = self.rng.random()
        base = f"/api/spaces/{space_id}"
        if roll < 0.7:
            answer = self.request(
                "POST",
                f"{base}/reactions",
                "POST reaction",
                ok=(202,),
                token=self.token,
                body={"emoji": self.rng.choice(EMOJI)},
            )
        elif roll < 0.9 and (question := self._question_to_vote(base)) is not None:
            answer = self.request(
                "POST",
                f"{base}/questions/{question}/votes",
                "POST vote",
                ok=(201,),
                token=self.token,
            )
            self.voted.add(question)
        else:
            answer = self.request(
                "POST",
                f"{base}/questions",
                "POST question",
                ok=(201,),
                token=self.token,
                body={"text": self.rng.choice(QUESTIONS)},
            )
        wait = self.rng.expovariate(1 / self.actions_every)
        if answer.status in (429, 503) and answer.retry_after is not None:
            wait = max(wait, answer.retry_after)  # told to slow down: do
        self.next_action = time.monotonic() + wait

    def _question_to_vote(self, base: str) -> str | None:
        answer = self.request("GET", f"{base}/questions", "GET questions")
        questions = (answer.json() or {}).get("questions", []) if not answer.error else []
        choices = [
            q["id"]
            for q in questions
            if q.get("author_id") != self.listener_id
            and q.get("id") not in self.voted
            and q.get("state") == "open"
        ]
        return self.rng.choice(choices) if choices else None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


class Listener(FastHttpUser):
    """A simulated listener. Options come from the environment's parsed options (`space`,
    `actions_every`), which a Locust master also hands to its workers."""

    wait_time = constant(0)
    network_timeout = 30.0
    connection_timeout = 10.0
    # A new visit after one that could not go on waits longer each time (never hammer).
    _failed_visits = 0

    @task
    def visit(self) -> None:
        try:
            Visit(self).run()
        except VisitOver:
            self._failed_visits += 1
            gevent.sleep(retry_delay(None, self._failed_visits) + 1.0)
