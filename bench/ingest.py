"""Speakers from outside: WHIP publishers on a network of their own, and what the audience hears.

Each publisher is an independent WebRTC stack in its own network namespace (tests/fixtures/
netns.py: a veth, 10.78.N.2 on its side, the node on 10.78.N.1): GStreamer's webrtcbin (Debian's
1.22), Chromium with a plain RTCPeerConnection page, aiortc. Each sends an 880 Hz tone at -12
dBFS; a listener follows the space's LL-HLS with blocking reloads and decodes every part.

a. First audio. Per client, `--runs` publishes: (wall time the first LL-HLS part carrying the
   tone was fully received by the listener) minus (wall time just before the client POSTed its
   offer). Includes ICE, DTLS, the mixer, the AAC encoder and a ~213 ms part.
b. Loss. GStreamer publishing with Opus in-band FEC on (`opusenc inband-fec=true`), nftables in
   its namespace dropping N % of its UDP packets at random. Over `--seconds` of the audience's
   output: the share of 20 ms frames carrying the tone at full level (within 2 dB, and at least
   90 % of the frame's energy), tests/fixtures/outside.py `frames_with_tone`. With `--delay`
   and `--jitter`, every UDP packet the publisher sends (ICE, DTLS, RTP, RTCP) is also held
   delay ± jitter ms (uniform, each packet on its own, so they overtake each other as with
   netem) by a userspace netem on an NFQUEUE (tests/fixtures/netem.py): this kernel has no
   `sch_netem`.

Needs root (namespaces), iproute2, nftables, iptables, GStreamer (`make test-deps`), Chromium.

    .venv/bin/python -m bench.ingest [--runs 5] [--clients gstreamer,chromium,aiortc]
        [--loss 0,2,5,10] [--seconds 30] [--encoders defaults,fec] [--delay MS --jitter MS]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
from tests.fixtures.netns import Namespace, available, namespace, shaping_available
from tests.fixtures.outside import (
    CLIENTS,
    Publisher,
    first_tone_sample,
    frames_with_tone,
)
from tests.harness.processes import stop

from bench._common import command_line, median, print_table, write_result
from bench._hls import PartEvent, directory_of, follow_live
from bench._http import Connection
from bench.speakers import PartDecoder
from causerie.cli import issue_account_token

FREQ = 880.0
LEVEL = 0.25  # -12 dBFS: audiotestsrc volume=0.25, and the others' tones


@dataclass
class Node:
    process: subprocess.Popen[bytes]
    url: str
    port: int
    data_dir: Path


@contextlib.contextmanager
def serve(ns: Namespace) -> Iterator[Node]:
    """`causerie serve` on the node side of the namespace's veth (HTTP and ICE)."""
    with tempfile.TemporaryDirectory(prefix="causerie-ingest-") as tmp:
        data_dir = Path(tmp)
        log = (data_dir / "server.log").open("wb")
        port = 18000 + os.getpid() % 1000
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "causerie", "serve", "--host", ns.node_address),
                *("--port", str(port), "--data-dir", str(data_dir)),
                *("--rtc-host", ns.node_address, "--log-level", "info"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"http://{ns.node_address}:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"causerie exited with code {process.returncode}")
                with contextlib.suppress(httpx.TransportError):
                    if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("causerie did not start in 30 s")
                time.sleep(0.1)
            yield Node(process, url, port, data_dir)
        finally:
            stop(process)
            log.close()


@dataclass
class Listener:
    """Follows a space's LL-HLS and keeps every part's audio with its arrival time."""

    host: str
    port: int
    playlist_path: str
    parts: list[tuple[float, np.ndarray]] = field(default_factory=list)
    task: asyncio.Task[int] | None = None

    async def start(self, until: float) -> None:
        conn = Connection(self.host, self.port)
        deadline = time.monotonic() + 15
        while True:
            status, body = await conn.get(self.playlist_path)
            text = body.decode()
            if status == 200 and "#EXT-X-PART:" in text:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("no LL-HLS part listed")
            await asyncio.sleep(0.2)
        map_uri = text.split('#EXT-X-MAP:URI="', 1)[1].split('"', 1)[0]
        status, init = await conn.get(directory_of(self.playlist_path) + map_uri)
        decoder = PartDecoder(init)

        def on_part(event: PartEvent) -> None:
            self.parts.append((event.received, decoder.decode(event.data)))

        self.task = asyncio.create_task(follow_live(conn, self.playlist_path, until, on_part))

    def audio_since(self, index: int) -> np.ndarray:
        chunks = [pcm for _, pcm in self.parts[index:]]
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)

    async def first_tone_after(self, index: int, timeout: float) -> float:
        """Wall time the first part (from ``index`` on) carrying the tone was received."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for received, pcm in self.parts[index:]:
                if first_tone_sample(pcm, FREQ, LEVEL) is not None:
                    return received
            await asyncio.sleep(0.05)
        raise TimeoutError("the tone never reached the LL-HLS output")


async def first_audio(
    ns: Namespace, node: Node, listener: Listener, space_id: str, token: str, client: str
) -> float:
    """One publish by ``client``: seconds from its POST to the tone in the output."""
    start = len(listener.parts)
    publisher = Publisher(ns, client, f"{node.url}/whip/{space_id}", token, freq=FREQ)
    try:
        posted = await asyncio.to_thread(publisher.wait_for, "posted", 60)
        answered = await asyncio.to_thread(publisher.wait_for, "answered", 30)
        if answered.get("status") != 201:
            raise RuntimeError(f"{client}: WHIP answered {answered}")
        try:
            heard = await listener.first_tone_after(start, 30)
        except TimeoutError as exc:
            raise TimeoutError(f"{client}: {exc}; {publisher.tail()}") from None
        return heard - posted["t"]
    finally:
        publisher.stop()
        await asyncio.sleep(1.5)  # the tone leaves the output before the next run


async def loss_share(
    ns: Namespace,
    node: Node,
    listener: Listener,
    space_id: str,
    token: str,
    percent: float,
    seconds: float,
    fec: bool,
    delay: float = 0.0,
    jitter: float = 0.0,
) -> float:
    """Frames with the tone at full level while ``percent`` % of the publisher's UDP is lost
    (and, with ``delay`` or ``jitter`` in ms, each packet held delay ± jitter, uniform)."""
    extra = ["--fec"] if fec else []
    with contextlib.ExitStack() as stack:
        if delay or jitter:
            # For the whole session (ICE, DTLS included); the loss is nftables', as without.
            stack.enter_context(ns.shape_udp(delay, jitter))
        publisher = Publisher(
            ns, "gstreamer", f"{node.url}/whip/{space_id}", token, freq=FREQ, extra=extra
        )
        try:
            await asyncio.to_thread(publisher.wait_for, "answered", 60)
            await listener.first_tone_after(len(listener.parts), 30)
            ns.drop_udp(percent)
            await asyncio.sleep(3)  # settle: the encoder learns the loss from RTCP
            start = len(listener.parts)
            await asyncio.sleep(seconds)
            return frames_with_tone(listener.audio_since(start), FREQ, LEVEL)
        finally:
            ns.drop_udp(0)
            publisher.stop()
            await asyncio.sleep(1.5)


def last_session_counts(node: Node) -> str:
    """The node's jitter buffer counters for the session that ended last, and the media
    loop's stalls so far (from its log)."""
    lines = (node.data_dir / "server.log").read_text(errors="replace").splitlines()
    ended = [line for line in lines if "stops publishing" in line and "; packets" in line]
    stalls = [line.rsplit(": ", 1)[-1] for line in lines if "media loop" in line]
    counts = ended[-1].split("; ", 1)[1] if ended else "?"
    return f"{counts}; media loop stalls so far: {len(stalls)} {stalls[-3:]}"


async def run(args: argparse.Namespace) -> dict[str, object]:
    reason = shaping_available() if args.delay or args.jitter else available()
    if reason:
        raise SystemExit(f"bench.ingest: {reason}")
    clients = [c for c in args.clients.split(",") if c]
    rates = [float(r) for r in args.loss.split(",") if r]
    result: dict[str, object] = {"first_audio": {}, "loss": {}}
    with namespace() as ns, serve(ns) as node:
        token = issue_account_token(node.data_dir, "Host", "u-host", days=1)
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=node.url, timeout=10) as http:
            space = (await http.post("/api/spaces", json={"title": "In"}, headers=headers)).json()
            (
                await http.post(f"/api/spaces/{space['id']}/start", headers=headers)
            ).raise_for_status()
        budget = args.runs * len(clients) * 40 + len(rates) * (args.seconds + 60) + 60
        listener = Listener(
            node.url.split("//")[1].split(":")[0], node.port, space["media_playlist_url"]
        )
        await listener.start(time.time() + budget)
        rows = []
        for client in clients if args.runs > 0 else []:
            times = []
            for _ in range(args.runs):
                times.append(await first_audio(ns, node, listener, space["id"], token, client))
            result["first_audio"][client] = times  # type: ignore[index]
            rows.append([client, f"{median(times):.2f}", f"{min(times):.2f}", f"{max(times):.2f}"])
        if rows:
            print("a. POST to first audio in the LL-HLS output (s)")
            print_table(["client", "p50", "min", "max"], rows)
        if rates and args.runs == 0:
            # A publish to warm the node up (first decoder, first peer connection) off the books.
            await first_audio(ns, node, listener, space["id"], token, "gstreamer")
        rows, notes = [], []
        encoders = [e == "fec" for e in args.encoders.split(",") if e]
        for percent in rates:
            row = [f"{percent:g} %"]
            for fec in encoders:
                share = await loss_share(
                    ns,
                    *(node, listener, space["id"], token, percent, args.seconds, fec),
                    *(args.delay, args.jitter),
                )
                result["loss"][f"{percent:g}{' fec' if fec else ''}"] = share  # type: ignore[index]
                row.append(f"{100 * share:.1f} %")
                await asyncio.sleep(0.5)  # the session's end is logged
                notes.append(f"  {percent:g} %{' fec' if fec else ''}: {last_session_counts(node)}")
            rows.append(row)
        if rows:
            link = f", {args.delay:g} ± {args.jitter:g} ms" if args.delay or args.jitter else ""
            print(
                f"b. GStreamer, random UDP loss{link}: audience frames with the tone at full level"
            )
            names = {False: "opusenc defaults", True: "voice + in-band FEC"}
            print_table(["loss", *(names[fec] for fec in encoders)], rows)
            print("the node's jitter buffer, per publish (from its log):", *notes, sep="\n")
        if listener.task is not None:
            listener.task.cancel()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="publishes per client (default 5)")
    parser.add_argument("--clients", default=",".join(CLIENTS))
    parser.add_argument("--loss", default="0,2,5,10", help="loss rates in %% (default 0,2,5,10)")
    parser.add_argument("--seconds", type=float, default=30.0, help="measured per loss rate")
    parser.add_argument(
        "--encoders", default="defaults,fec", help="GStreamer's opusenc: defaults and/or fec"
    )
    parser.add_argument("--delay", type=float, default=0.0, help="ms added to each packet")
    parser.add_argument("--jitter", type=float, default=0.0, help="± ms, uniform (netem.py)")
    args = parser.parse_args()
    result = asyncio.run(run(args))
    path = write_result("ingest", {"args": vars(args), **result})
    print(f"\nreproduce: {command_line('ingest')}   (figures: {path})")


if __name__ == "__main__":
    main()
