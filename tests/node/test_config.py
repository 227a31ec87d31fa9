"""The node's configuration: URLs it prints and advertises, and what it refuses."""

from __future__ import annotations

import pytest

from causerie.node.config import Config


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8080"),
        ("0.0.0.0", "http://127.0.0.1:8080"),
        ("::", "http://127.0.0.1:8080"),
        ("::1", "http://[::1]:8080"),
        ("fe80::1", "http://[fe80::1]:8080"),
        ("node.example", "http://node.example:8080"),
    ],
)
def test_local_url_brackets_ipv6(host: str, url: str) -> None:
    config = Config(host=host)
    assert config.local_url == url
    assert config.node_url == url


def test_advertised_url_wins() -> None:
    config = Config(host="::1", advertise_url="https://node-a.example/")
    assert config.node_url == "https://node-a.example"
    assert config.local_url == "http://[::1]:8080"


@pytest.mark.parametrize(
    "bad",
    [
        {"port": 70000},
        {"max_inflight": 0},
        {"max_lag": 0},
        {"heartbeat_interval": 0.01},
        {"advertise_url": "node-a:8080"},
        {"trusted_proxies": ("not-an-address",)},
        {"rtc_ice_servers": ("http://stun.example",)},
        {"metrics_token": "short"},
        {"metrics_token": "has a space in the middle"},
    ],
)
def test_bad_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        Config(**bad)


@pytest.mark.parametrize("proxy", ["10.0.0.1/8", "192.168.1.7/24", "fe80::1/64"])
def test_a_trusted_network_with_host_bits_is_refused(proxy: str) -> None:
    """Once accepted and silently ignored: every listener behind the edge shared one budget."""
    with pytest.raises(ValueError, match="no host bits"):
        Config(trusted_proxies=(proxy,))


@pytest.mark.parametrize("proxy", ["10.0.0.0/8", "127.0.0.1", "::1", "fe80::/64"])
def test_trusted_addresses_and_networks(proxy: str) -> None:
    assert Config(trusted_proxies=(proxy,)).trusted_proxies == (proxy,)


def test_the_public_url_is_the_site_url() -> None:
    assert Config().site_url == "http://127.0.0.1:8080"
    assert Config(advertise_url="http://10.0.0.5:8080").site_url == "http://10.0.0.5:8080"
    config = Config(advertise_url="http://10.0.0.5:8080", public_url="https://live.example/")
    assert config.site_url == "https://live.example"
    assert config.node_url == "http://10.0.0.5:8080"


@pytest.mark.parametrize(
    "bad",
    [
        "live.example",
        "ftp://live.example",
        "https://",
        "https://live.example/listen",
        "https://live.example/?x=1",
        "https://user@live.example",
        "https://live.example:99999",
        'https://live.example"',
    ],
)
def test_bad_public_urls_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="public_url"):
        Config(public_url=bad)
