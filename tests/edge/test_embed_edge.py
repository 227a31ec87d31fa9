"""Through real nginx and Varnish, the embeddable player keeps what the node gives it: CORS on
everything a player or an embed on another origin reads (misses and cache hits alike, errors,
preflights), `frame-ancestors *` on /embed/{id} only, oEmbed and its discovery link.
"""

from __future__ import annotations

import httpx

from tests.harness.causerie_process import CauserieProcess
from tests.harness.edges import RunningEdge

ELSEWHERE = {"Origin": "https://news.example"}


def test_the_edges_keep_cors_and_the_framing_policy(
    origin: CauserieProcess, edge: RunningEdge
) -> None:
    space_id = origin.space_id
    with httpx.Client(base_url=edge.url, timeout=10) as http:
        playlist = http.get(origin.playlist_path).text
        part = next(
            line.split('URI="', 1)[1].split('"', 1)[0]
            for line in playlist.splitlines()
            if line.startswith("#EXT-X-PART:")
        )
        now = http.get(f"/feed/{space_id}/now").json()
        readable = [
            f"/hls/{space_id}/main.m3u8",
            origin.playlist_path,
            f"/hls/{space_id}/{part}",
            f"/dash/{space_id}/manifest.mpd",
            "/time",
            f"/feed/{space_id}/now",
            f"/api/spaces/{space_id}",
            f"/oembed?url={origin.url}/s/{space_id}",
            f"/embed/{space_id}",
            "/static/embed.js",
        ]
        for path in readable:
            for _ in range(2):  # a miss, then (where the edge caches it) a hit
                response = http.get(path, headers=ELSEWHERE)
                assert response.status_code == 200, (edge.kind, path, response.text)
                assert response.headers.get("access-control-allow-origin") == "*", (edge.kind, path)
        with http.stream("GET", now["url"], headers=ELSEWHERE) as window:
            assert window.status_code == 200
            assert window.headers["access-control-allow-origin"] == "*"
        exposed = http.get(f"/api/spaces/{space_id}").headers["access-control-expose-headers"]
        assert "Date" in exposed

        # Errors, and preflights (never cached: the edges pass OPTIONS to the origin).
        for path in ("/hls/nosuchspace/index.m3u8", "/api/spaces/nosuchspace"):
            missing = http.get(path, headers=ELSEWHERE)
            assert missing.status_code == 404, (edge.kind, path)
            assert missing.headers.get("access-control-allow-origin") == "*", (edge.kind, path)
        for path, method in (
            (origin.playlist_path, "GET"),
            (f"/dash/{space_id}/manifest.mpd", "GET"),
            (f"/api/spaces/{space_id}/join", "POST"),
        ):
            asked = http.options(
                path,
                headers={
                    "Origin": "null",
                    "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": "content-type",
                },
            )
            assert asked.status_code == 204, (edge.kind, path, asked.text)
            assert asked.headers["access-control-allow-origin"] == "*"
            assert method in asked.headers["access-control-allow-methods"]

        # Framing: the embed by anyone, the listener page as before (no header).
        for _ in range(2):
            embed = http.get(f"/embed/{space_id}")
            assert "frame-ancestors *" in embed.headers["content-security-policy"], edge.kind
            page = http.get(f"/s/{space_id}")
            assert "frame-ancestors" not in page.headers.get("content-security-policy", "")
            assert f"{origin.url}/oembed?url=" in page.text  # the discovery link

        # The embed's join and heartbeat, cross-origin, through the edge.
        joined = http.post(f"/api/spaces/{space_id}/join", json={}, headers={"Origin": "null"})
        assert joined.status_code == 200, joined.text
        assert joined.headers["access-control-allow-origin"] == "*"
        beat = http.post(
            f"/api/spaces/{space_id}/heartbeat",
            headers={"Origin": "null", "Authorization": f"Bearer {joined.json()['token']}"},
        )
        assert beat.status_code == 204
        assert beat.headers["access-control-allow-origin"] == "*"
