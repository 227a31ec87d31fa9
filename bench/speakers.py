"""WebRTC speakers: speaker-to-speaker delay through the mix-minus, and server CPU per speaker.

A `causerie serve --rtc-host 127.0.0.1` process hosts one live space; speakers are aiortc
clients in this process publishing with WHIP (tests/fixtures/rtc.py), on loopback.

a. Delay. Speaker A sends a 1 kHz burst (100 ms) every second; speaker B is silent and records
   what it receives back (its mix-minus, i.e. A). For each burst: (wall time B's first loud
   frame came out of its decoder) minus (wall time A's first burst frame went into its
   encoder). Frame granularity: 20 ms. Measured twice: with aiortc clients as shipped (their
   receiver holds 80 ms of audio before decoding; a browser's jitter buffer adapts instead),
   and with that prefetch removed on the clients too, which leaves mostly the server's share.
b. Listener delay. Speaker A sends the same bursts; a listener follows the space's LL-HLS with
   blocking reloads (bench/_hls.py) and decodes every part as it arrives (PyAV: the part's
   packets, demuxed with the init section, into one AAC decoder kept across parts). For each
   burst: (wall time the part holding the burst's onset was fully received) minus (wall time
   A's first burst frame went into its encoder). Also shown: that plus the playlist's
   PART-HOLD-BACK, an estimate (not a measurement) of when a player holding back that much
   would play it. `--no-listener-delay` skips it.
c. CPU. With 0, then N speakers of whom T talk (`--mixes N/T,...`), each receiving its
   mix-minus, the server process's CPU (user + system, all threads, from /proc) over a window,
   as % of one core. Talkers send a tone at -12 dBFS; the others the idle floor of a
   microphone with noise suppression (white noise at -70 dBFS), with Opus DTX (one packet every
   400 ms) when the node's answer asks for it, as browsers do (`--no-dtx`: every 20 ms, like a
   client without DTX). The clients send Opus packets encoded once in advance
   (tests/fixtures/rtc.py's PacketTrack), so that they take little of the machine the server
   shares with them; they run in this process and decode what comes back. "heard" is the
   share of 20 ms frames received back above -40 dBFS, for the worst client among those who
   should hear a tone (everyone but a lone talker): the mix-minus really flows. A row "held"
   if every client got ≥ 97 % of its frames back and heard ≥ 95 %. The most speakers a space
   sustains on one core is extrapolated from the rows with 3 talking that held: where a
   straight line through them reaches 100 % of a core (on this 2-core machine the clients
   and the neighbours run out of CPU long before the server does).

    .venv/bin/python -m bench.speakers [--bursts 20] [--listener-bursts 15]
        [--no-listener-delay] [--mixes 1/1,10/10,10/1,10/2,10/3,20/3,30/3] [--no-dtx]
        [--seconds 10]
    .venv/bin/python -m bench.speakers --browsers RUNS [--bursts 20]

d. `--browsers RUNS`: instead of all the above, the delay between two Chromium speakers (their
   own Opus, jitter buffers and Web Audio), RUNS runs of `--bursts` bursts each
   (bench/_browser_speakers.py has the method).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import av
import httpx
import numpy as np
from tests.fixtures.rtc import (
    PacketTrack,
    Published,
    ToneTrack,
    asks_for_dtx,
    loopback_only,
    publish,
)
from tests.harness.causerie_process import CauserieProcess, causerie_process
from tests.harness.ports import HOST

from bench import _browser_speakers
from bench._common import (
    command_line,
    cpu_seconds,
    percentile,
    print_table,
    run_queue_seconds,
)
from bench._hls import PartEvent, directory_of, follow_live
from bench._http import Connection
from causerie.cli import issue_account_token
from causerie.domain.spaces import SpaceLimits
from causerie.store import SqliteStore, update_space

LOUD_DBFS = -40.0
BURST_EVERY = 1.0  # seconds: far more than any delay, so each onset matches its own burst
IDLE_DBFS = -70.0  # a quiet room through a browser's noise suppression


@contextlib.contextmanager
def run_server(log_level: str = "warning") -> Iterator[CauserieProcess]:
    """`causerie serve` with ICE on 127.0.0.1 only, in a temporary data directory."""
    flags = ("--rtc-host", HOST, "--log-level", log_level)
    with (
        tempfile.TemporaryDirectory(prefix="causerie-speakers-") as tmp,
        causerie_process(Path(tmp), "serve", *flags) as server,
    ):
        yield server


async def live_space(
    server: CauserieProcess, http: httpx.AsyncClient, speakers: int
) -> tuple[str, list[str]]:
    """A live space with the host and `speakers - 1` more on stage: (space id, their tokens).

    The stage's speaker limit (10 by default) is raised as far as needed: the benchmark
    measures what the media side sustains.
    """
    host_token = issue_account_token(server.data_dir, "Host", "u-host", days=1)
    host = {"Authorization": f"Bearer {host_token}"}
    space = (await http.post("/api/spaces", json={"title": "Bench"}, headers=host)).json()
    (await http.post(f"/api/spaces/{space['id']}/start", headers=host)).raise_for_status()
    joined = [
        (await http.post(f"/api/spaces/{space['id']}/join", json={"name": f"S{n}"})).json()
        for n in range(speakers - 1)
    ]
    # Straight through the domain, in the node's SQLite file: raise hands, approve them.
    store = SqliteStore(server.data_dir / "causerie.sqlite3")

    def promote(s) -> None:
        s.limits = SpaceLimits(max_speakers=max(speakers, SpaceLimits().max_speakers))
        for person in joined:
            s.request_to_speak(person["listener_id"], "S", s.started_at)
            s.answer_request("u-host", person["listener_id"], approve=True)

    try:
        await update_space(store, space["id"], promote)
    finally:
        await store.close()
    return space["id"], [host_token, *(person["token"] for person in joined)]


def level_dbfs(pcm: np.ndarray) -> float:
    power = float(np.mean(np.square(pcm.astype(np.float64) / 32768)))
    return 10 * np.log10(max(power, 1e-10))


async def measure_delay(
    http: httpx.AsyncClient, space_id: str, tokens: list[str], bursts: int, low_delay: bool
) -> list[float]:
    """Speaker A's bursts as heard back by speaker B; one delay (s) per burst."""
    sender = ToneTrack(1000, continuous=False)
    a = await publish(http, space_id, tokens[0], sender, low_delay=low_delay)
    silent = ToneTrack(440, continuous=False)  # never bursts
    b = await publish(http, space_id, tokens[1], silent, low_delay=low_delay)
    try:
        await a.wait_connected()
        await b.wait_connected()
        await asyncio.sleep(2)
        for _ in range(bursts):
            sender.burst(0.1)
            await asyncio.sleep(BURST_EVERY)
        await asyncio.sleep(BURST_EVERY)
        return _onsets(sender.burst_times, b)
    finally:
        await a.close()
        await b.close()


def _onsets(sent: list[float], receiver: Published) -> list[float]:
    delays = []
    loud = [(t, level_dbfs(pcm) > LOUD_DBFS) for t, pcm in receiver.received]
    for start in sent:
        for (t, is_loud), (_, was_loud) in zip(loud[1:], loud, strict=False):
            if t > start and is_loud and not was_loud:
                delays.append(t - start)
                break
    return delays


class PartDecoder:
    """Decodes LL-HLS parts (fMP4 moof+mdat) as they come, with one AAC decoder across parts."""

    def __init__(self, init: bytes) -> None:
        self.init = init
        self.codec: av.AudioCodecContext | None = None
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=48000)

    def decode(self, part: bytes) -> np.ndarray:
        """The part's audio as mono int16 PCM at 48 kHz."""
        with av.open(io.BytesIO(self.init + part), format="mp4") as container:
            stream = container.streams.audio[0]
            if self.codec is None:
                self.codec = av.CodecContext.create(stream.codec_context.name, "r")
                self.codec.extradata = stream.codec_context.extradata
            packets = list(container.demux(stream))
        chunks = []
        for packet in packets:
            if packet.size == 0:
                continue
            for frame in self.codec.decode(packet):
                frame.pts = None
                for out in self.resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)


def _part_hold_back(playlist: str) -> float:
    for line in playlist.splitlines():
        if "PART-HOLD-BACK=" in line:
            return float(line.split("PART-HOLD-BACK=", 1)[1].split(",")[0])
    return float("nan")


async def measure_listener_delay(
    server: CauserieProcess, http: httpx.AsyncClient, space_id: str, token: str, bursts: int
) -> tuple[list[float], float, int]:
    """Speaker A's bursts as received by an LL-HLS listener: (delays s, PART-HOLD-BACK, errors).

    A delay: wall time the part holding the burst's onset was fully received, minus wall time
    the burst's first frame left A's track (into aiortc's encoder).
    """
    playlist_path = (await http.get(f"/api/spaces/{space_id}")).json()["media_playlist_url"]
    sender = ToneTrack(1000, continuous=False)
    a = await publish(http, space_id, token, sender, receive=False)
    conn = Connection(HOST, int(server.url.rsplit(":", 1)[1]))
    # (received wall time, had a quiet->loud transition) per part, in order.
    parts: list[tuple[float, bool]] = []
    hold_back: list[float] = []
    decoder: list[PartDecoder] = []
    was_loud = [True]  # no onset counted before the first quiet window
    window = 480  # 10 ms

    def on_part(event: PartEvent) -> None:
        if not hold_back:
            hold_back.append(_part_hold_back(event.playlist))
        pcm = decoder[0].decode(event.data)
        onset = False
        for start in range(0, len(pcm) - window + 1, window):
            loud = level_dbfs(pcm[start : start + window]) > LOUD_DBFS
            onset = onset or (loud and not was_loud[0])
            was_loud[0] = loud
        parts.append((event.received, onset))

    try:
        await a.wait_connected()
        # The init section (EXT-X-MAP), once the playlist lists a part.
        deadline = time.monotonic() + 15
        while True:
            status, body = await conn.get(playlist_path)
            text = body.decode()
            if status == 200 and "#EXT-X-PART:" in text:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"no LL-HLS part listed at {playlist_path}")
            await asyncio.sleep(0.2)
        map_uri = text.split('#EXT-X-MAP:URI="', 1)[1].split('"', 1)[0]
        status, init = await conn.get(directory_of(playlist_path) + map_uri)
        if status != 200:
            raise RuntimeError(f"init section: HTTP {status}")
        decoder.append(PartDecoder(init))
        until = time.time() + 2 + bursts * BURST_EVERY + 2 * BURST_EVERY
        follower = asyncio.create_task(follow_live(conn, playlist_path, until, on_part))
        await asyncio.sleep(2)
        for _ in range(bursts):
            sender.burst(0.1)
            await asyncio.sleep(BURST_EVERY)
        errors = await follower
    finally:
        conn.close()
        await a.close()
    delays = []
    for sent in sender.burst_times:
        for received, onset in parts:
            if received > sent and onset:
                delays.append(received - sent)
                break
    return delays, hold_back[0] if hold_back else float("nan"), errors


async def measure_cpu(
    server: CauserieProcess,
    http: httpx.AsyncClient,
    space_id: str,
    tokens: list[str],
    count: int,
    talking: int,
    seconds: float,
    dtx: bool = True,
) -> dict[str, float | str]:
    """Server CPU (% of a core) with `count` speakers, `talking` of them talking."""
    clients = []
    dtx_used = False
    for n, token in enumerate(tokens[:count]):
        track = PacketTrack(300 + 100 * n) if n < talking else PacketTrack(None, IDLE_DBFS, seed=n)
        client = await publish(http, space_id, token, track, keep_audio=False)
        track.dtx = dtx and asks_for_dtx(client.answer)
        dtx_used = dtx_used or (track.dtx and track.idle)
        clients.append(client)
    # Who should hear a tone: everyone, but a lone talker hears only the idle others.
    hearing = [c for n, c in enumerate(clients) if talking >= 2 or n >= talking]
    try:
        for client in clients:
            await client.wait_connected()
        await asyncio.sleep(3)  # settle
        pid = server.process.pid
        frames0 = [c.counts.frames for c in clients]
        loud0 = [c.counts.loud for c in hearing]
        heard0 = [c.counts.frames for c in hearing]
        cpu0, queue0, own0 = cpu_seconds(pid), run_queue_seconds(pid), time.process_time()
        started = time.monotonic()
        await asyncio.sleep(seconds)
        wall = time.monotonic() - started
        cpu, queue, own = cpu_seconds(pid), run_queue_seconds(pid), time.process_time()
        back = [c.counts.frames - f for c, f in zip(clients, frames0, strict=True)]
        heard = [
            (c.counts.loud - loud) / max(1, c.counts.frames - frames)
            for c, loud, frames in zip(hearing, loud0, heard0, strict=True)
        ]
        return {
            "speakers": count,
            "talking": talking if count else 0,
            "server_cpu_pct": 100 * (cpu - cpu0) / wall,
            "server_waited_pct": 100 * (queue - queue0) / wall,
            "clients_cpu_pct": 100 * (own - own0) / wall,
            "frames_back_per_s": min(back, default=0) / wall,
            "heard_pct": 100 * min(heard) if heard else float("nan"),
            "idle_dtx": "yes" if dtx_used else "no",
        }
    finally:
        for client in clients:
            await client.close()
        await asyncio.sleep(1)


def sustained(row: dict[str, float | str]) -> bool:
    """Whether the mix-minus flowed: every client got ≥ 97 % of its 50 frames a second back,
    and those who should hear a tone heard it in ≥ 95 % of them."""
    heard = float(row["heard_pct"])
    return float(row["frames_back_per_s"]) >= 0.97 * 50 and not heard < 95


def most_speakers(rows: list[dict[str, float | str]], talking: int = 3) -> float:
    """Speakers (with `talking` talking) at which server CPU reaches 100 % of a core, from a
    least-squares line through the rows with that many talking that held (NaN with fewer
    than two)."""
    points = [
        (float(r["speakers"]), float(r["server_cpu_pct"]))
        for r in rows
        if r["talking"] == talking and sustained(r)
    ]
    if len({n for n, _ in points}) < 2:
        return float("nan")
    slope, intercept = np.polyfit(*zip(*points, strict=True), 1)
    return float((100 - intercept) / slope) if slope > 0 else float("inf")


def _browser_row(name: str, result: _browser_speakers.BrowserRun) -> list[object]:
    received = result.received
    return [
        name,
        f"{len(result.delays)}/{result.bursts}",
        *(1000 * percentile(result.delays, q) for q in (50, 99, 0, 100)),
        received.get("jitter_buffer_ms", float("nan")),
        received.get("target_ms", float("nan")),
    ]


async def browsers(runs: int, bursts: int) -> dict[str, list[float]]:
    """Speaker-to-speaker delay between two Chromium pages (bench/_browser_speakers.py),
    through the node and, interleaved, over a direct peer connection; p50s by path (s)."""
    rows = []
    notes = []
    p50s: dict[str, list[float]] = {"node": [], "direct": []}
    with run_server("info") as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            space_id, tokens = await live_space(server, http, 2)
        for run in range(runs):
            for path in ("node", "direct"):
                result = await _browser_speakers.measure(
                    server.url,
                    space_id if path == "node" else None,
                    (tokens[0], tokens[1]),
                    bursts,
                    BURST_EVERY,
                )
                p50s[path].append(percentile(result.delays, 50))
                rows.append(_browser_row(f"run {run + 1}, {path}", result))
            await asyncio.sleep(0.5)  # the sessions' ends are logged
            ended = [
                line.split("; ", 1)[1]
                for line in server.log.read_text(errors="replace").splitlines()
                if "u-host stops publishing" in line and "; packets" in line
            ]
            notes.append(f"  run {run + 1}: {ended[-1] if ended else '?'}")
    for path, values in p50s.items():
        rows.append(
            [f"median p50, {path}", "", 1000 * float(np.median(values)), "", "", "", "", ""]
        )
    print("\nspeaker-to-speaker delay, Chromium to Chromium on loopback: A's burst made in Web")
    print("Audio -> B's Web Audio hears it; through the node (WHIP, mix-minus), or A straight to B")
    print("(no node: what the two browsers cost). B jb: B's jitter buffer, mean delay and target.")
    print_table(["", "bursts", "p50 ms", "p99 ms", "min", "max", "B jb ms", "B jb target"], rows)
    print("the node's jitter buffer for speaker A, per run (from its log):", *notes, sep="\n")
    print(f"\ncores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.2f}")
    print(f"command: {command_line('speakers')}")
    return p50s


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bursts", type=int, default=20)
    parser.add_argument(
        "--listener-delay",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure speaker-to-LL-HLS-listener delay (~25 s)",
    )
    parser.add_argument("--listener-bursts", type=int, default=15)
    parser.add_argument(
        "--mixes",
        default="1/1,10/10,10/1,10/2,10/3,20/3,30/3",
        help="speakers/talking pairs for the CPU figure",
    )
    parser.add_argument(
        "--dtx",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="idle speakers use Opus DTX when the node asks for it (as browsers do)",
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="CPU window per mix")
    parser.add_argument(
        "--browsers",
        type=int,
        default=0,
        metavar="RUNS",
        help="only the delay between two Chromium speakers, over RUNS runs of --bursts",
    )
    args = parser.parse_args()
    if args.browsers:
        await browsers(args.browsers, args.bursts)
        return
    mixes = [tuple(int(n) for n in mix.split("/")) for mix in args.mixes.split(",")]
    loopback_only()
    with run_server() as server:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            most = max([2, *(count for count, _ in mixes)])
            space_id, tokens = await live_space(server, http, most)
            rows = []
            for low_delay in (False, True):
                delays = await measure_delay(http, space_id, tokens, args.bursts, low_delay)
                client = "aiortc, no prefetch" if low_delay else "aiortc as shipped (80 ms)"
                figures = [1000 * percentile(delays, q) for q in (50, 99, 0, 100)]
                rows.append([client, f"{len(delays)}/{args.bursts}", *figures])
            print("\nspeaker-to-speaker delay over loopback (A's encoder in -> B's decoder out)")
            print_table(["client jitter buffer", "bursts", "p50 ms", "p99 ms", "min", "max"], rows)
            if args.listener_delay:
                n = args.listener_bursts
                delays, hold, errors = await measure_listener_delay(
                    server, http, space_id, tokens[0], n
                )
                heard = [d + hold for d in delays]
                rows = [
                    [
                        "part with onset received (measured)",
                        f"{len(delays)}/{n}",
                        *(1000 * percentile(delays, q) for q in (50, 99, 0, 100)),
                    ],
                    [
                        f"+ PART-HOLD-BACK {hold:.3f} s (estimate)",
                        f"{len(heard)}/{n}",
                        *(1000 * percentile(heard, q) for q in (50, 99, 0, 100)),
                    ],
                ]
                print(
                    "\nspeaker-to-listener delay over loopback (A's encoder in -> LL-HLS part "
                    f"holding the onset fully received; follower errors: {errors})"
                )
                print_table(["figure", "bursts", "p50 ms", "p99 ms", "min", "max"], rows)
                print(
                    "  the second row is an estimate of what a listener hears: a player that"
                    " holds back PART-HOLD-BACK behind the live edge; not measured"
                )
            results = []
            for count, talking in [(0, 0), *mixes]:
                results.append(
                    await measure_cpu(
                        server, http, space_id, tokens, count, talking, args.seconds, args.dtx
                    )
                )
            print("\nserver CPU with N WebRTC speakers, T of them talking (% of one core)")
            print_table(
                [
                    "speakers",
                    "talking",
                    "server CPU %",
                    "server waited %",
                    "clients CPU %",
                    "frames back/s",
                    "heard %",
                    "idle DTX",
                ],
                [list(r.values()) for r in results],
            )
            base = results[0]["server_cpu_pct"]
            for r in results[1:]:
                each = (r["server_cpu_pct"] - base) / r["speakers"]
                print(f"  {r['speakers']}/{r['talking']}: {each:.1f} % of a core per speaker")
            held = [int(r["speakers"]) for r in results[1:] if sustained(r)]
            print(
                f"  the most speakers measured with the mix-minus flowing: {max(held, default=0)}"
            )
            print(
                "  most speakers one space sustains on one core (3 talking, extrapolated from"
                f" the rows that held): {most_speakers(results):.0f}"
            )
    print(f"\ncores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.2f}")
    print(f"command: {command_line('speakers')}")


if __name__ == "__main__":
    asyncio.run(main())
