"""The edge configurations: what they say, and that nginx and varnishd accept them."""

from __future__ import annotations

import os
import pwd
import re
import subprocess
from pathlib import Path

import pytest

from causerie.cli import main
from causerie.edge.config import (
    EdgeOptions,
    Origin,
    nginx_command,
    parse_listen,
    render,
    render_nginx,
    render_varnish,
    varnishd_command,
)
from tests.edge.conftest import require

ONE = (Origin.parse("http://127.0.0.1:8080"),)
# As root, varnishd's jail reads files as `varnish`, which cannot enter pytest's private tmp_path.
VARNISHD_CHECK = ["varnishd", "-C", *(["-j", "none"] if os.geteuid() == 0 else [])]
THREE = tuple(Origin.parse(f"http://127.0.0.1:{p}") for p in (8080, 8090, 8100))


def options(**changes: object) -> EdgeOptions:
    return EdgeOptions(**{"origins": ONE, **changes})  # type: ignore[arg-type]


def nginx_block(config: str, location: str) -> str:
    """The text of one `location … {` block (up to its closing brace at the same indent)."""
    start = config.index(f"location {location} {{")
    indent = config[config.rindex("\n", 0, start) + 1 : start]
    end = config.index(f"\n{indent}}}", start)
    return config[start:end]


# ---- origins and options ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("http://127.0.0.1:8080", "127.0.0.1", 8080),
        ("http://127.0.0.1:8080/", "127.0.0.1", 8080),
        ("127.0.0.1:9000", "127.0.0.1", 9000),
        ("http://origin-1.internal", "origin-1.internal", 80),
        ("http://[::1]:8080", "::1", 8080),
    ],
)
def test_origins_are_parsed(url: str, host: str, port: int) -> None:
    origin = Origin.parse(url)
    assert (origin.host, origin.port) == (host, port)


@pytest.mark.parametrize(
    "url",
    ["https://127.0.0.1:8443", "http://127.0.0.1:8080/api", "http://a:b@127.0.0.1", "http://x;y"],
)
def test_bad_origins_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        Origin.parse(url)


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:8081") == ("127.0.0.1", 8081)
    assert parse_listen("8081") == ("127.0.0.1", 8081)
    assert parse_listen("[::1]:8081") == ("::1", 8081)
    for bad in ("127.0.0.1", "127.0.0.1:0", "host:99999", ":80"):
        with pytest.raises(ValueError):
            parse_listen(bad)


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError):
        EdgeOptions(origins=())
    with pytest.raises(ValueError):
        options(cache_dir="relative/dir")
    with pytest.raises(ValueError):
        options(cache_dir="/tmp/a b")
    with pytest.raises(ValueError):
        render("squid", options())


def test_the_plain_playlist_is_cached_for_about_half_a_part() -> None:
    assert options().playlist_ttl == "0.107s"
    assert options(part_duration=0.5).playlist_ttl == "0.25s"
    assert options(part_duration=0.5).playlist_lock_timeout == 590


# ---- nginx ------------------------------------------------------------------------------------


def test_nginx_collapses_misses_and_keys_on_the_query_string() -> None:
    config = render_nginx(options())
    assert "proxy_cache_key $request_uri;" in config  # path and query: _HLS_msn, _HLS_part
    assert "proxy_cache_lock on;" in config
    media = nginx_block(config, "/hls/")
    assert "proxy_cache causerie_live;" in media
    assert "proxy_cache_lock_timeout 100ms;" in media
    assert "proxy_cache_lock_age 7s;" in media
    playlist = nginx_block(config, '~ "\\.m3u8$"')
    assert "proxy_cache_lock_timeout 300ms;" in playlist  # a part + 90 ms
    assert "proxy_cache_valid 200 1s;" in playlist
    assert "proxy_cache_use_stale updating;" not in playlist  # never an expired playlist
    # The origin's Cache-Control is honoured: nothing tells nginx to ignore it.
    assert "proxy_ignore_headers" not in config
    tuned = render_nginx(options(media_lock_timeout_ms=50, playlist_lock_timeout_ms=1500))
    assert "proxy_cache_lock_timeout 50ms;" in tuned
    assert "proxy_cache_lock_timeout 1500ms;" in tuned


def test_nginx_serves_stale_details_and_passes_writes_and_events() -> None:
    config = render_nginx(options())
    details = nginx_block(config, '~ "^/api/spaces(?:/[A-Za-z0-9_-]+)?$"')
    assert (
        "proxy_cache_use_stale error timeout updating http_500 http_502 http_503 http_504;"
        in details
    )
    assert "proxy_cache_background_update on;" in details
    # Credentials are dropped for reads of the details only (they are the same for everyone).
    assert "proxy_set_header Authorization $causerie_write_authorization;" in details
    events = nginx_block(config, '~ "^/api/spaces/[A-Za-z0-9_-]+/events$"')
    assert "proxy_buffering off;" in events
    assert "proxy_cache off;" in events
    assert "proxy_read_timeout 1h;" in events
    api = nginx_block(config, "/api/")
    assert "proxy_cache_bypass $http_authorization $http_cookie;" in api
    assert "proxy_no_cache $http_authorization $http_cookie;" in api
    assert "proxy_cache_methods GET HEAD;" in config  # POST, PUT, PATCH, DELETE: never cached
    # Every location that proxies sets the same base headers (nginx does not merge them).
    assert config.count("proxy_pass ") == config.count('proxy_set_header Connection "";')


def test_nginx_spreads_the_api_and_pins_a_space_media_to_one_origin() -> None:
    config = render_nginx(options(origins=THREE))
    api = config[config.index("upstream causerie_api {") :]
    api = api[: api.index("}")]
    media = config[config.index("upstream causerie_media {") :]
    media = media[: media.index("}")]
    for origin in THREE:
        assert f"server {origin.address} " in api
        assert f"server {origin.address} " in media
    assert "hash" not in api  # round-robin
    assert "hash $causerie_space consistent;" in media


def test_nginx_paths_are_relative_to_the_prefix_or_under_the_cache_dir() -> None:
    relative = render_nginx(options())
    assert "proxy_cache_path cache_live " in relative
    assert "pid nginx.pid;" in relative
    absolute = render_nginx(options(cache_dir="/var/cache/causerie-edge"))
    assert "proxy_cache_path /var/cache/causerie-edge/cache_live " in absolute
    assert "proxy_temp_path /var/cache/causerie-edge/proxy_temp;" in absolute
    assert not re.search(r"_temp_path (?!/var/cache/causerie-edge/)", absolute)


def _nginx_test(config: str, folder: Path) -> subprocess.CompletedProcess[str]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "nginx.conf"
    path.write_text(config)
    command = [*nginx_command(path, folder), "-t"]
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize("origins", [ONE, THREE], ids=["one-origin", "three-origins"])
def test_nginx_accepts_the_configuration(origins: tuple[Origin, ...], tmp_path: Path) -> None:
    require("nginx")
    user = pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else None
    result = _nginx_test(render_nginx(options(origins=origins, user=user)), tmp_path / "relative")
    assert result.returncode == 0, result.stderr
    assert "test is successful" in result.stderr
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    absolute = render_nginx(options(origins=origins, user=user, cache_dir=str(cache_dir)))
    result = _nginx_test(absolute, tmp_path / "absolute")
    assert result.returncode == 0, result.stderr
    assert (cache_dir / "cache_live").is_dir()


def test_nginx_refuses_a_broken_configuration(tmp_path: Path) -> None:
    """The check above would catch a mistake: nginx -t does fail on one."""
    require("nginx")
    broken = render_nginx(options()).replace("proxy_cache_lock on;", "proxy_cache_lock maybe;")
    assert _nginx_test(broken, tmp_path).returncode != 0


# ---- Varnish ----------------------------------------------------------------------------------


def test_varnish_streams_and_caches_playlists_for_half_a_part() -> None:
    vcl = render_varnish(options())
    assert "set beresp.do_stream = true;" in vcl
    assert "set beresp.ttl = 0.107s;" in vcl
    assert "std.querysort(req.url)" in vcl
    # The key is the URL with its query string (and not the Host).
    hash_sub = vcl[vcl.index("sub vcl_hash {") :]
    hash_sub = hash_sub[: hash_sub.index("\n}")]
    assert "hash_data(req.url);" in hash_sub
    assert "req.http.host" not in hash_sub
    # Errors for live media are not remembered as hit-for-miss (the next listener would pass).
    assert "set beresp.uncacheable = true;" in vcl


def test_varnish_serves_stale_details_and_passes_writes_and_events() -> None:
    vcl = render_varnish(options(origins=THREE))
    assert 'if (req.method != "GET" && req.method != "HEAD") {\n        return (pass);' in vcl
    assert "return (pipe);" in vcl  # events
    assert "set req.grace = 30s;" in vcl
    assert "set beresp.grace = 24h;" in vcl
    assert "std.healthy(req.backend_hint)" in vcl
    assert "return (restart);" in vcl
    assert vcl.count(".probe = causerie_health;") == 3
    assert "directors.round_robin()" in vcl
    assert "directors.shard()" in vcl


def test_varnish_threads_cover_the_listeners() -> None:
    command = varnishd_command(Path("/e.vcl"), "127.0.0.1:8081", Path("/w"), listeners=5000)
    params = dict(command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "-p")
    # Each listener streams a segment and a window of live events at once: two threads.
    assert int(params["thread_pools"]) * int(params["thread_pool_max"]) > 2 * 5000
    assert int(params["thread_queue_limit"]) >= 2 * 5000
    assert int(params["thread_pool_min"]) <= int(params["thread_pool_max"])
    assert command[command.index("-a") + 1] == "127.0.0.1:8081"


@pytest.mark.parametrize("origins", [ONE, THREE], ids=["one-origin", "three-origins"])
def test_varnish_compiles_the_vcl(origins: tuple[Origin, ...], tmp_path: Path) -> None:
    require("varnish")
    vcl = tmp_path / "edge.vcl"
    vcl.write_text(render_varnish(options(origins=origins)))
    result = subprocess.run(
        [*VARNISHD_CHECK, "-f", str(vcl), "-n", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    broken = tmp_path / "broken.vcl"
    broken.write_text(vcl.read_text().replace("return (pipe);", "return (teleport);"))
    result = subprocess.run(
        [*VARNISHD_CHECK, "-f", str(broken), "-n", str(tmp_path / "work")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0


# ---- the command ------------------------------------------------------------------------------


def test_the_command_prints_a_configuration(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge-config", "--kind", "varnish", "http://127.0.0.1:8080"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("vcl 4.1;")
    assert "causerie edge-config --kind varnish http://127.0.0.1:8080" in out
    assert (
        main(
            [
                "edge-config",
                "--kind",
                "nginx",
                "--listen",
                "127.0.0.1:9090",
                "http://127.0.0.1:8080",
                "http://127.0.0.1:8090",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "listen 127.0.0.1:9090 " in out
    assert "server 127.0.0.1:8090 " in out


def test_the_command_writes_a_file(tmp_path: Path) -> None:
    target = tmp_path / "edge.conf"
    code = main(
        [
            "edge-config",
            "--kind",
            "nginx",
            "--cache-dir",
            str(tmp_path),
            "--output",
            str(target),
            "http://127.0.0.1:8080",
        ]
    )
    assert code == 0
    assert f"proxy_cache_path {tmp_path}/cache_live " in target.read_text()


def test_the_command_refuses_bad_origins(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["edge-config", "--kind", "nginx", "https://127.0.0.1:8443"]) == 2
    assert "origin" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["edge-config", "--kind", "squid", "http://127.0.0.1:8080"])


def test_the_origins_get_one_host_whatever_the_client_sent() -> None:
    """Both edges send the public host (default: the listen address), never `$host`."""
    default = options(listen="127.0.0.1:8081")
    assert 'proxy_set_header Host "127.0.0.1:8081";' in render_nginx(default)
    assert "$host" not in render_nginx(default)
    assert 'set req.http.Host = "127.0.0.1:8081";' in render_varnish(default)
    public = options(public_url="https://live.example/")
    assert public.public_host == "live.example"
    nginx = render_nginx(public)
    assert nginx.count('proxy_set_header Host "live.example";') == nginx.count("proxy_pass ")
    assert 'set req.http.Host = "live.example";' in render_varnish(public)
    for bad in ("live.example", "https://live.example/x", 'https://a";b', "https://a$b", "ftp://a"):
        with pytest.raises(ValueError, match="public-url"):
            options(public_url=bad)
