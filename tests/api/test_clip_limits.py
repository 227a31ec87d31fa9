"""Clips cannot fill the disk (SECURITY.md): rate limits per address and per space, bounds in
bytes per space and per node, a reserve of free disk kept for recordings, and the same range
is one file that costs nothing to ask for again. A real node; the recording is written fast
(encoded tone through the real packager and recorder) instead of in real time."""

from __future__ import annotations

from pathlib import Path

import httpx

from causerie.media.encoder import AacEncoder
from causerie.media.packager import Packager
from causerie.media.recorder import Recorder
from tests.conftest import account
from tests.harness.in_process import run_node
from tests.media.test_recorder import tone


def record(root: Path, space_id: str, seconds: float) -> None:
    """`seconds` of tone recorded for `space_id`, as its pipeline would have."""
    encoder = AacEncoder()
    packager = Packager(
        run_id="r1", first_msn=0, audio_specific_config=encoder.audio_specific_config
    )
    recorder = Recorder(root, space_id, "r1", packager.init)
    packager.on_segment = recorder.record
    for frame in encoder.encode(tone(seconds)) + encoder.flush():
        packager.add(frame, 1_800_000_000 + frame.pts / 48000)
    packager.end()
    recorder.close()


async def recorded_space(client: httpx.AsyncClient, data_dir: Path, seconds: float = 60) -> str:
    """An ended space with `seconds` of recording."""
    host = account(data_dir, user="u-host")
    created = await client.post(
        "/api/spaces", json={"title": "Clips", "recording": False}, headers=host
    )
    space_id = created.json()["id"]
    for step in ("start", "end"):
        assert (await client.post(f"/api/spaces/{space_id}/{step}", headers=host)).is_success
    record(data_dir / "recordings", space_id, seconds)
    return space_id


async def clip(
    client: httpx.AsyncClient, space_id: str, start: float, length: float = 10, address: str = ""
) -> httpx.Response:
    headers = {"X-Forwarded-For": address} if address else {}
    return await client.post(
        f"/api/spaces/{space_id}/clips",
        json={"start": start, "end": start + length},
        headers=headers,
    )


def clip_files(data_dir: Path, space_id: str) -> list[Path]:
    return sorted((data_dir / "recordings" / space_id / "clips").glob("*.m4a"))


async def test_one_address_is_limited_and_cannot_drain_the_space(tmp_path: Path) -> None:
    """The finding: one client made 116 clips in 20 s. Now 5, then one per 10 s; and its
    refused requests do not use up what the space's other listeners may cut."""
    async with (
        run_node(tmp_path / "data", trusted_proxies=("127.0.0.1",)) as node,
        httpx.AsyncClient(base_url=node.url, timeout=30) as client,
    ):
        space_id = await recorded_space(client, node.data_dir)
        frozen = node.app.services.clock()
        node.app.services.clock = lambda: frozen  # no bucket refills during the test
        statuses = [
            (await clip(client, space_id, n, address="198.51.100.7")).status_code for n in range(25)
        ]
        assert statuses == [201] * 5 + [429] * 20
        refused = await clip(client, space_id, 40, address="198.51.100.7")
        assert refused.json()["error"] == "too_many_requests"
        assert 1 <= int(refused.headers["retry-after"]) <= 10
        assert len(clip_files(node.data_dir, space_id)) == 5
        # The space's bucket (burst 30) still has 25 clips for everyone else, then refuses.
        others = [
            (await clip(client, space_id, 0.5 + n, address=f"203.0.113.{n}")).status_code
            for n in range(26)
        ]
        assert others == [201] * 25 + [429]


async def test_the_same_range_is_one_file_and_free_to_ask_again(node, client) -> None:
    space_id = await recorded_space(client, node.data_dir)
    answers = [await clip(client, space_id, 12) for _ in range(20)]
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["url"] for a in answers}) == 1
    assert len(clip_files(node.data_dir, space_id)) == 1
    # Asking again cost no rate: new ranges are still allowed.
    assert (await clip(client, space_id, 13)).status_code == 201


async def test_clips_are_bounded_in_bytes_per_space_and_in_all(tmp_path: Path) -> None:
    async with (
        run_node(
            tmp_path / "data",
            trusted_proxies=("127.0.0.1",),
            clip_bytes_per_space=200_000,
            clip_bytes_total=350_000,
        ) as node,
        httpx.AsyncClient(base_url=node.url, timeout=30) as client,
    ):
        first = await recorded_space(client, node.data_dir)
        second = await recorded_space(client, node.data_dir)
        statuses = []
        for n in range(6):
            statuses.append((await clip(client, first, n, address=f"203.0.113.{n}")).status_code)
        made = statuses.count(201)
        assert statuses == [201] * made + [507] * (6 - made) and 1 <= made < 6
        used = sum(f.stat().st_size for f in clip_files(node.data_dir, first))
        assert 200_000 <= used < 200_000 + 100_000  # over by less than one 10 s clip
        full = await clip(client, first, 30, address="203.0.113.99")
        assert full.status_code == 507
        assert full.json()["error"] == "insufficient_storage"
        assert "this space's clips" in full.json()["message"]
        # Existing clips are still shared; the other space may cut until the node's bound.
        assert (await clip(client, first, 0, address="203.0.113.98")).status_code == 201
        statuses = [
            (await clip(client, second, n, address=f"198.51.100.{n}")).status_code for n in range(6)
        ]
        assert 507 in statuses
        last = await clip(client, second, 50, address="198.51.100.99")
        assert "room for clips is full" in last.json()["message"]


async def test_disk_kept_for_recordings_is_never_used_for_clips(tmp_path: Path) -> None:
    """Below the reserve of free disk (here: more than the disk has), no clip and no replay
    download is made: what is left goes to the recordings of live spaces."""
    async with (
        run_node(tmp_path / "data", min_free_disk_bytes=2**62) as node,
        httpx.AsyncClient(base_url=node.url, timeout=30) as client,
    ):
        space_id = await recorded_space(client, node.data_dir)
        refused = await clip(client, space_id, 0)
        assert refused.status_code == 507, refused.text
        assert "short of disk space" in refused.json()["message"]
        assert clip_files(node.data_dir, space_id) == []
        download = await client.get(f"/replay/{space_id}.m4a")
        assert download.status_code == 507
        assert not (node.data_dir / "recordings" / space_id / "replay.m4a").exists()
