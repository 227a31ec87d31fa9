"""The embeddable player's HTTP side on a real node: oEmbed, the discovery link, who may frame
which page, and CORS on everything a player or an embed on another origin reads.

The browser half (the embed playing inside an iframe of another origin) is
tests/web/test_embed_browser.py.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urlsplit

import httpx
import pytest

from causerie.media.demo import DemoSpeaker, demo_voices, load_voice
from causerie.node import oembed
from tests.conftest import account
from tests.harness.in_process import RunningNode, run_node
from tests.harness.polling import eventually

SITE = "https://live.example"
XSS_TITLE = 'Launch "night" <img src=x onerror=alert(1)> & more'


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[tuple[RunningNode, httpx.AsyncClient]]:
    """A node whose public URL (--public-url) is SITE, as behind an edge."""
    async with (
        run_node(tmp_path / "data", public_url=f"{SITE}/") as node,
        httpx.AsyncClient(base_url=node.url, timeout=10) as client,
    ):
        yield node, client


async def new_space(client: httpx.AsyncClient, node: RunningNode, title: str = "Press") -> str:
    created = await client.post(
        "/api/spaces", json={"title": title}, headers=account(node.data_dir, "Ada", "ada")
    )
    assert created.status_code == 201, created.text
    return created.json()["id"]


class Tags(HTMLParser):
    """Every start tag of a document, with its attributes."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def named(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]


def assert_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error", "message"} and body["message"], body


# ---- oEmbed ------------------------------------------------------------------------------------


async def test_oembed_answers_a_rich_response_with_the_player(site) -> None:
    node, client = site
    space_id = await new_space(client, node, XSS_TITLE)
    for page in (f"{SITE}/s/{space_id}", f"{SITE}/embed/{space_id}", f"{SITE}/s/{space_id}?x=1"):
        response = await client.get("/oembed", params={"url": page, "format": "json"})
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/json"
        assert response.headers["access-control-allow-origin"] == "*"
        answer = json.loads(response.text)
        # oEmbed 1.0 §2.3.4: the required fields, and those of type rich (§2.3.4.4).
        assert answer["version"] == "1.0"
        assert answer["type"] == "rich"
        assert answer["title"] == XSS_TITLE
        assert answer["author_name"] == "Ada"
        assert answer["provider_name"] == "causerie"
        assert answer["provider_url"] == f"{SITE}/"
        assert (answer["width"], answer["height"]) == (oembed.DEFAULT_WIDTH, oembed.DEFAULT_HEIGHT)
        assert isinstance(answer["cache_age"], int)
        tags = Tags(answer["html"])
        assert [name for name, _ in tags.tags] == ["iframe"], answer["html"]
        iframe = tags.named("iframe")[0]
        assert iframe["src"] == f"{SITE}/embed/{space_id}"
        assert iframe["width"] == str(answer["width"])
        assert iframe["height"] == str(answer["height"])
        assert iframe["title"] == f"{XSS_TITLE} · live audio"  # escaped, then read back whole
        assert "<img" not in answer["html"]


@pytest.mark.parametrize(
    ("maxwidth", "maxheight", "size"),
    [
        ("300", None, (300, oembed.DEFAULT_HEIGHT)),
        (None, "120", (oembed.DEFAULT_WIDTH, 120)),
        ("9999", "9999", (oembed.DEFAULT_WIDTH, oembed.DEFAULT_HEIGHT)),
        ("250", "100", (250, 100)),
    ],
)
async def test_oembed_stays_within_maxwidth_and_maxheight(site, maxwidth, maxheight, size) -> None:
    node, client = site
    space_id = await new_space(client, node)
    params = {"url": f"{SITE}/s/{space_id}"}
    params |= {"maxwidth": maxwidth} if maxwidth else {}
    params |= {"maxheight": maxheight} if maxheight else {}
    answer = (await client.get("/oembed", params=params)).json()
    assert (answer["width"], answer["height"]) == size
    iframe = Tags(answer["html"]).named("iframe")[0]
    assert (iframe["width"], iframe["height"]) == (str(size[0]), str(size[1]))


async def test_oembed_refuses_urls_of_other_sites(site) -> None:
    """Only the configured public URL's pages are ours, whatever Host the request carries."""
    node, client = site
    space_id = await new_space(client, node)
    foreign = [
        f"https://evil.example/s/{space_id}",
        f"http://live.example/s/{space_id}",  # another scheme (and port)
        f"https://live.example:8443/s/{space_id}",
        f"https://live.example.evil.example/s/{space_id}",
        f"https://evil.example@live.example/s/{space_id}",  # user information
        f"https://live.example@evil.example/s/{space_id}",
        f"{node.url}/s/{space_id}",  # the node itself, not its public URL
        f"//evil.example/s/{space_id}",
        f"/s/{space_id}",
        f"{SITE}/studio/{space_id}",
        f"{SITE}/s/{space_id}/report",
        f"{SITE}/api/spaces/{space_id}",
        f"javascript:alert(1)//{SITE}/s/{space_id}",
        f"data:text/html,{SITE}/s/{space_id}",
        f"{SITE}/s/{space_id}/../../evil",
    ]
    for url in foreign:
        for host in ("evil.example", "live.example"):
            response = await client.get("/oembed", params={"url": url}, headers={"Host": host})
            assert_error(response, 404)
            assert "evil" not in response.text.replace(url, "")


async def test_oembed_bad_input_is_a_4xx(site) -> None:
    node, client = site
    space_id = await new_space(client, node)
    page = f"{SITE}/s/{space_id}"
    cases: list[tuple[dict[str, str], int]] = [
        ({}, 400),
        ({"url": ""}, 400),
        ({"url": f"{SITE}/s/" + "a" * 10_000}, 400),
        ({"url": "http://[::1/s/x"}, 400),
        ({"url": f"{SITE}:99999/s/{space_id}"}, 400),
        ({"url": f"{SITE}/s/{space_id}\n"}, 400),
        ({"url": f"{SITE}/s/nosuchspace"}, 404),
        ({"url": f"{SITE}/s/" + "a" * 40}, 404),
        ({"url": "javascript:alert(document.domain)"}, 404),
        ({"url": page, "format": "xml"}, 501),
        ({"url": page, "format": "yaml"}, 400),
        ({"url": page, "format": "JSON" * 1000}, 400),
    ]
    for value in ("abc", "-5", "0", "1e3", "12.5", " 300", "٣٠٠", "9" * 50):
        cases += [({"url": page, "maxwidth": value}, 400), ({"url": page, "maxheight": value}, 400)]
    for params, status in cases:
        assert_error(await client.get("/oembed", params=params), status)
    # A query string of 10 KB and repeated parameters are no different.
    assert_error(await client.get(f"/oembed?url={quote(page)}&maxwidth=" + "9" * 10_000), 400)


# ---- discovery, framing ------------------------------------------------------------------------


async def test_the_listener_page_names_its_oembed(site) -> None:
    """oEmbed §4: `<link rel="alternate" type="application/json+oembed">` in the head, built
    from the public URL, never the request's Host (edges cache the page for everyone)."""
    node, client = site
    space_id = await new_space(client, node)
    for host in ("evil.example", None):
        response = await client.get(f"/s/{space_id}", headers={"Host": host} if host else {})
        assert response.status_code == 200
        assert "evil.example" not in response.text
        head = response.text.split("</head>", 1)[0]
        links = [
            attrs
            for attrs in Tags(head).named("link")
            if attrs.get("type") == "application/json+oembed"
        ]
        assert len(links) == 1, links
        assert links[0]["rel"] == "alternate"
        href = links[0]["href"] or ""
        assert href.startswith(f"{SITE}/oembed?url=")
        # The link works: what it names is this page's oEmbed.
        found = urlsplit(href)
        answer = await client.get(f"{found.path}?{found.query}")
        assert answer.status_code == 200, answer.text
        assert f"{SITE}/embed/{space_id}" in answer.json()["html"]
    # An id that cannot be a space's gets no link (and the page says "not found" itself).
    odd = await client.get("/s/" + "x" * 40)
    assert "json+oembed" not in odd.text


async def test_only_the_embed_page_may_be_framed_by_any_site(client, node) -> None:
    """`frame-ancestors *` on /embed/{id} only; the other pages keep what they sent before
    (no framing header at all; /api/docs refuses every frame). SECURITY.md says so."""
    space_id = await new_space(client, node)
    embed = await client.get(f"/embed/{space_id}")
    assert embed.status_code == 200
    assert embed.headers["content-type"].startswith("text/html")
    policy = embed.headers["content-security-policy"]
    directives = {part.split()[0]: part.split()[1:] for part in policy.split("; ")}
    assert directives["frame-ancestors"] == ["*"]
    assert directives["script-src"] == ["'self'"]  # framed anywhere, it runs only its own code
    assert "x-frame-options" not in embed.headers
    assert (await client.head(f"/embed/{space_id}")).status_code == 200
    assert_error(await client.get("/embed/" + "x" * 40), 404)

    for path in ("/", f"/s/{space_id}", f"/s/{space_id}/report", f"/s/{space_id}/speak"):
        for path_ in (path, "/studio", f"/studio/{space_id}", "/static/space.js"):
            page = await client.get(path_)
            assert page.status_code == 200, path_
            assert "frame-ancestors" not in page.headers.get("content-security-policy", ""), path_
            assert "x-frame-options" not in page.headers, path_
    docs = await client.get("/api/docs")
    assert "frame-ancestors 'none'" in docs.headers["content-security-policy"]


# ---- CORS --------------------------------------------------------------------------------------


@pytest.fixture
async def live(client, node):
    """A live space with the demo host voice speaking into it."""
    space_id = await new_space(client, node)
    await client.post(f"/api/spaces/{space_id}/start", headers=account(node.data_dir, "Ada", "ada"))
    pipeline = node.app.services.broadcasts.get(space_id)
    speaker = DemoSpeaker(load_voice(demo_voices()["host"]), pipeline.mixer.add_input("v").push)
    speaker.start()
    yield space_id
    await speaker.stop()


async def test_what_players_and_embeds_read_is_cors_readable(client, node, live) -> None:
    space_id = live
    other = {"Origin": "https://news.example"}

    async def media_listed() -> bool:
        text = (await client.get(f"/hls/{space_id}/index.m3u8")).text
        return "#EXT-X-PART:" in text  # a part made (the preload hint names one before)

    await eventually(media_listed, 15, "a part in the playlist", every=0.2)
    playlist = (await client.get(f"/hls/{space_id}/index.m3u8")).text
    init = playlist.split('#EXT-X-MAP:URI="', 1)[1].split('"', 1)[0]
    part = next(
        line.split('URI="', 1)[1].split('"', 1)[0]
        for line in playlist.splitlines()
        if line.startswith("#EXT-X-PART:")
    )
    now = (await client.get(f"/feed/{space_id}/now")).json()
    readable = [
        f"/hls/{space_id}/main.m3u8",
        f"/hls/{space_id}/index.m3u8",
        f"/hls/{space_id}/{init}",
        f"/hls/{space_id}/{part}",
        f"/dash/{space_id}/manifest.mpd",
        "/time",
        f"/feed/{space_id}/now",
        f"/api/spaces/{space_id}",
        "/api/spaces",
        "/api/settings",
        f"/oembed?url={quote(node.app.services.config.site_url)}/s/{space_id}",
        f"/embed/{space_id}",
        "/static/embed.js",
        "/static/player.js",
        "/static/vendor/hls.min.js",
    ]
    for path in readable:
        response = await client.get(path, headers=other)
        assert response.status_code == 200, (path, response.text)
        assert response.headers.get("access-control-allow-origin") == "*", path
    # The window in progress streams: its headers are enough.
    async with client.stream("GET", now["url"], headers=other) as window:
        assert window.status_code == 200
        assert window.headers["access-control-allow-origin"] == "*"
    details = await client.get(f"/api/spaces/{space_id}", headers=other)
    exposed = {
        h.strip().lower() for h in details.headers["access-control-expose-headers"].split(",")
    }
    assert {"date", "retry-after"} <= set(exposed)  # feed.js reads the details' Date

    # Errors too: a player on another origin sees the status, not a CORS failure.
    for path in (
        "/hls/nosuchspace/index.m3u8",
        f"/hls/{space_id}/nosuchrun/init.mp4",
        "/dash/nosuchspace/manifest.mpd",
        "/feed/nosuchspace/0.ndjson",
        "/api/spaces/nosuchspace",
        "/oembed?url=https://evil.example/s/x",
    ):
        response = await client.get(path, headers=other)
        assert response.status_code == 404, path
        assert response.headers.get("access-control-allow-origin") == "*", path


async def test_preflights_are_answered(client, node) -> None:
    """Players that send a header of their own (Range, say), and an embed in a sandboxed
    iframe (an opaque origin: its join and heartbeats are cross-origin, with a JSON body and
    Authorization), ask first with OPTIONS (Fetch standard, CORS-preflight)."""
    space_id = await new_space(client, node)
    ask = {"Origin": "null", "Access-Control-Request-Method": "GET"}
    for path in (
        f"/hls/{space_id}/index.m3u8",
        f"/dash/{space_id}/manifest.mpd",
        "/time",
        f"/feed/{space_id}/now",
    ):
        response = await client.options(
            path, headers={**ask, "Access-Control-Request-Headers": "x"}
        )
        assert response.status_code == 204, path
        assert response.headers["access-control-allow-origin"] == "*"
        assert "GET" in response.headers["access-control-allow-methods"]
        assert response.headers["access-control-allow-headers"] == "*"
    write = {
        "Origin": "null",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    for action in ("join", "heartbeat"):
        response = await client.options(f"/api/spaces/{space_id}/{action}", headers=write)
        assert response.status_code == 204
        assert response.headers["access-control-allow-origin"] == "*"
        assert response.headers["access-control-allow-methods"] == "POST"
        allowed = response.headers["access-control-allow-headers"].lower()
        assert "authorization" in allowed and "content-type" in allowed
    # The join itself then carries it (and its refusals do too).
    joined = await client.post(f"/api/spaces/{space_id}/join", json={}, headers={"Origin": "null"})
    assert joined.status_code == 200, joined.text
    assert joined.headers["access-control-allow-origin"] == "*"
    # A body refused before any route (413) carries it too: the embed sees the status.
    too_big = await client.post(
        f"/api/spaces/{space_id}/join", content=b"x" * 100_000, headers={"Origin": "null"}
    )
    assert too_big.status_code == 413
    assert too_big.headers["access-control-allow-origin"] == "*"
    # Other writes and private reads are not opened to other origins.
    for method, path in (
        ("POST", f"/api/spaces/{space_id}/start"),
        ("POST", f"/api/spaces/{space_id}/questions"),
        ("GET", f"/api/spaces/{space_id}/levels"),
    ):
        response = await client.options(
            path, headers={**ask, "Access-Control-Request-Method": method}
        )
        assert "access-control-allow-origin" not in response.headers, path
        response = await client.request(method, path, headers={"Origin": "https://news.example"})
        assert "access-control-allow-origin" not in response.headers, path
    # An OPTIONS that is no preflight is what it was: not allowed.
    assert (await client.options(f"/hls/{space_id}/index.m3u8")).status_code == 405
