"""Captions: caption delay, CPU per captioned space, word error rate, and the media loop with
captions on vs off under CPU saturation.

a. Offline, in this process: the shipped recording (tests/data/speech.wav, synthetic speech)
   cut at pauses and decoded one utterance at a time, as the recognizer does
   (captions/recognizer.py): WER against its text, and decoding CPU-seconds per second of
   audio, for each model this machine has (tiny.en comes with the install; `--models` may name
   more, found offline only: nothing is downloaded).
b. Live: a `causerie serve --captions-max 1` process hosts one space; an aiortc speaker in
   this process publishes the recording over WHIP `--loops` times back to back (one space
   speaking continuously, with the recording's one-second pauses between sentences); a
   listener in this process follows the space's live events (the feed's windows, as the
   listener page does). Caption delay: for each final line, its arrival at the listener minus
   the end of its utterance in the program audio (the end of the last voiced chunk, the line's
   `end` minus the padding the cutter adds), p50 / p99. CPU per space: the recognizer process's
   CPU time (/proc) over the speaking time, as a share of one core. WER of what the listener got.
c. The media loop: the same live space, speaking, while `--hogs` processes spin on every core
   (CPU saturation), once with captions on and once off (a new node each): the node's
   media-loop lateness histogram and late parts (/metrics) over `--seconds`; off and on in
   turn, `--rounds` times, since other work on the machine drifts; then two nodes at once,
   one with captions and one without, each with a space speaking, under the same spinning.

    .venv/bin/python -m bench.captions [--loops 4] [--seconds 30] [--hogs 3] [--rounds 2]
        [--models tiny.en,base.en]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import re
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from tests.captions.feed_reader import FeedReader
from tests.conftest import account
from tests.fixtures.rtc import loopback_only, publish
from tests.fixtures.speech import SENTENCES, SpeechTrack, read_speech
from tests.harness.causerie_process import CauserieProcess, causerie_process
from tests.harness.polling import eventually

from bench._common import (
    command_line,
    cpu_seconds,
    load_average,
    percentile,
    print_table,
    write_result,
)
from causerie.captions.model import ModelError, resolve_model
from causerie.captions.recognizer import SAMPLE_RATE, Stream, StreamingVad, _decode, downsample
from causerie.captions.utterances import CutPolicy
from causerie.captions.wer import word_error_rate

PAD = CutPolicy().pad


def offline(model_name: str) -> dict[str, object]:
    """WER and decoding CPU of one model on the shipped recording, in this process."""
    from faster_whisper import WhisperModel

    try:
        model = resolve_model(model_name)
    except ModelError as exc:
        return {"model": model_name, "error": str(exc)}
    whisper = WhisperModel(str(model.directory), device="cpu", compute_type="int8", cpu_threads=2)
    audio = downsample(read_speech())
    stream = Stream(CutPolicy(), StreamingVad())
    texts: list[str] = []
    decoding = 0.0
    began = time.process_time()
    utterances = []
    for i in range(0, len(audio), 320):
        utterances += list(stream.add(1000 + i / SAMPLE_RATE, audio[i : i + 320]))
    utterances += list(stream.finish())
    vad = time.process_time() - began
    for _, _, piece in utterances:
        start = time.process_time()
        texts.append(_decode(whisper, piece, 5))
        decoding += time.process_time() - start
    seconds = len(audio) / SAMPLE_RATE
    return {
        "model": model_name,
        "wer": word_error_rate(" ".join(SENTENCES), " ".join(texts)),
        "cpu_per_audio_second": (decoding + vad) / seconds,
        "utterances": len(utterances),
        "text": " ".join(texts),
    }


def recognizer_pid(server: int) -> int | None:
    """The captions process: the node's child started by multiprocessing's spawn (not its
    resource tracker)."""
    # Any thread may have started it (the node starts processes from a worker thread).
    children = " ".join(
        task.read_text() for task in Path(f"/proc/{server}/task").glob("*/children")
    )
    for pid in children.split():
        command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        if "spawn_main" in command:
            return int(pid)
    return None


async def speaking_space(node: CauserieProcess, http: httpx.AsyncClient, loops: int):
    host = account(node.data_dir)
    created = await http.post("/api/spaces", json={"title": "Bench"}, headers=host)
    space_id = created.json()["id"]
    await http.post(f"/api/spaces/{space_id}/start", headers=host)
    return space_id, host


async def live(node: CauserieProcess, loops: int) -> dict[str, object]:
    async with httpx.AsyncClient(base_url=node.url, timeout=30) as http:
        space_id, host = await speaking_space(node, http, loops)

        async def captioning() -> bool:
            details = (await http.get(f"/api/spaces/{space_id}")).json()
            return details["captions_state"] == "on"

        await eventually(captioning, 120, "captions on", every=0.25)
        await eventually(lambda: recognizer_pid(node.pid) is not None, 10, "the recognizer")
        recognizer = recognizer_pid(node.pid)
        assert recognizer is not None
        listener = FeedReader(http, space_id).start()
        track = SpeechTrack(np.tile(read_speech(), loops))
        session = await publish(http, space_id, host["Authorization"].split()[1], track)
        await session.wait_connected()
        await eventually(lambda: track.started is not None, 10, "speech starting")
        cpu0, wall0 = cpu_seconds(recognizer), time.monotonic()
        await eventually(lambda: track.ended is not None, 30 * loops, "the speech played")
        cpu1, wall1 = cpu_seconds(recognizer), time.monotonic()
        expected = len(SENTENCES) * loops
        with contextlib.suppress(AssertionError):
            await eventually(lambda: len(listener.of_type("caption")) >= expected, 15, "lines")
        await session.close()
        await listener.stop()
    lines = listener.of_type("caption")
    delays = [arrived - (event["data"]["end"] - PAD) for arrived, event in lines]
    heard = " ".join(event["data"]["text"] for _, event in lines)
    return {
        "lines": len(lines),
        "expected_lines": expected,
        "delay_p50": percentile(delays, 50),
        "delay_p99": percentile(delays, 99),
        "delay_max": max(delays, default=float("nan")),
        "recognizer_cpu": (cpu1 - cpu0) / (wall1 - wall0),
        "wer": word_error_rate(" ".join(SENTENCES * loops), heard),
    }


def spin() -> None:
    while True:
        pass


def lateness(metrics: str) -> dict[str, float]:
    found = {}
    for name, value in re.findall(
        r'^causerie_media_loop_lateness_seconds_bucket\{le="([^"]+)"\} (\S+)$', metrics, re.M
    ):
        found[name] = float(value)
    for name in ("causerie_parts_late_total", "causerie_media_frames_skipped_total"):
        match = re.search(rf"^{name} (\S+)$", metrics, re.M)
        found[name] = float(match[1]) if match else 0.0
    return found


async def saturated(
    nodes: list[CauserieProcess], seconds: float, hogs: int
) -> list[dict[str, object]]:
    """Each node's media-loop figures over the same `seconds`, a space speaking in each, while
    `hogs` processes spin."""
    async with contextlib.AsyncExitStack() as stack:
        clients, sessions = [], []
        for server in nodes:
            http = await stack.enter_async_context(
                httpx.AsyncClient(base_url=server.url, timeout=30)
            )
            space_id, host = await speaking_space(server, http, 1)
            track = SpeechTrack(np.tile(read_speech(), 1 + int(seconds / 19) + 2))
            session = await publish(http, space_id, host["Authorization"].split()[1], track)
            await session.wait_connected()
            clients.append(http)
            sessions.append(session)

            async def settled(http: httpx.AsyncClient = http, space_id: str = space_id) -> bool:
                details = (await http.get(f"/api/spaces/{space_id}")).json()
                return details["captions_state"] in ("on", "unavailable")  # (off: max 0)

            await eventually(settled, 120, "captions on, or none on this node", every=0.25)
        await asyncio.sleep(3)
        before = [lateness((await http.get("/metrics")).text) for http in clients]
        context = multiprocessing.get_context("spawn")
        spinners = [context.Process(target=spin, daemon=True) for _ in range(hogs)]
        for spinner in spinners:
            spinner.start()
        try:
            await asyncio.sleep(seconds)
            after = [lateness((await http.get("/metrics")).text) for http in clients]
        finally:
            for spinner in spinners:
                spinner.kill()
                spinner.join()
        for session in sessions:
            await session.close()
    return [_loop_figures(b, a) for b, a in zip(before, after, strict=True)]


def _loop_figures(before: dict[str, float], after: dict[str, float]) -> dict[str, object]:
    ticks = after["+Inf"] - before["+Inf"]
    over = {bound: ticks - (after[bound] - before[bound]) for bound in ("0.02", "0.05", "0.2133")}
    return {
        "ticks": ticks,
        "late_over_20ms": over["0.02"],
        "late_over_50ms": over["0.05"],
        "late_over_one_part": over["0.2133"],
        "parts_late": after["causerie_parts_late_total"] - before["causerie_parts_late_total"],
        "frames_skipped": after["causerie_media_frames_skipped_total"]
        - before["causerie_media_frames_skipped_total"],
    }


def node(folder: Path, captions: bool):
    flags = ["--rtc-host", "127.0.0.1", "--log-level", "warning"]
    return causerie_process(folder, "serve", *flags, "--captions-max", "1" if captions else "0")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loops", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--hogs", type=int, default=(os.cpu_count() or 2) + 1)
    parser.add_argument("--models", default="tiny.en,base.en")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    loopback_only()
    result: dict[str, object] = {}

    models = [offline(name) for name in args.models.split(",")]
    result["offline"] = models
    print("\na. the shipped recording, decoded offline (utterance by utterance, as live)")
    print_table(
        ["model", "WER", "CPU-s per audio s", "utterances"],
        [
            [m["model"], m["wer"], m["cpu_per_audio_second"], m["utterances"]]
            if "error" not in m
            else [m["model"], "not on this machine", "-", "-"]
            for m in models
        ],
    )
    for m in models:
        if "error" in m:
            print(f"  {m['model']}: {m['error']}")

    with tempfile.TemporaryDirectory(prefix="causerie-bench-") as folder:
        with node(Path(folder) / "live", True) as server:
            figures = await live(server, args.loops)
        result["live"] = figures
        print(f"\nb. one space speaking continuously ({args.loops} × 19 s), tiny.en, live")
        print_table(
            ["lines", "delay p50 s", "delay p99 s", "max s", "CPU (share of a core)", "WER"],
            [
                [
                    f"{figures['lines']}/{figures['expected_lines']}",
                    figures["delay_p50"],
                    figures["delay_p99"],
                    figures["delay_max"],
                    figures["recognizer_cpu"],
                    figures["wer"],
                ]
            ],
        )
        rows = []
        runs: list[dict[str, object]] = []
        # Off and on in turn, `--rounds` times (the machine's other work drifts over minutes),
        # then both at once, side by side under the same load: the fairest comparison here.
        for round_number in range(args.rounds):
            for captions in (False, True):
                name = "on" if captions else "off"
                with node(Path(folder) / f"{name}{round_number}", captions) as server:
                    (loop,) = await saturated([server], args.seconds, args.hogs)
                runs.append({"captions": name, **loop})
                rows.append([f"captions {name} ({round_number + 1})", *loop.values()])
        with (
            node(Path(folder) / "side-off", False) as off,
            node(Path(folder) / "side-on", True) as on,
        ):
            pair = await saturated([off, on], args.seconds, args.hogs)
        for name, loop in zip(("off", "on"), pair, strict=True):
            runs.append({"captions": name, "side_by_side": True, **loop})
            rows.append([f"captions {name}, side by side", *loop.values()])
        result["saturated"] = runs
        print(
            f"\nc. the media loop while {args.hogs} processes spin ({args.seconds:.0f} s,"
            " a space speaking)"
        )
        print_table(
            ["", "ticks", "late >20 ms", ">50 ms", "> one part", "parts late", "skipped"], rows
        )
    result["load_average"] = load_average()
    path = write_result("captions", result)
    print(f"\ncores: {os.cpu_count()}; load average: {load_average()}; results: {path}")
    print(f"command: {command_line('captions')}")


if __name__ == "__main__":
    asyncio.run(main())
