"""The rehearsal listener: a Locust user that does what a person on the listener page does.

One visit: open the space's details (`GET /api/spaces` first when no space is given, as the
index page does), join (tried again politely after 503/429 with Retry-After and full-jitter
backoff; a waiting-room answer is followed: re-join with the ticket after `retry_after`), then
follow the LL-HLS playlist as hls.js does and fetch every part, sending heartbeats every
`heartbeat_interval` ± 10 % (web/static/space.js) and now and then reacting, upvoting or asking
(api/audience.py; the listener token as Bearer). Importing this module imports Locust, which
monkey-patches the standard library with gevent: only the rehearsal process imports it.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from typing import Any

import gevent
from locust import FastHttpUser, constant, task

from . import figures as f
from .backoff import RETRYABLE, retry_after_seconds, retry_delay, wait_in_line_seconds
from .playlist import (
    MediaPlaylist,
    Part,
    PlayerClock,
    PlaylistError,
    blocking_url,
    parse_playlist,
    resolve,
)

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
        playlist_path = self.join(space_id)
        self.figure(f.JOIN_ADMITTED, time.time() - self.started)
        now = time.monotonic()
        # As the listener page: the first heartbeat one interval after a fresh join.
        self.next_heartbeat = now + self._heartbeat_wait()
        if self.actions_every:
            self.next_action = now + self.rng.expovariate(1 / self.actions_every)
        self.follow(space_id, playlist_path)

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
        return space_id

    def join(self, space_id: str) -> str:
        """Join, politely: the listener token; returns the playlist path."""
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
                # The LL-HLS media playlist the advertised multivariant one names.
                return f"/hls/{space_id}/index.m3u8"
            if answer.status not in RETRYABLE:
                raise VisitOver(answer.error or "join answer without a token")
            delay = retry_delay(answer.retry_after, attempt, self.rng)
            self.figure(f.RETRY_WAIT, delay)
            attempt += 1
            gevent.sleep(delay)

    def follow(self, space_id: str, playlist_path: str) -> None:
        """Follow the live playlist as hls.js does (low-latency mode) until stopped."""
        answer = self.retrying("GET", playlist_path, "GET playlist")
        playlist = self._parse(answer)
        if playlist.map_uri:
            self.retrying("GET", resolve(playlist_path, playlist.map_uri), "GET init")
        clock = PlayerClock()
        queue = playlist.start_parts()
        # The parts behind the live edge fetched to start with were old when asked for: their
        # delay is the hold-back, not delivery. The delay counts from the first part asked for
        # with a blocking reload.
        starting = {part.key for part in queue}
        last: tuple[int, int] | None = None
        first_audio = True
        while True:
            for part in queue:
                if self.fetch_part(playlist_path, part):
                    now = time.time()
                    if first_audio:
                        self.figure(f.TIME_TO_FIRST_AUDIO, now - self.started)
                        first_audio = False
                    late = clock.arrived(part, now)
                    if late > 0:
                        self.figure(f.PART_LATE, late)
                    if part.start is not None and part.key not in starting:
                        self.figure(f.PART_DELAY, now - (part.start + part.duration))
                last = part.key
                self.between_parts(space_id)
            if playlist.ended:
                raise VisitOver("the space has ended")
            if last is None:  # nothing listed yet: ask again in a moment
                gevent.sleep(max(0.1, playlist.part_target / 2))
                answer = self.retrying("GET", playlist_path, "GET playlist")
                playlist = self._parse(answer)
                queue = playlist.start_parts()
                starting = {part.key for part in queue}
                continue
            url = blocking_url(playlist_path, playlist.next_request(last))
            answer = self.retrying("GET", url, "GET playlist (blocking)")
            playlist = self._parse(answer)
            queue = playlist.parts_after(last)
            if not queue:
                # Not there yet (a blocking reload that timed out): hls.js retries after half a
                # part target rather than at once.
                gevent.sleep(max(0.05, playlist.part_target / 2))

    def _parse(self, answer: Answer) -> MediaPlaylist:
        if answer.error:
            raise VisitOver(answer.error)
        try:
            return parse_playlist(answer.text)
        except PlaylistError as exc:
            self.events.request.fire(
                request_type="GET",
                name="GET playlist",
                response_time=0,
                response_length=0,
                exception=exc,
                context={},
            )
            raise VisitOver(str(exc)) from None

    def fetch_part(self, playlist_path: str, part: Part) -> bool:
        answer = self.retrying("GET", resolve(playlist_path, part.uri), f.PART_REQUEST)
        return answer.error is None

    # -- what listeners do meanwhile -------------------------------------------------------------

    def _heartbeat_wait(self) -> float:
        # ± 10 %, as the page does: after a join storm, heartbeats spread out.
        return self.heartbeat_interval * (0.9 + 0.2 * self.rng.random())

    def between_parts(self, space_id: str) -> None:
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
