"""Speakers publishing into a space over WebRTC: the media side of WHIP (RFC 9725).

One :class:`Speakers` registry per node holds the live *sessions*: one aiortc peer connection
per speaker (RFC 9725 §3: one WHIP session is one peer connection). For each session:

- the speaker's Opus packets are taken from aiortc before its own jitter buffer and decoder
  and go through causerie's (:class:`~causerie.media.voice.Voice`: an adaptive jitter buffer,
  libopus with in-band FEC and concealment); just before every mix, each voice is decoded into
  the space's mixer input named by the speaker's user id, so the playout follows the mixer's clock
  and a lost packet is rebuilt or concealed in its turn;
- the speaker's mix-minus (everyone but themselves) goes back on the same peer connection
  through a :class:`~causerie.media.return_track.ReturnTrack`, when the offer asked to receive
  audio too (``sendrecv``); a ``sendonly`` offer gets a ``recvonly`` answer;
- the session ends when the speaker says goodbye (DELETE), when the peer connection fails or
  closes without goodbye (the mix goes on without them), when the speaker may no longer publish
  (:meth:`Speakers.sync`), or when the space goes off the air.

The registry owns the pipeline's ``before_mix`` and ``on_mix`` hooks for the spaces it serves,
chaining whatever hooks were there before. A second publish by the same user replaces their
first session (a reloaded page or a reconnecting encoder must not wait for the old session to
time out).

Answers carry every local candidate (non-trickle: RFC 9725 §4.3.1 lets the endpoint refuse
PATCH). The host-candidate addresses can be restricted (:func:`restrict_host_addresses`).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from ..domain import Conflict, Space
from .broadcasts import Broadcasts
from .mixer import MixerInput, MixResult
from .pipeline import LivePipeline
from .return_track import ReturnFeeds, ReturnTrack
from .rtc import (
    SAMPLE_RATE,
    accept_rsa_peers,
    add_remote_candidates,
    local_ice,
    negotiate,
    remote_ufrag,
    restart_ice,
    restrict_host_addresses,
)
from .sdp import Fragment, OfferSummary, answer_fragment, check_offer, keep_candidates
from .voice import FRAME_SAMPLES, Voice

logger = logging.getLogger(__name__)

CONNECT_TIMEOUT = 30.0
"""A session whose peer connection is not connected this long after the answer is closed."""
RECONNECTING_AFTER = 1.0
"""A session whose audio stopped arriving this long ago is *reconnecting*: shown so on every
page (the stage's ``reconnecting``) while the speaker's page restarts ICE or publishes again.
(Browsers, OBS and GStreamer send packets even when muted: 20 ms apart, 50 a second.)"""
AUDIO_TIMEOUT = 15.0
"""A session whose audio stopped arriving this long ago is closed: the speaker's network or
device went away and did not come back through an ICE restart. (ICE consent freshness,
RFC 7675, would only notice after about 30 s.)"""
RECONNECT_GRACE = 30.0
"""How long a speaker whose connection was lost stays *reconnecting* without a session: their
page is publishing again."""
WATCH_INTERVAL = 0.5


def ice_etag(pc: RTCPeerConnection) -> str:
    """A strong entity-tag for the connection's ICE session: its local ufrag, which changes at
    every restart (RFC 8445 §9) and is no secret (it is in the answer)."""
    ufrag, _, _ = local_ice(pc)
    return f'"{ufrag}"'


# -- Sessions -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """A snapshot of one speaker's session, for the API and for tests."""

    session_id: str
    space_id: str
    user_id: str
    connection_state: str
    """aiortc's connection state: new, connecting, connected (failed and closed ones are gone)."""
    sends_back: bool
    """Whether the speaker gets their mix-minus on this session."""
    frames_received: int
    """Opus packets received (20 ms each, usually)."""
    frames_dropped: int
    """Packets dropped to bring the delay down after the network calmed (media/jitter.py)."""
    frames_recovered: int
    """Lost packets rebuilt from the next packet's in-band FEC."""
    frames_concealed: int
    """Lost (or too late) packets concealed."""
    queued_ms: float
    """The speaker's audio held by the jitter buffer and the mixer: their delay there."""
    created_at: float
    etag: str
    """The entity-tag of the session's ICE session (RFC 9725 §4.3.1): new at each restart."""


@dataclass(eq=False)
class _Session:
    session_id: str
    space_id: str
    user_id: str
    pc: RTCPeerConnection
    pipeline: LivePipeline
    mixer_input: MixerInput
    return_track: ReturnTrack | None
    voice: Voice
    answer: str
    created_at: float = field(default_factory=time.time)
    ended: bool = False
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def info(self) -> SessionInfo:
        return SessionInfo(
            session_id=self.session_id,
            space_id=self.space_id,
            user_id=self.user_id,
            connection_state=self.pc.connectionState,
            sends_back=self.return_track is not None,
            frames_received=self.voice.buffer.received,
            frames_dropped=self.voice.buffer.skipped,
            frames_recovered=self.voice.buffer.recovered,
            frames_concealed=self.voice.buffer.concealed,
            queued_ms=1000
            * (self.voice.buffer.depth * FRAME_SAMPLES + self.mixer_input.queued_samples)
            / SAMPLE_RATE,
            created_at=self.created_at,
            etag=ice_etag(self.pc),
        )


class Speakers:
    """The WebRTC speakers of this node's live spaces: one session per publishing user.

    ``ice_servers`` are STUN/TURN URLs (none by default: aiortc would otherwise add a public
    STUN server). ``host_addresses``, when given, restricts ICE to those local addresses
    (process-wide, see :func:`restrict_host_addresses`) and to peers' candidates on them.
    """

    def __init__(
        self,
        broadcasts: Broadcasts,
        *,
        ice_servers: Sequence[str] = (),
        host_addresses: Sequence[str] | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        audio_timeout: float = AUDIO_TIMEOUT,
    ) -> None:
        self.broadcasts = broadcasts
        self.audio_timeout = audio_timeout
        self.ice_servers = tuple(ice_servers)
        self.host_addresses = tuple(host_addresses) if host_addresses is not None else None
        self.connect_timeout = connect_timeout
        if self.host_addresses is not None:
            restrict_host_addresses(self.host_addresses)
        accept_rsa_peers()
        self._sessions: dict[str, dict[str, _Session]] = {}  # space id -> session id -> session
        # (space, user) -> when their connection was lost (time.monotonic()), until their audio
        # is back, they leave, or RECONNECT_GRACE passes.
        self._lost: dict[tuple[str, str], float] = {}
        self._publishing: set[tuple[str, str]] = set()  # (space, user) being negotiated
        self._hooked: dict[str, LivePipeline] = {}  # the pipeline whose hooks we chained
        self._background: set[asyncio.Task[None]] = set()

    # -- publishing ---------------------------------------------------------------------------

    async def publish(
        self, space_id: str, user_id: str, offer_sdp: str, *, muted: bool = False
    ) -> tuple[str, str]:
        """Answer ``user_id``'s offer and start mixing their audio; returns (session id, answer).

        Raises InvalidOffer for an offer that cannot be answered, and Conflict when the space is
        not on the air on this node or the user already speaks into it through another path
        (e.g. a demo voice) or is being published right now. Whether the user *may* publish is
        the caller's business (the WHIP route checks ``Space.may_publish``).
        """
        summary = check_offer(offer_sdp)
        pipeline = self._pipeline(space_id)
        key = (space_id, user_id)
        if key in self._publishing:
            raise Conflict("you are already being connected; wait for that answer")
        self._publishing.add(key)
        try:
            if user_id in self.reconnecting(space_id):
                self._lost.setdefault(key, time.monotonic())  # back through a new session
            await self.close_user(space_id, user_id)  # one session per user: the new one wins
            if user_id in pipeline.mixer.inputs:
                raise Conflict("someone already speaks into this space under your name")
            return await self._start(space_id, user_id, offer_sdp, summary, pipeline, muted)
        finally:
            self._publishing.discard(key)

    def _pipeline(self, space_id: str) -> LivePipeline:
        pipeline = self.broadcasts.get(space_id)
        if pipeline is None or space_id not in self.broadcasts.live_ids():
            raise Conflict("this space is not on the air on this server")
        return pipeline

    def _configuration(self) -> RTCConfiguration:
        # Always an explicit list: RTCConfiguration() alone would add a public STUN server.
        return RTCConfiguration(iceServers=[RTCIceServer(urls=url) for url in self.ice_servers])

    async def _start(
        self,
        space_id: str,
        user_id: str,
        offer_sdp: str,
        summary: OfferSummary,
        pipeline: LivePipeline,
        muted: bool,
    ) -> tuple[str, str]:
        if self.host_addresses is not None:
            offer_sdp = keep_candidates(offer_sdp, self.host_addresses)
        pc = RTCPeerConnection(self._configuration())
        return_track = ReturnTrack() if summary.wants_return else None
        voice = Voice()
        try:
            track = await negotiate(pc, offer_sdp, return_track, voice.put)
        except BaseException:
            await pc.close()
            voice.close()
            raise
        if self.broadcasts.get(space_id) is not pipeline or space_id not in (
            self.broadcasts.live_ids()
        ):
            await pc.close()  # the space went off the air while we negotiated
            raise Conflict("this space is not on the air on this server")
        if user_id in pipeline.mixer.inputs:
            await pc.close()  # someone took the input while we negotiated
            raise Conflict("someone already speaks into this space under your name")
        mixer_input = pipeline.mixer.add_input(user_id, paced=True)
        mixer_input.muted = muted
        session = _Session(
            session_id=secrets.token_urlsafe(12),
            space_id=space_id,
            user_id=user_id,
            pc=pc,
            pipeline=pipeline,
            mixer_input=mixer_input,
            return_track=return_track,
            voice=voice,
            answer=pc.localDescription.sdp,
        )
        self._sessions.setdefault(space_id, {})[session.session_id] = session
        self._hook(space_id, pipeline)

        @pc.on("connectionstatechange")
        async def _state_changed() -> None:
            # Failed (ICE consent lost) or closed (the peer said DTLS goodbye, or we closed):
            # the session ends quietly and the mix goes on without this speaker.
            if pc.connectionState == "failed":
                self._lost.setdefault((space_id, user_id), time.monotonic())
            if pc.connectionState in ("failed", "closed"):
                await self._end(session, f"connection {pc.connectionState}")

        session.tasks.add(asyncio.create_task(self._until_track_ends(session, track)))
        session.tasks.add(asyncio.create_task(self._watch(session)))
        logger.info(
            "space %s: %s publishes (session %s, %s)",
            space_id,
            user_id,
            session.session_id,
            "sendrecv" if return_track else "sendonly",
        )
        return session.session_id, pc.localDescription.sdp

    async def _until_track_ends(self, session: _Session, track: MediaStreamTrack) -> None:
        """End the session when aiortc ends the voice track (the connection is closing).

        The track itself yields no audio: the packets go to the session's Voice (see rtc.py).
        """
        try:
            while True:
                await track.recv()
        except MediaStreamError:
            pass
        await self._end(session, "track ended")

    async def _watch(self, session: _Session) -> None:
        """End a session that never connects (the speaker went away before ICE completed), or
        whose audio stopped arriving (the speaker's connection dropped without a goodbye)."""
        started = previous = time.monotonic()
        while not session.ended:
            await asyncio.sleep(WATCH_INTERVAL)
            now = time.monotonic()
            woke_late = now - previous > 2 * WATCH_INTERVAL
            previous = now
            if woke_late:
                continue  # the loop itself was held up: let the audio queued meanwhile in first
            last = session.voice.last_packet_at
            if last is not None:
                if now - last > self.audio_timeout:
                    self._lost.setdefault((session.space_id, session.user_id), last)
                    silent = now - last
                    await self._end(session, f"no audio for {silent:.0f} s: connection lost")
                    return
            elif (
                now - started >= self.connect_timeout and session.pc.connectionState != "connected"
            ):
                await self._end(session, f"not connected after {self.connect_timeout:.0f} s")
                return

    # -- ICE after the answer (RFC 9725 §4.3.1) -----------------------------------------------

    def _allowed(self, candidates: tuple[str, ...]) -> list[str]:
        """The trickled candidates the node may check (the offer's rule: keep_candidates)."""
        if self.host_addresses is None:
            return list(candidates)
        kept = keep_candidates("".join(f"a={c}\r\n" for c in candidates), self.host_addresses)
        return [line[2:] for line in kept.splitlines() if line.startswith("a=candidate:")]

    async def trickle(self, space_id: str, session_id: str, fragment: Fragment) -> bool:
        """Add a client's trickled candidates to its session; False if there is no session."""
        session = self._sessions.get(space_id, {}).get(session_id)
        if session is None:
            return False
        await add_remote_candidates(
            session.pc, self._allowed(fragment.candidates), fragment.end_of_candidates
        )
        return True

    async def restart(self, space_id: str, session_id: str, fragment: Fragment) -> str | None:
        """Restart ICE with the client's new credentials: the answer's fragment, or None if
        there is no such session. Raises IceRestartFailed if the connection cannot."""
        session = self._sessions.get(space_id, {}).get(session_id)
        if session is None:
            return None
        assert fragment.ufrag is not None and fragment.pwd is not None
        ufrag, pwd, candidates = await restart_ice(
            session.pc,
            fragment.ufrag,
            fragment.pwd,
            self._allowed(fragment.candidates),
            fragment.end_of_candidates,
        )
        logger.info(
            "space %s: %s restarts ICE (session %s)",
            space_id,
            session.user_id,
            session.session_id,
        )
        return answer_fragment(session.answer, ufrag, pwd, candidates)

    def remote_ufrag(self, space_id: str, session_id: str) -> str | None:
        """The client's current ICE ufrag in the session (a PATCH with another restarts)."""
        session = self._sessions.get(space_id, {}).get(session_id)
        if session is None:
            return None
        return remote_ufrag(session.pc)

    # -- the mix-minus --------------------------------------------------------------------------

    def _hook(self, space_id: str, pipeline: LivePipeline) -> None:
        """Chain our voices onto the pipeline's before_mix hook and our mix-minus delivery onto
        its on_mix hook (once per pipeline)."""
        if self._hooked.get(space_id) is pipeline:
            return
        previous: Callable[[MixResult], None] | None = pipeline.on_mix
        previous_before: Callable[[], None] | None = pipeline.before_mix
        feeds = ReturnFeeds()

        def before_mix() -> None:
            if previous_before is not None:
                try:
                    previous_before()
                except Exception:
                    logger.exception("space %s: before_mix hook failed", space_id)
            for session in self._sessions.get(space_id, {}).values():
                # Each speaker's frame for this mix, taken now (the playout's clock).
                session.voice.fill(session.mixer_input)

        def on_mix(result: MixResult) -> None:
            if previous is not None:
                try:
                    previous(result)
                except Exception:
                    logger.exception("space %s: on_mix hook failed", space_id)
            self._deliver(space_id, result, feeds)

        pipeline.before_mix = before_mix
        pipeline.on_mix = on_mix
        self._hooked[space_id] = pipeline
        # When the space goes off the air, its speakers are let go.
        self.broadcasts.attach(space_id, lambda: self.close_space(space_id))

    def _deliver(self, space_id: str, result: MixResult, feeds: ReturnFeeds) -> None:
        sessions = self._sessions.get(space_id, {}).values()
        tracks = {
            session.user_id: session.return_track
            for session in sessions
            if session.return_track is not None
        }
        feeds.send(result, tracks)  # each distinct mix-minus encoded once (return_track.py)

    # -- ending sessions ------------------------------------------------------------------------

    def _detach(self, session: _Session, reason: str) -> bool:
        """Take a session out of the mix at once; False if it had already ended."""
        if session.ended:
            return False
        session.ended = True
        space = self._sessions.get(session.space_id, {})
        space.pop(session.session_id, None)
        if not space:
            self._sessions.pop(session.space_id, None)
        mixer = session.pipeline.mixer
        if mixer.inputs.get(session.user_id) is session.mixer_input:
            mixer.remove_input(session.user_id)
        if session.return_track is not None:
            session.return_track.stop()
        session.voice.close()
        current = asyncio.current_task()
        for task in session.tasks:
            if task is not current:
                task.cancel()
        buffer = session.voice.buffer
        logger.info(
            "space %s: %s stops publishing (session %s: %s); packets received %d, played %d,"
            " rebuilt from FEC %d, concealed %d, late %d, dropped %d; jitter target %d",
            session.space_id,
            session.user_id,
            session.session_id,
            reason,
            *(buffer.received, buffer.played, buffer.recovered, buffer.concealed),
            *(buffer.late, buffer.skipped, buffer.target),
        )
        return True

    async def _end(self, session: _Session, reason: str) -> None:
        if self._detach(session, reason):
            await session.pc.close()

    async def close(self, space_id: str, session_id: str) -> bool:
        """End one session (the WHIP DELETE); False if there is no such session."""
        session = self._sessions.get(space_id, {}).get(session_id)
        if session is None:
            return False
        self._lost.pop((space_id, session.user_id), None)  # a goodbye, not a lost connection
        await self._end(session, "closed")
        return True

    async def close_user(self, space_id: str, user_id: str) -> bool:
        """End ``user_id``'s session in the space, if any; True if there was one."""
        found = [s for s in self._sessions.get(space_id, {}).values() if s.user_id == user_id]
        for session in found:
            await self._end(session, "closed")
        return bool(found)

    async def close_space(self, space_id: str) -> None:
        """End every session of a space (it went off the air)."""
        for session in list(self._sessions.get(space_id, {}).values()):
            await self._end(session, "the space went off the air")
        self._hooked.pop(space_id, None)
        for key in [key for key in self._lost if key[0] == space_id]:
            del self._lost[key]

    async def close_all(self) -> None:
        """End every session on this node (shutdown)."""
        for space_id in list(self._sessions):
            await self.close_space(space_id)
        if self._background:
            await asyncio.wait(self._background, timeout=5)

    def sync(self, space: Space) -> None:
        """Apply the space's stage to its sessions: mutes, and who may still publish.

        Call after every change to the space. A session whose user may no longer publish (moved
        to the audience, removed, the space ended) leaves the mix at once; its peer connection
        is closed in the background.
        """
        for space_id, user_id in list(self._lost):
            if space_id == space.id and not space.may_publish(user_id):
                del self._lost[(space_id, user_id)]
        for session in list(self._sessions.get(space.id, {}).values()):
            if not space.may_publish(session.user_id):
                if self._detach(session, "may no longer publish"):
                    self._in_background(session.pc.close())
                continue
            member = space.members.get(session.user_id)
            session.mixer_input.muted = bool(member and member.muted)

    async def stage_changed(self, space: Space) -> None:
        """:meth:`sync` as a stage listener of the node (``Services.stage_listeners``)."""
        self.sync(space)

    def _in_background(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    # -- reading --------------------------------------------------------------------------------

    def sessions(self, space_id: str) -> list[SessionInfo]:
        """The live sessions of a space."""
        return [s.info() for s in self._sessions.get(space_id, {}).values()]

    def reconnecting(self, space_id: str, now: float | None = None) -> list[str]:
        """Who in the space is reconnecting: their audio stopped more than RECONNECTING_AFTER
        ago, or their connection was lost less than RECONNECT_GRACE ago and no audio came back
        since (through an ICE restart or a new session). Sorted user ids."""
        now = time.monotonic() if now is None else now
        users = set()
        with_session = set()
        for session in self._sessions.get(space_id, {}).values():
            with_session.add(session.user_id)
            key = (space_id, session.user_id)
            last = session.voice.last_packet_at
            if last is not None and now - last <= RECONNECTING_AFTER:
                self._lost.pop(key, None)  # the audio is back
            elif last is not None or key in self._lost:
                users.add(session.user_id)
        for (lost_space, user_id), since in list(self._lost.items()):
            if lost_space != space_id:
                continue
            if now - since > RECONNECT_GRACE and user_id not in with_session:
                del self._lost[(lost_space, user_id)]
            elif user_id not in with_session:
                users.add(user_id)
        return sorted(users)

    def get(self, space_id: str, session_id: str) -> SessionInfo | None:
        """One session of a space, or None."""
        session = self._sessions.get(space_id, {}).get(session_id)
        return session.info() if session else None
