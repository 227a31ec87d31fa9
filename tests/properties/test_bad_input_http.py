"""Bad input against a real node (`causerie serve` in its own process, a live space): whatever
the query, body or headers, the answer is a clear 4xx JSON error, never a 500 or a hang.

The parsers' own properties are in test_packager.py, test_ingest.py and test_tokens.py; these
check that their errors reach people as 400s through the real HTTP stack.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from causerie.api.admission import MAX_HEADER_BYTES, MAX_HEADERS
from causerie.media.packager import parse_blocking_request
from tests.conftest import account
from tests.harness.causerie_process import causerie_process
from tests.properties.test_ingest import offers

pytestmark = pytest.mark.slow

OVER_HTTP = settings(
    max_examples=20,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


class Live:
    """A node with one live space, and its host."""

    def __init__(self, url: str, data_dir: Path) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=15)
        self.host = account(data_dir, "Hana")
        created = self.http.post("/api/spaces", json={"title": "Bad input"}, headers=self.host)
        assert created.status_code == 201, created.text
        self.space_id = created.json()["id"]
        started = self.http.post(f"/api/spaces/{self.space_id}/start", headers=self.host)
        assert started.status_code == 200, started.text


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    folder = tmp_path_factory.mktemp("bad-input")
    args = ("serve", "--rtc-host", "127.0.0.1", "--max-lag", "10")
    with causerie_process(folder, *args) as process:
        node = Live(process.url, process.data_dir)
        yield node
        node.http.close()


def assert_json_error(response: httpx.Response, status: int, code: str) -> dict[str, str]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["error"] == code and body["message"], body
    return body


# -- _HLS_msn / _HLS_part at the origin --------------------------------------------------------

query_values = st.none() | st.text(max_size=24) | st.integers(0, 2**66).map(str)


@OVER_HTTP
@given(msn=query_values, part=query_values)
def test_blocking_reload_query_values(live: Live, msn: str | None, part: str | None) -> None:
    query = "&".join(
        f"{name}={quote(value, safe='')}"
        for name, value in (("_HLS_msn", msn), ("_HLS_part", part))
        if value is not None
    )
    response = live.http.get(f"/hls/{live.space_id}/index.m3u8?{query}")
    try:
        parse_blocking_request(msn, part)
    except ValueError as exc:
        assert assert_json_error(response, 400, "bad_request")["message"] == str(exc)
        return
    # A valid request: the playlist, or a 400 for a part too far ahead (RFC 8216bis §6.2.5.2),
    # or a 503 if it did not appear within the blocking time.
    assert response.status_code in (200, 400, 503), response.text
    if response.status_code == 400:
        assert "too far ahead" in response.json()["message"]


def test_a_query_value_given_twice_is_400(live: Live) -> None:
    response = live.http.get(f"/hls/{live.space_id}/index.m3u8?_HLS_msn=1&_HLS_msn=2")
    assert "more than once" in assert_json_error(response, 400, "bad_request")["message"]


# -- SDP offers at the WHIP endpoint -----------------------------------------------------------


@settings(OVER_HTTP, max_examples=8)
@given(body=st.binary(max_size=300) | offers.map(str.encode))
def test_any_offer_is_answered_or_refused_with_400(live: Live, body: bytes) -> None:
    response = live.http.post(
        f"/whip/{live.space_id}",
        content=body,
        headers={**live.host, "Content-Type": "application/sdp"},
    )
    if response.status_code == 201:  # a usable offer after all: end that session
        ended = live.http.delete(response.headers["location"], headers=live.host)
        assert ended.status_code == 200
        return
    assert_json_error(response, 400, "bad_request")
    assert response.headers["access-control-allow-origin"] == "*"


def test_an_offer_that_is_not_utf8_is_400(live: Live) -> None:
    response = live.http.post(
        f"/whip/{live.space_id}",
        content=b"v=0\r\ns=\xff\xfe\r\n",
        headers={**live.host, "Content-Type": "application/sdp"},
    )
    assert "not UTF-8" in assert_json_error(response, 400, "bad_request")["message"]


# -- invalid UTF-8 in bodies, paths and headers ------------------------------------------------


WRITES = [
    ("POST", "/api/spaces", "title"),
    ("PATCH", "/api/spaces/{id}", "title"),
    ("POST", "/api/spaces/{id}/questions", "text"),
    ("POST", "/api/spaces/{id}/join", "name"),
]


@pytest.mark.parametrize(("method", "path", "field"), WRITES)
@pytest.mark.parametrize(
    "value",
    [b"\xff\xfe", b"caf\xe9", b"\xc0\xaf", b"\xf5\x80\x80\x80"],
    ids=["ff-fe", "latin-1", "overlong", "beyond-unicode"],
)
def test_bodies_that_are_not_utf8_are_400(
    live: Live, method: str, path: str, field: str, value: bytes
) -> None:
    response = live.http.request(
        method,
        path.format(id=live.space_id),
        content=b'{"' + field.encode() + b'": "' + value + b'"}',
        headers={**live.host, "Content-Type": "application/json"},
    )
    assert_json_error(response, 400, "bad_request")


@pytest.mark.parametrize(("method", "path", "field"), WRITES[:3])
@pytest.mark.parametrize("value", [b"\\ud800", b"a\\udfff", b"\xed\xa0\x80"])
def test_lone_surrogates_in_text_are_422(
    live: Live, method: str, path: str, field: str, value: bytes
) -> None:
    """JSON may escape a lone surrogate, and Python's JSON reader lets CESU-8 bytes through as
    one: neither is text (SQLite cannot store it), so the domain refuses it."""
    response = live.http.request(
        method,
        path.format(id=live.space_id),
        content=b'{"' + field.encode() + b'": "' + value + b'"}',
        headers={**live.host, "Content-Type": "application/json"},
    )
    assert "lone surrogate" in assert_json_error(response, 422, "invalid")["message"]


def test_invalid_utf8_in_paths_and_tokens(live: Live) -> None:
    assert_json_error(live.http.get("/api/spaces/%FF%FE"), 404, "not_found")
    assert_json_error(live.http.get("/api/spaces/%C3/questions"), 404, "not_found")
    # Header values arrive as bytes; a token with bytes that are not ASCII is just a bad token.
    line = f"GET /api/spaces/{live.space_id}/speak-requests HTTP/1.1".encode()
    status, body = request(live.url, line, [(b"Authorization", b"Bearer c1.\xff\xfe.x")])
    assert status == 401 and json.loads(body)["error"] == "unauthorized"


# -- header limits ------------------------------------------------------------------------------


def request(
    url: str, line: bytes, headers: list[tuple[bytes, bytes]], timeout: float = 15
) -> tuple[int, bytes]:
    """One raw HTTP/1.1 request (so that nothing in between trims it); (status, body)."""
    where = urlsplit(url)
    fields = [(b"Host", where.netloc.encode()), *headers, (b"Connection", b"close")]
    head = line + b"\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in fields) + b"\r\n"
    with socket.create_connection((where.hostname, where.port), timeout=timeout) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    _, _, body = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), body


@pytest.mark.parametrize("path", [b"/healthz", b"/api/spaces", b"/hls/x/index.m3u8"])
@pytest.mark.parametrize(
    "headers",
    [
        [(b"X-Big", b"a" * (MAX_HEADER_BYTES + 1))],
        [(b"X-Big", b"a" * 1_000_000)],
        [(f"X-H{i}".encode(), b"v") for i in range(MAX_HEADERS + 1)],
        [(f"X-H{i}".encode(), b"v") for i in range(5_000)],
    ],
    ids=["over-32KiB", "1MB", "101-fields", "5000-fields"],
)
def test_header_limits_are_431(live: Live, path: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    status, body = request(live.url, b"GET " + path + b" HTTP/1.1", headers)
    assert status == 431 and json.loads(body)["error"] == "too_large", body
    # And the node goes on answering.
    assert live.http.get("/healthz").status_code == 200


def test_headers_within_the_limits_pass(live: Live) -> None:
    headers = [(f"X-H{i}".encode(), b"v" * 200) for i in range(MAX_HEADERS - 5)]
    status, _ = request(live.url, b"GET /healthz HTTP/1.1", headers)
    assert status == 200


def test_an_overlong_request_line_is_400(live: Live) -> None:
    status, _ = request(live.url, b"GET /api/spaces/" + b"a" * 100_000 + b" HTTP/1.1", [])
    assert status == 400  # uvicorn's own answer (httptools refuses the request line)
    assert live.http.get("/healthz").status_code == 200
