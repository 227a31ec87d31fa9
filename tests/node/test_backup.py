"""`causerie backup` and `causerie restore`: a backup taken while a node writes restores to a
fresh node serving the same spaces and questions; recordings go along when asked; a running
node's data is not overwritten unless forced; bad input is a clear error, exit 2, and nothing
is overwritten."""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from causerie.cli import issue_account_token, main
from causerie.node.backup import MANIFEST
from tests.api.test_clip_limits import recorded_space
from tests.conftest import account
from tests.harness.causerie_process import causerie_process
from tests.harness.in_process import run_node

CLI = (sys.executable, "-m", "causerie")


def causerie(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The real command line, in a process of its own."""
    return subprocess.run(
        [*CLI, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )


@dataclass
class Writer:
    """A thread writing spaces and questions to a node until stopped (bounded in count and time),
    remembering what the node acknowledged, in order."""

    url: str
    data_dir: Path
    headers: dict[str, str]
    spaces: dict[str, str] = field(default_factory=dict)  # id -> title
    questions: dict[str, list[str]] = field(default_factory=dict)  # space id -> texts
    stop: threading.Event = field(default_factory=threading.Event)
    errors: list[str] = field(default_factory=list)

    def acknowledged(self) -> tuple[dict[str, str], dict[str, list[str]]]:
        return dict(self.spaces), {k: list(v) for k, v in self.questions.items()}

    def run(self) -> None:
        deadline = time.monotonic() + 60
        with httpx.Client(base_url=self.url, timeout=10) as client:
            for n in range(600):
                if self.stop.is_set() or time.monotonic() > deadline:
                    return
                title = f"Space {n} written during the backup"
                created = client.post("/api/spaces", json={"title": title}, headers=self.headers)
                if created.status_code != 201:
                    self.errors.append(created.text)
                    continue
                space_id = created.json()["id"]
                self.spaces[space_id] = title
                # Another account and client address for each space's questions (the node
                # believes 127.0.0.1's X-Forwarded-For): the rate limits are not what is tested.
                asker = issue_account_token(self.data_dir, "Asker", f"u-{n}", days=1)
                headers = {
                    "Authorization": f"Bearer {asker}",
                    "X-Forwarded-For": f"10.0.{n // 250}.{n % 250}",
                }
                for k in range(2):
                    text = f"Question {k} about space {n}?"
                    asked = client.post(
                        f"/api/spaces/{space_id}/questions", json={"text": text}, headers=headers
                    )
                    if asked.status_code == 201:
                        self.questions.setdefault(space_id, []).append(text)
                    else:
                        self.errors.append(asked.text)


def question_texts(client: httpx.Client, space_id: str) -> list[str]:
    answer = client.get(f"/api/spaces/{space_id}/questions")
    assert answer.status_code == 200, answer.text
    return sorted(q["text"] for q in answer.json()["questions"])


def test_a_backup_taken_during_writes_restores_to_a_fresh_node_serving_the_same(tmp_path: Path):
    with causerie_process(tmp_path / "first", "serve", "--trusted-proxy", "127.0.0.1") as first:
        token = issue_account_token(first.data_dir, "Hana", "u-hana", days=1)
        writer = Writer(first.url, first.data_dir, {"Authorization": f"Bearer {token}"})
        thread = threading.Thread(target=writer.run, daemon=True)
        thread.start()
        try:
            deadline = time.monotonic() + 30
            while len(writer.spaces) < 15 and time.monotonic() < deadline and thread.is_alive():
                time.sleep(0.05)
            spaces_before, questions_before = writer.acknowledged()
            assert len(spaces_before) >= 15, writer.errors[:3]
            made = causerie("backup", "--data-dir", first.data_dir, "--to", tmp_path / "b.tgz")
            written_during = len(writer.spaces) - len(spaces_before)
            time.sleep(0.5)
        finally:
            writer.stop.set()
            thread.join(30)
        assert made.returncode == 0, made.stderr
        assert made.stdout.startswith(f"Backed up {first.data_dir} to {tmp_path / 'b.tgz'}")
        assert written_during > 0  # the node was being written to while the backup ran
        assert not writer.errors, writer.errors[:3]
        assert stat.S_IMODE(os.stat(tmp_path / "b.tgz").st_mode) == 0o600
        spaces_after, questions_after = writer.acknowledged()

    restored = causerie("restore", "--data-dir", tmp_path / "second" / "data", "--from", "b.tgz")
    assert restored.returncode == 2  # a relative path that is not there: refused
    assert "there is no backup file b.tgz" in restored.stderr
    (tmp_path / "second").mkdir()
    restored = causerie(
        "restore", "--data-dir", tmp_path / "second" / "data", "--from", tmp_path / "b.tgz"
    )
    assert restored.returncode == 0, restored.stderr
    assert "Restored the backup of" in restored.stdout

    with (
        causerie_process(tmp_path / "second", "serve") as second,
        httpx.Client(base_url=second.url, timeout=10) as client,
    ):
        # Everything acknowledged before the backup began is there, as it was (questions asked
        # meanwhile may be there too).
        for space_id, title in spaces_before.items():
            answer = client.get(f"/api/spaces/{space_id}")
            assert answer.status_code == 200, answer.text
            assert answer.json()["title"] == title
            questions = set(question_texts(client, space_id))
            assert set(questions_before.get(space_id, [])) <= questions
        # Nothing that was not written; what was written meanwhile is there whole or not at all.
        listed = client.get("/api/spaces").json()["spaces"]
        assert {s["id"] for s in listed} <= set(spaces_after)
        for space in listed:
            assert space["title"] == spaces_after[space["id"]]
            assert set(question_texts(client, space["id"])) <= set(
                questions_after.get(space["id"], [])
            )
        # The signing secret came along: the first node's tokens work on the second.
        some = next(iter(spaces_before))
        edited = client.patch(
            f"/api/spaces/{some}",
            json={"title": "Edited after the restore"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert edited.status_code == 200, edited.text
    secret = tmp_path / "second" / "data" / "secret.key"
    assert secret.read_bytes() == (tmp_path / "first" / "data" / "secret.key").read_bytes()
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600


async def test_recordings_go_along_when_asked_and_replay_on_the_restored_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    async with (
        run_node(tmp_path / "first") as first,
        httpx.AsyncClient(base_url=first.url, timeout=30) as client,
    ):
        space_id = await recorded_space(client, first.data_dir, 10)
        playlist = (await client.get(f"/replay/{space_id}/index.m3u8")).text
        without = tmp_path / "without.tgz"
        assert main(["backup", "--data-dir", str(first.data_dir), "--to", str(without)]) == 0
        assert "0 recordings" in capsys.readouterr().out
        full = tmp_path / "full.tgz"
        argv = ["backup", "--data-dir", str(first.data_dir), "--to", str(full)]
        assert main([*argv, "--with-recordings"]) == 0
        assert "1 recordings" in capsys.readouterr().out
    with tarfile.open(full) as tar:
        names = tar.getnames()
    assert names[-1] == MANIFEST
    assert f"recordings/{space_id}/index.jsonl" in names
    assert f"recordings/{space_id}/r1/init.mp4" in names

    assert main(["restore", "--data-dir", str(tmp_path / "second"), "--from", str(full)]) == 0
    async with (
        run_node(tmp_path / "second") as second,
        httpx.AsyncClient(base_url=second.url, timeout=30) as client,
    ):
        assert (await client.get(f"/replay/{space_id}/index.m3u8")).text == playlist
        assert (await client.get(f"/replay/{space_id}.m4a")).status_code == 200
    # A backup without recordings leaves the directory's recordings as they are.
    assert main(["restore", "--data-dir", str(tmp_path / "second"), "--from", str(without)]) == 0
    assert (tmp_path / "second" / "recordings" / space_id / "index.jsonl").is_file()


async def test_restore_refuses_a_running_nodes_data_unless_forced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    async with run_node(tmp_path / "other") as other, httpx.AsyncClient(base_url=other.url) as c:
        created = await c.post(
            "/api/spaces", json={"title": "From the backup"}, headers=account(other.data_dir)
        )
        from_backup = created.json()["id"]
    backup_file = tmp_path / "other.tgz"
    assert main(["backup", "--data-dir", str(tmp_path / "other"), "--to", str(backup_file)]) == 0

    async with (
        run_node(tmp_path / "running") as running,
        httpx.AsyncClient(base_url=running.url, timeout=10) as client,
    ):
        store = running.data_dir / "causerie.sqlite3"
        before = digest(store)
        restore = ["restore", "--data-dir", str(running.data_dir), "--from", str(backup_file)]
        assert main(restore) == 2
        error = capsys.readouterr().err
        assert "a causerie node is running on" in error and "--force" in error
        assert digest(store) == before
        assert (await client.get(f"/api/spaces/{from_backup}")).status_code == 404

        assert main([*restore, "--force"]) == 0
        assert "Restart the node now." in capsys.readouterr().out
        # Each database was replaced in one transaction under the node, which reads it at once.
        assert (await client.get(f"/api/spaces/{from_backup}")).status_code == 200


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data directory with a store and a secret, as a node that ran leaves it."""
    directory = tmp_path / "data"
    from causerie.node.config import Config
    from causerie.node.factory import build_services

    _, shared = build_services(Config(data_dir=directory))
    shared.lock.release()  # type: ignore[union-attr]
    return directory


def snapshot(directory: Path) -> dict[str, str]:
    return {
        p.relative_to(directory).as_posix(): digest(p)
        for p in sorted(directory.rglob("*"))
        if p.is_file() and p.name != "node.lock"
    }


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str | Path) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


def test_backup_bad_input_is_a_clear_error_and_writes_nothing(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
):
    code, err = run_cli(capsys, "backup", "--data-dir", tmp_path / "nope", "--to", tmp_path / "x")
    assert (code, err) == (2, f"causerie backup: there is no data directory {tmp_path / 'nope'}\n")
    (tmp_path / "empty").mkdir()
    code, err = run_cli(capsys, "backup", "--data-dir", tmp_path / "empty", "--to", tmp_path / "x")
    assert code == 2 and "holds no causerie.sqlite3" in err and "Redis" in err
    existing = tmp_path / "existing.tgz"
    existing.write_bytes(b"keep me")
    code, err = run_cli(capsys, "backup", "--data-dir", data_dir, "--to", existing)
    assert code == 2 and "exists already" in err
    assert existing.read_bytes() == b"keep me"
    code, err = run_cli(capsys, "backup", "--data-dir", data_dir, "--to", tmp_path / "no" / "x")
    assert code == 2 and f"there is no directory {tmp_path / 'no'}" in err
    assert not list(tmp_path.glob(".*"))  # no partial file left behind


def tampered(good: Path, to: Path, change: str) -> Path:
    """A copy of the backup `good` with one thing wrong."""
    members: list[tuple[tarfile.TarInfo, bytes]] = []
    with tarfile.open(good) as tar:
        for info in tar:
            file = tar.extractfile(info)
            members.append((info, file.read() if file else b""))
    if change == "flipped byte":
        info, data = members[0]
        members[0] = (info, bytes([data[0] ^ 1]) + data[1:])
    elif change == "escaping path":
        evil = tarfile.TarInfo("../escaped.txt")
        members.insert(0, (evil, b"outside"))
    elif change == "future version":
        info, data = members[-1]
        manifest = json.loads(data)
        manifest["version"] = 99
        members[-1] = (info, json.dumps(manifest).encode())
    elif change == "no manifest":
        members.pop()
    with tarfile.open(to, "w:gz") as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return to


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("random bytes", "is not a causerie backup, or it is damaged"),
        ("truncated", "is not a causerie backup, or it is damaged"),
        ("flipped byte", "does not match its checksum"),
        ("escaping path", "'../escaped.txt', which no causerie backup holds"),
        ("future version", "is a backup of version 99"),
        ("no manifest", "no readable causerie-backup.json"),
    ],
)
def test_restore_of_a_bad_backup_is_refused_and_overwrites_nothing(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str], change: str, message: str
):
    good = tmp_path / "good.tgz"
    assert main(["backup", "--data-dir", str(data_dir), "--to", str(good)]) == 0
    bad = tmp_path / "bad.tgz"
    if change == "random bytes":
        bad.write_bytes(os.urandom(5000))
    elif change == "truncated":
        bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    else:
        tampered(good, bad, change)
    target = tmp_path / "target"
    target.mkdir()
    (target / "causerie.sqlite3").write_bytes(b"the data a bad restore must not touch")
    before = snapshot(target)
    code, err = run_cli(capsys, "restore", "--data-dir", target, "--from", bad)
    assert code == 2
    assert err.startswith("causerie restore: ") and message in err, err
    assert snapshot(target) == before
    assert not (tmp_path / "escaped.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # scratch removed


def test_restore_bad_paths_are_refused(
    tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]
):
    good = tmp_path / "good.tgz"
    assert main(["backup", "--data-dir", str(data_dir), "--to", str(good)]) == 0
    code, err = run_cli(capsys, "restore", "--data-dir", tmp_path / "t", "--from", tmp_path / "no")
    assert code == 2 and f"there is no backup file {tmp_path / 'no'}" in err
    code, err = run_cli(capsys, "restore", "--data-dir", tmp_path / "a" / "b", "--from", good)
    assert code == 2 and f"there is no directory {tmp_path / 'a'}" in err
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    code, err = run_cli(capsys, "restore", "--data-dir", a_file, "--from", good)
    assert code == 2 and "is not a directory" in err
    # A database in the way that is no database: refused before anything is replaced.
    target = tmp_path / "target"
    target.mkdir()
    (target / "causerie.sqlite3").write_bytes(b"not a database " * 100)
    (target / "secret.key").write_text("ab" * 32 + "\n")
    before = snapshot(target)
    code, err = run_cli(capsys, "restore", "--data-dir", target, "--from", good)
    assert code == 2 and "is not a SQLite database" in err
    assert snapshot(target) == before


def test_a_node_does_not_start_while_a_restore_holds_its_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    from causerie.node.data_dir import DataDirLock

    data = tmp_path / "data"
    data.mkdir()
    with DataDirLock(data, exclusive=True):  # as `causerie restore` holds it while it works
        code, err = run_cli(capsys, "serve", "--data-dir", data, "--port", "0")
    assert code == 2
    assert "is being restored" in err and "start the node once it has finished" in err
