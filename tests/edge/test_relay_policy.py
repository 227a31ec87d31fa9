"""The relay's pure parts: routes, request checks, freshness (RFC 9111) and the memory bound."""

from __future__ import annotations

import pytest

from causerie.edge.relay.cache import MAX_OBJECT, Cache, Entry
from causerie.edge.relay.policy import Route, check_request, freshness, route


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/dash/abc/manifest.mpd", Route.SHARED),
        ("/dash/abc/run_1/init.mp4", Route.SHARED),
        ("/dash/abc/run_1/467884004.m4s", Route.SHARED),
        ("/dash/abc/run_1/0.m4s", Route.SHARED),
        ("/feed/abc/now", Route.SHARED),
        ("/feed/abc/119778305.ndjson", Route.SHARED),
        ("/time", Route.PASS),
        ("/healthz", Route.HEALTH),
        ("/dash/abc/run_1/007.m4s", Route.NOT_HERE),  # one URL per segment
        ("/dash/abc/run_1/1.m4s/", Route.NOT_HERE),
        ("/dash/../metrics", Route.NOT_HERE),
        ("/dash/a.b/manifest.mpd", Route.NOT_HERE),
        ("/feed/abc/1.ndjson.gz", Route.NOT_HERE),
        ("/hls/abc/index.m3u8", Route.NOT_HERE),
        ("/time/", Route.NOT_HERE),
        ("/", Route.NOT_HERE),
    ],
)
def test_routes(path: str, expected: Route) -> None:
    assert route(path) is expected


def test_request_checks() -> None:
    ok = check_request(b"GET", "1.1", "/time", 1, False)
    assert ok is None
    assert check_request(b"HEAD", "1.0", "/time", 0, False) is None  # HTTP/1.0 needs no Host
    assert check_request(b"GET", "1.1", "/time", 0, False).status == 400  # type: ignore[union-attr]
    assert check_request(b"GET", "1.1", "/time", 2, False).status == 400  # type: ignore[union-attr]
    assert check_request(b"GET", "2.0", "/time", 1, False).status == 505  # type: ignore[union-attr]
    body = check_request(b"POST", "1.1", "/time", 1, True)
    assert body is not None and body.status == 400 and body.close
    post = check_request(b"POST", "1.1", "/time", 1, False)
    assert post is not None and post.status == 405 and post.allow and not post.close
    elsewhere = check_request(b"POST", "1.1", "/api/spaces", 1, False)
    assert elsewhere is not None and elsewhere.status == 404
    encoded = check_request(b"GET", "1.1", "/dash/%61/manifest.mpd", 1, False)
    assert encoded is not None and encoded.status == 400
    reserved = check_request(b"GET", "1.1", "/dash/a%2Fb/manifest.mpd", 1, False)
    assert reserved is not None and reserved.status == 404


@pytest.mark.parametrize(
    ("status", "headers", "seconds"),
    [
        (200, [(b"cache-control", b"public, max-age=31536000, immutable")], 31536000),
        (200, [(b"cache-control", b"public, max-age=1")], 1),
        (200, [(b"cache-control", b"max-age=60, s-maxage=5")], 5),  # §5.2.2.10: shared caches
        (200, [(b"cache-control", b'max-age="30"')], 30),
        (200, [(b"cache-control", b"max-age=60"), (b"age", b"20")], 40),
        (200, [(b"cache-control", b"max-age=60"), (b"age", b"90")], 0),
        (404, [(b"cache-control", b"max-age=30")], 30),  # negative caching, as allowed
        (404, [(b"cache-control", b"no-store")], 0),
        (503, [(b"retry-after", b"7")], 0),  # no explicit lifetime: no heuristics
        (200, [(b"cache-control", b"private, max-age=60")], 0),
        (200, [(b"cache-control", b"no-cache, max-age=60")], 0),
        (200, [(b"cache-control", b"max-age=60"), (b"set-cookie", b"a=b")], 0),
        (200, [(b"cache-control", b"max-age=60"), (b"vary", b"*")], 0),
        (200, [(b"cache-control", b"max-age=abc")], 0),
        (200, [], 0),
        (206, [(b"cache-control", b"max-age=60")], 0),
    ],
)
def test_freshness(status: int, headers: list[tuple[bytes, bytes]], seconds: float) -> None:
    assert freshness(status, headers) == seconds


class Recorder:
    """A reader that notes what it was told."""

    def __init__(self) -> None:
        self.events: list[tuple[str, bytes]] = []

    def headers_ready(self, entry: Entry) -> None:
        self.events.append(("headers", entry.received))

    def data(self, entry: Entry, data: bytes, framed: bytes) -> None:
        assert framed == b"%x\r\n%b\r\n" % (len(data), data)
        self.events.append(("data", data))

    def finished(self, entry: Entry) -> None:
        self.events.append(("finished", b""))

    def failed(self, entry: Entry) -> None:
        self.events.append(("failed", b""))


def test_readers_joining_mid_object_get_what_exists_then_follow() -> None:
    entry = Entry("/x")
    early, late, after = Recorder(), Recorder(), Recorder()
    entry.follow(early)
    entry.start(200, b"", None)
    entry.append(b"one")
    entry.follow(late)
    entry.append(b"two")
    entry.finish(now=10.0, lifetime=5.0)
    entry.follow(after)
    assert early.events == [("headers", b""), ("data", b"one"), ("data", b"two"), ("finished", b"")]
    assert late.events == [("headers", b"one"), ("data", b"two"), ("finished", b"")]
    assert after.events == [("headers", b"onetwo"), ("finished", b"")]
    assert entry.expires == 15.0


def test_a_failed_object_fails_its_readers_and_is_not_kept() -> None:
    cache = Cache(limit=1000)
    entry = Entry("/x")
    cache.add(entry)
    reader = Recorder()
    entry.follow(reader)
    entry.start(200, b"", None)
    entry.append(b"one")
    cache.discard(entry)
    entry.fail()
    assert reader.events[-1] == ("failed", b"")
    assert cache.get("/x", now=0.0) is None


def kept(cache: Cache, key: str, size: int, now: float, lifetime: float = 60.0) -> Entry:
    entry = Entry(key)
    cache.add(entry)
    entry.start(200, b"", None)
    entry.append(b"x" * size)
    entry.finish(now, lifetime)
    cache.settled(entry)
    return entry


def test_fresh_objects_are_kept_least_recently_used_out_first() -> None:
    cache = Cache(limit=250)
    kept(cache, "/a", 100, now=0.0)
    kept(cache, "/b", 100, now=0.0)
    assert cache.get("/a", now=1.0) is not None  # /a used: /b is now the least recent
    kept(cache, "/c", 100, now=2.0)
    assert cache.get("/b", now=2.0) is None
    assert cache.get("/a", now=2.0) is not None and cache.get("/c", now=2.0) is not None
    assert cache.bytes == 200 and cache.evicted == 1
    assert cache.get("/a", now=61.0) is None  # expired
    cache.expire(now=100.0)
    assert len(cache) == 0 and cache.bytes == 0


def test_what_may_not_be_kept_is_dropped_once_complete() -> None:
    cache = Cache(limit=1000)
    kept(cache, "/no-store", 10, now=0.0, lifetime=0.0)
    assert cache.get("/no-store", now=0.0) is None and cache.bytes == 0


def test_an_object_too_large_to_keep_is_streamed_but_not_joinable() -> None:
    cache = Cache(limit=10 * MAX_OBJECT)
    entry = Entry("/big")
    cache.add(entry)
    reader = Recorder()
    entry.follow(reader)
    entry.start(200, b"", None)
    entry.append(b"x" * (MAX_OBJECT + 1))
    assert cache.get("/big", now=0.0) is None  # a new reader starts its own fetch
    entry.append(b"y")
    entry.finish(now=0.0, lifetime=60.0)
    cache.settled(entry)
    assert reader.events[-2:] == [("data", b"y"), ("finished", b"")]
    assert cache.bytes == 0
