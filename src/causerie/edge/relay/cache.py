"""The relay's objects: each fetched once, streamed to every reader as it arrives, kept as
long as the origin allows within a memory bound. No I/O here: the fetch feeds an `Entry`, the
listener connections follow it (`Reader`), and the clock is passed in.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from typing import Protocol

MAX_OBJECT = 8 * 1024 * 1024
"""An object larger than this is streamed to the readers it has, never kept (a 3.84 s segment
of 64 kbit/s audio is ~31 KB, a window of events a few KB)."""


class Reader(Protocol):
    """A listener's response following an entry."""

    def headers_ready(self, entry: Entry) -> None:
        """The origin's status and headers arrived (and any body bytes so far)."""

    def data(self, entry: Entry, data: bytes, framed: bytes) -> None:
        """New body bytes; `framed`: the same as one chunk of chunked transfer (RFC 9112 §7.1)."""

    def finished(self, entry: Entry) -> None:
        """The body is complete."""

    def failed(self, entry: Entry) -> None:
        """The fetch failed: before the headers (the reader answers 502) or after (cut off)."""


class Entry:
    """One object: fetched once, its bytes kept as they arrive, followed by its readers."""

    __slots__ = (
        "body",
        "chunks",
        "complete",
        "expires",
        "failed",
        "fields",
        "keep",
        "key",
        "length",
        "readers",
        "size",
        "status",
        "stored",
    )

    def __init__(self, key: str, keep: bool = True) -> None:
        self.key = key
        self.keep = keep
        """Kept for later readers once complete (if the origin allows): False for a pass."""
        self.status = 0
        """The origin's status; 0 until its headers arrived."""
        self.fields = b""
        """The origin's header fields to send on (`name: value\\r\\n` each), hop-by-hop ones out."""
        self.length: int | None = None
        """The origin's Content-Length, if it sent one (else it streams with chunks)."""
        self.chunks: list[bytes] = []
        self.body: bytes | None = None
        """The whole body, once complete."""
        self.size = 0
        self.complete = False
        self.failed = False
        self.expires = 0.0
        """When a complete entry stops being fresh (the relay's clock); 0: not kept."""
        self.stored = 0.0
        """When it was complete (for `Age`)."""
        self.readers: dict[Reader, None] = {}

    @property
    def received(self) -> bytes:
        """The body bytes received so far."""
        if self.body is not None:
            return self.body
        if len(self.chunks) > 1:
            self.chunks = [b"".join(self.chunks)]
        return self.chunks[0] if self.chunks else b""

    @property
    def fetching(self) -> bool:
        return not (self.complete or self.failed)

    def follow(self, reader: Reader) -> None:
        """A reader starts following: it is sent what exists so far at once, then the rest."""
        if self.failed:
            reader.failed(self)
        elif self.complete:
            reader.headers_ready(self)
            reader.finished(self)
        else:
            self.readers[reader] = None
            if self.status:
                reader.headers_ready(self)

    def leave(self, reader: Reader) -> None:
        self.readers.pop(reader, None)

    def start(self, status: int, fields: bytes, length: int | None) -> None:
        self.status = status
        self.fields = fields
        self.length = length
        for reader in list(self.readers):
            reader.headers_ready(self)

    def append(self, data: bytes) -> None:
        if self.keep:
            self.chunks.append(data)
        self.size += len(data)
        if self.size > MAX_OBJECT:
            self.keep = False  # streamed on, not kept (and not joinable mid-way)
            self.chunks.clear()
        framed = b"%x\r\n%b\r\n" % (len(data), data)
        # One loop writes the new bytes to every reader (each drops itself if it cannot keep up).
        for reader in list(self.readers):
            reader.data(self, data, framed)

    def finish(self, now: float, lifetime: float) -> None:
        self.complete = True
        if self.keep:
            self.body = b"".join(self.chunks)
            self.chunks = []
        self.expires = now + lifetime if lifetime > 0 else 0.0
        self.stored = now
        readers, self.readers = self.readers, {}
        for reader in readers:
            reader.finished(self)

    def fail(self) -> None:
        self.failed = True
        self.chunks = []
        readers, self.readers = self.readers, {}
        for reader in readers:
            reader.failed(self)


class Cache:
    """Entries by key: the ones being fetched, and complete ones while fresh, least recently
    used first out when their bytes pass `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._entries: OrderedDict[str, Entry] = OrderedDict()
        self.bytes = 0
        """Bytes of the complete entries kept."""
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(list(self._entries.values()))

    def get(self, key: str, now: float) -> Entry | None:
        """The entry to follow for `key`: being fetched, or complete and fresh; None: fetch."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        if entry.fetching and entry.keep:
            return entry
        if entry.complete and entry.body is not None and now < entry.expires:
            self._entries.move_to_end(key)
            return entry
        self.discard(entry)
        return None

    def add(self, entry: Entry) -> None:
        """An entry whose fetch begins."""
        old = self._entries.pop(entry.key, None)
        if old is not None and old.body is not None:
            self.bytes -= len(old.body)
        self._entries[entry.key] = entry

    def settled(self, entry: Entry) -> None:
        """An entry's fetch ended: kept if complete, fresh and keepable; then the memory bound."""
        if self._entries.get(entry.key) is not entry:
            return
        if not (entry.complete and entry.keep and entry.body is not None and entry.expires > 0):
            del self._entries[entry.key]
            return
        self.bytes += len(entry.body)
        for old in list(self._entries.values()):
            if self.bytes <= self.limit:
                break
            if old.complete:
                self.discard(old)
                self.evicted += 1

    def discard(self, entry: Entry) -> None:
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
            if entry.complete and entry.body is not None:
                self.bytes -= len(entry.body)

    def expire(self, now: float) -> None:
        """Drop complete entries past their lifetime."""
        for entry in list(self._entries.values()):
            if entry.complete and now >= entry.expires:
                self.discard(entry)
