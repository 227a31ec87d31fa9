"""`causerie backup` and `causerie restore`: a data directory to one file and back, safely
while the node runs.

A backup is a gzip-compressed tar file:

    causerie.sqlite3, stats.sqlite3   copies made with SQLite's online backup API
    secret.key                        the signing secrets (tokens stay valid after a restore)
    recordings/…                      with --with-recordings: every recording, as on disk
    causerie-backup.json              last: what the file holds, each member's size and SHA-256

Copying a SQLite file with `cp` while a node writes to it may copy half a transaction, and
misses what is still in its write-ahead log. The online backup API (sqlite3_backup_step, run
in one step) copies a consistent snapshot of the database, WAL included, while the node goes
on writing (in WAL mode a reader never blocks the writer). Each database is consistent on its
own; the two are copied one after the other, so the audience numbers may be a second newer
than the spaces. A live recording's index is read first and only the segments it names are
copied: each is complete on disk before its index line is written (media/recorder.py).

A restore checks everything before it changes anything: every member's name, size and
checksum against the manifest, each database's `PRAGMA integrity_check`, the secret file's
form. A damaged or foreign file is refused with nothing touched. It refuses to restore into
the data directory of a running node: it needs the exclusive lock every node shares while it
runs (node/data_dir.py), and holds it while it works, so no node starts meanwhile. `force`
restores anyway, each database in one transaction through the backup API (the running node
reads the restored spaces and questions at once), but what that node holds in memory (its
secrets, the audience numbers not yet saved, the recordings it is writing) is not restored:
restart it at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from .. import __version__
from ..media.recorder import INDEX_NAME, SAFE_ID, Recording
from ..media.retention import REMOVED_NAME
from .data_dir import RECORDINGS_DIR, SECRET_FILE, STATS_FILE, STORE_FILE, DataDirLock, Locked

__all__ = ["MANIFEST", "BackupError", "Summary", "backup", "restore"]

MANIFEST = "causerie-backup.json"
FORMAT = "causerie-backup"
VERSION = 1
DATABASES = (STORE_FILE, STATS_FILE)
# Most of a backup with recordings is AAC, which does not compress; level 1 keeps it fast
# and still shrinks the databases' JSON several times.
COMPRESS_LEVEL = 1
CHUNK = 1 << 20

_RECORDED = re.compile(
    rf"{RECORDINGS_DIR}/[A-Za-z0-9_-]{{1,32}}/"
    rf"({re.escape(INDEX_NAME)}|replay\.m4a|{re.escape(REMOVED_NAME)}"
    r"|[A-Za-z0-9_-]{1,32}/(init\.mp4|[0-9]{1,12}\.m4s)"
    r"|clips/[A-Za-z0-9_-]{1,32}\.[0-9]{1,9}-[0-9]{1,9}\.m4a)"
)
"""The only recording files a backup holds (and a restore accepts): what recorder.py,
clips.py and retention.py write, never a partial file or anything else."""


class BackupError(Exception):
    """Why a backup or a restore could not be done, for people (the CLI exits with 2)."""


@dataclass(frozen=True)
class Summary:
    """What a backup holds, or what a restore put back."""

    path: Path
    created_at: str
    spaces: int
    questions: int
    recordings: int
    bytes: int


# Backup


def backup(data_dir: Path, to: Path, *, with_recordings: bool = False) -> Summary:
    """Write a backup of `data_dir` to `to` (a new file; written whole, then renamed)."""
    if not data_dir.is_dir():
        raise BackupError(f"there is no data directory {data_dir}")
    if not (data_dir / STORE_FILE).is_file():
        raise BackupError(
            f"{data_dir} holds no {STORE_FILE}: nothing to back up. With --redis the nodes "
            "keep their state in Redis: back that up with Redis' own tools (BGSAVE, AOF)"
        )
    if to.exists():
        raise BackupError(f"{to} exists already; choose a new name (nothing was written)")
    if not to.parent.is_dir():
        raise BackupError(f"there is no directory {to.parent} to write {to.name} into")
    created_at = datetime.now(UTC).isoformat(timespec="seconds")
    files: dict[str, dict[str, Any]] = {}
    recordings = 0
    spaces = questions = 0
    with tempfile.TemporaryDirectory(dir=to.parent, prefix=f".{to.name}.") as scratch:
        partial = Path(scratch) / "backup.tar.gz"
        try:
            with tarfile.open(partial, "w:gz", compresslevel=COMPRESS_LEVEL) as tar:
                for name in DATABASES:
                    if (data_dir / name).is_file():
                        copy = Path(scratch) / name
                        _copy_database(data_dir / name, copy)
                        if name == STORE_FILE:
                            spaces, questions = _count_database(copy)
                        with open(copy, "rb") as file:
                            files[name] = _add(tar, name, file)
                secret = data_dir / SECRET_FILE
                if secret.is_file():
                    files[SECRET_FILE] = _add_bytes(tar, SECRET_FILE, secret.read_bytes())
                if with_recordings:
                    recordings = _add_recordings(tar, data_dir / RECORDINGS_DIR, files)
                manifest = {
                    "format": FORMAT,
                    "version": VERSION,
                    "causerie": __version__,
                    "created_at": created_at,
                    "recordings": with_recordings,
                    "files": files,
                }
                _add_bytes(tar, MANIFEST, json.dumps(manifest, indent=1).encode())
            os.chmod(partial, 0o600)  # it holds the signing secret
            os.replace(partial, to)
        except OSError as exc:
            raise BackupError(f"could not write {to}: {exc.strerror or exc}") from exc
        except sqlite3.Error as exc:
            raise BackupError(f"could not copy the databases of {data_dir}: {exc}") from exc
    return Summary(to, created_at, spaces, questions, recordings, to.stat().st_size)


def _copy_database(source: Path, copy: Path) -> None:
    """A consistent copy of a live database (sqlite3_backup, all pages in one step)."""
    # Opened read-write (a read-only connection may not read a WAL it cannot index), but
    # nothing is written: the backup only reads the source.
    src = sqlite3.connect(source, timeout=10)
    dst = sqlite3.connect(copy)
    try:
        src.backup(dst)  # pages=-1: one step, so one snapshot, however busy the node is
        if dst.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise BackupError(f"{source} is damaged (PRAGMA quick_check); it was not backed up")
    finally:
        dst.close()
        src.close()


def _add(tar: tarfile.TarFile, name: str, file: IO[bytes]) -> dict[str, Any]:
    """Add an open file to the archive; its size and SHA-256 for the manifest."""
    size = os.fstat(file.fileno()).st_size
    reader = _Hashing(file)
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o600
    info.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(info, reader)
    return {"size": size, "sha256": reader.hash.hexdigest()}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> dict[str, Any]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    info.mtime = int(datetime.now(UTC).timestamp())
    tar.addfile(info, io.BytesIO(data))
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


class _Hashing:
    """A file read through a SHA-256 (tarfile reads exactly the size it was told)."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.hash = hashlib.sha256()

    def read(self, size: int = -1) -> bytes:
        data = self.file.read(size)
        self.hash.update(data)
        return data


def _add_recordings(tar: tarfile.TarFile, root: Path, files: dict[str, Any]) -> int:
    """Every recording under `root`, live ones as far as their index goes; how many."""
    count = 0
    for space_dir in sorted(root.iterdir()) if root.is_dir() else []:
        if not (space_dir.is_dir() and SAFE_ID.fullmatch(space_dir.name)):
            continue
        count += 1
        prefix = f"{RECORDINGS_DIR}/{space_dir.name}"
        try:
            index = (space_dir / INDEX_NAME).read_bytes()
        except FileNotFoundError:
            index = None
        # Read after the index: names every segment the copied index names (and maybe more).
        recording = Recording.load(root, space_dir.name)
        names = {f"{s.run_id}/init.mp4" for s in recording.segments}
        names.update(s.uri for s in recording.segments)
        if index is not None:
            files[f"{prefix}/{INDEX_NAME}"] = _add_bytes(tar, f"{prefix}/{INDEX_NAME}", index)
        for path in sorted(space_dir.rglob("*")):
            relative = path.relative_to(space_dir).as_posix()
            member = f"{prefix}/{relative}"
            segment = relative.endswith((".m4s", "/init.mp4"))
            if relative == INDEX_NAME or not path.is_file() or not _RECORDED.fullmatch(member):
                continue
            if segment and relative not in names:
                continue  # being written now, or left by a crash: not in the index
            try:
                with open(path, "rb") as file:
                    files[member] = _add(tar, member, file)
            except FileNotFoundError:
                continue  # removed meanwhile (retention, a clip replaced)
    return count


# Restore


def restore(data_dir: Path, source: Path, *, force: bool = False) -> Summary:
    """Put the backup `source` back into `data_dir` (see the module docstring)."""
    if not source.is_file():
        raise BackupError(f"there is no backup file {source}")
    parent = data_dir.absolute().parent
    if not parent.is_dir():
        raise BackupError(f"there is no directory {parent} to restore {data_dir.name} into")
    if data_dir.exists() and not data_dir.is_dir():
        raise BackupError(f"{data_dir} is not a directory")
    with tempfile.TemporaryDirectory(dir=parent, prefix=f".{data_dir.name}.restore-") as scratch:
        staged = Path(scratch)
        manifest = _unpack(source, staged)
        _check(staged, manifest)
        data_dir.mkdir(exist_ok=True)
        lock = DataDirLock(data_dir, exclusive=True)
        try:
            lock.acquire()
        except Locked:
            if not force:
                raise BackupError(
                    f"a causerie node is running on {data_dir} (it holds {lock.path}): stop it "
                    "first, or pass --force to restore under it and restart it right after"
                ) from None
        try:
            _check_destinations(data_dir, manifest)
            _install(staged, data_dir, manifest)
        finally:
            lock.release()
        spaces, questions = _count_database(data_dir / STORE_FILE)
    recordings = len({name.split("/")[1] for name in manifest["files"] if "/" in name})
    size = sum(int(f["size"]) for f in manifest["files"].values())
    return Summary(data_dir, manifest["created_at"], spaces, questions, recordings, size)


def _unpack(source: Path, staged: Path) -> dict[str, Any]:
    """Every member of the archive into `staged`, checked by name; the manifest."""
    try:
        with tarfile.open(source, "r:gz") as tar:
            for info in tar:
                _unpack_member(tar, info, staged)
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise BackupError(f"{source} is not a causerie backup, or it is damaged: {exc}") from None
    try:
        manifest = json.loads((staged / MANIFEST).read_text("utf-8"))
    except (OSError, ValueError):
        raise BackupError(f"{source} is not a causerie backup (no readable {MANIFEST})") from None
    if not (
        isinstance(manifest, dict)
        and manifest.get("format") == FORMAT
        and isinstance(manifest.get("files"), dict)
        and isinstance(manifest.get("created_at"), str)
    ):
        raise BackupError(f"{source} is not a causerie backup ({MANIFEST} is not one's)")
    if manifest.get("version") != VERSION:
        raise BackupError(
            f"{source} is a backup of version {manifest.get('version')!r}; this causerie "
            f"reads version {VERSION}"
        )
    return manifest


def _unpack_member(tar: tarfile.TarFile, info: tarfile.TarInfo, staged: Path) -> None:
    name = info.name
    allowed = name in (*DATABASES, SECRET_FILE, MANIFEST) or _RECORDED.fullmatch(name)
    if not allowed or not info.isreg():
        # Never a path of the archive's choosing: only the names a backup writes.
        raise BackupError(f"the backup holds {name!r}, which no causerie backup holds")
    destination = staged / name
    destination.parent.mkdir(parents=True, exist_ok=True)
    source = tar.extractfile(info)
    if source is None:
        raise BackupError(f"the backup's member {name!r} cannot be read")
    fd = os.open(destination, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with source, os.fdopen(fd, "wb") as out:
        shutil.copyfileobj(source, out, CHUNK)


def _check(staged: Path, manifest: dict[str, Any]) -> None:
    """Every file as the manifest says, the databases sound, the secret well-formed."""
    listed = set(manifest["files"])
    present = {
        path.relative_to(staged).as_posix() for path in staged.rglob("*") if path.is_file()
    } - {MANIFEST}
    if listed != present:
        missing = sorted(listed - present)[:3]
        extra = sorted(present - listed)[:3]
        raise BackupError(f"the backup is incomplete: missing {missing}, unlisted {extra}")
    for name, expected in manifest["files"].items():
        digest = hashlib.sha256()
        with open(staged / name, "rb") as file:
            while chunk := file.read(CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != expected.get("sha256"):
            raise BackupError(f"the backup is damaged: {name} does not match its checksum")
    if STORE_FILE not in listed:
        raise BackupError(f"the backup holds no {STORE_FILE}")
    for name in DATABASES:
        if name in listed:
            _check_database(staged / name)
    if SECRET_FILE in listed:
        lines = (staged / SECRET_FILE).read_text("ascii", errors="replace").split()
        if not lines or not all(re.fullmatch(r"[0-9a-f]{32,256}", line) for line in lines):
            raise BackupError(f"the backup's {SECRET_FILE} is not a causerie secret file")


def _check_database(path: Path) -> None:
    try:
        db = sqlite3.connect(path)  # a copy of ours, in the scratch directory
        try:
            result = db.execute("PRAGMA integrity_check").fetchone()[0]
            if path.name == STORE_FILE:
                db.execute("SELECT count(*) FROM spaces").fetchone()
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise BackupError(f"the backup's {path.name} is not a sound database: {exc}") from None
    if result != "ok":
        raise BackupError(f"the backup's {path.name} is damaged: {result}")


def _check_destinations(data_dir: Path, manifest: dict[str, Any]) -> None:
    """Refuse before writing anything if a database to replace is no database at all."""
    for name in DATABASES:
        path = data_dir / name
        if name in manifest["files"] and path.exists():
            try:
                db = sqlite3.connect(path, timeout=10)
                try:
                    db.execute("PRAGMA schema_version").fetchone()
                finally:
                    db.close()
            except sqlite3.Error as exc:
                raise BackupError(
                    f"{path} is not a SQLite database ({exc}); move it away and restore again"
                ) from None


def _install(staged: Path, data_dir: Path, manifest: dict[str, Any]) -> None:
    for name in DATABASES:
        if name in manifest["files"]:
            _restore_database(staged / name, data_dir / name)
    if SECRET_FILE in manifest["files"]:
        os.chmod(staged / SECRET_FILE, 0o600)
        os.replace(staged / SECRET_FILE, data_dir / SECRET_FILE)
    if manifest.get("recordings"):
        _swap_recordings(staged / RECORDINGS_DIR, data_dir / RECORDINGS_DIR)


def _restore_database(source: Path, destination: Path) -> None:
    """Overwrite `destination` with `source`, in one transaction (the backup API, so that the
    destination's own write-ahead log is dealt with by SQLite, never left to apply to the new
    pages), and leave it in WAL mode as the node opens it."""
    src = sqlite3.connect(source)
    dst = sqlite3.connect(destination, timeout=10)
    try:
        dst.execute("PRAGMA busy_timeout=10000")
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=WAL")
    finally:
        dst.close()
        src.close()


def _swap_recordings(restored: Path, destination: Path) -> None:
    """The backup's recordings in place of the directory's (renamed, so never half of each)."""
    restored.mkdir(exist_ok=True)
    old: Path | None = None
    if destination.exists():
        old = destination.with_name(f".{destination.name}.before-restore")
        if old.exists():
            shutil.rmtree(old)
        os.replace(destination, old)
    os.replace(restored, destination)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# Counting what is there


def _count_database(path: Path) -> tuple[int, int]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        spaces = db.execute("SELECT count(*) FROM spaces").fetchone()[0]
        questions = db.execute("SELECT count(*) FROM questions").fetchone()[0]
    return int(spaces), int(questions)
