"""The `--redis` URL: one server or a Sentinel service, checked before anything connects."""

from __future__ import annotations

import pytest

from causerie.cli import main
from causerie.cluster.redis_url import RedisTarget, parse_redis_url
from causerie.node.config import Config


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database() -> None:
    target = parse_redis_url(
        "redis+sentinel://:s%40cret@10.0.0.1:26380,sentinel-b,[::1]:26381/causerie/2"
        "?wait_replicas=2&wait_timeout=0.25"
    )
    assert target.sentinel
    assert target.sentinels == (("10.0.0.1", 26380), ("sentinel-b", 26379), ("::1", 26381))
    assert (target.service, target.db, target.username, target.password) == (
        "causerie",
        2,
        None,
        "s@cret",
    )
    assert (target.wait_replicas, target.wait_timeout) == (2, 0.25)
    assert "s%40cret" not in target.shown and "***" in target.shown


def test_defaults_wait_for_one_replica_for_a_second() -> None:
    target = parse_redis_url("REDIS+SENTINEL://127.0.0.1/mymaster")
    assert target.sentinels == (("127.0.0.1", 26379),)
    assert (target.service, target.db, target.wait_replicas, target.wait_timeout) == (
        "mymaster",
        0,
        1,
        1.0,
    )


def test_one_server_is_left_to_redis_py_and_waits_for_nobody() -> None:
    target = parse_redis_url("redis://:pw@127.0.0.1:6379/0")
    assert target == RedisTarget("redis://:pw@127.0.0.1:6379/0")
    assert not target.sentinel and target.wait_replicas == 0
    assert target.shown == "redis://:***@127.0.0.1:6379/0"
    assert parse_redis_url("unix:///run/redis.sock").url == "unix:///run/redis.sock"


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://127.0.0.1:26379", "the service name Sentinel monitors is missing"),
        ("redis+sentinel://127.0.0.1:26379/", "the service name Sentinel monitors is missing"),
        ("redis+sentinel://h/svc/zero", "only a database number may follow"),
        ("redis+sentinel://h/svc/0/1", "only a database number may follow"),
        ("redis+sentinel://h:0/svc", "'0' is not a port (1 to 65535)"),
        ("redis+sentinel://h:99999/svc", "'99999' is not a port"),
        ("redis+sentinel://a,,b/svc", "'' is not a host[:port]"),
        ("redis+sentinel://::1:26379/svc", "IPv6 addresses go in brackets"),
        ("redis+sentinel://[::1/svc", "'[::1' is not a host[:port]"),
        ("redis+sentinel://h/svc?wait=1", "unknown option 'wait'"),
        ("redis+sentinel://h/svc?wait_replicas=-1", "wait_replicas is a number of replicas"),
        ("redis+sentinel://h/svc?wait_timeout=0", "wait_timeout is in seconds, 0.01 to 10"),
        ("redis+sentinel://h/svc?wait_timeout=soon", "wait_timeout is in seconds"),
        ("redis+sentinel://h/svc#x", "a fragment (#) has no meaning here"),
        ("http://127.0.0.1:6379", "--redis is redis://host:port/db"),
        ("redis://127.0.0.1:port", "--redis is redis://host:port/db"),
        ("127.0.0.1:6379", "redis+sentinel://[user:password@]host[:port]"),
    ],
)
def test_a_bad_url_says_what_is_wrong_and_the_form(url: str, says: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_redis_url(url)
    assert says in str(caught.value)


def test_a_password_never_shows_in_the_error() -> None:
    with pytest.raises(ValueError) as caught:
        parse_redis_url("redis+sentinel://:hunter2@h:26379")
    assert "hunter2" not in str(caught.value)


def test_the_node_refuses_a_bad_url_at_start(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="service name"):
        Config(redis_url="redis+sentinel://127.0.0.1:26379")
    for command in (["serve"], ["token"], ["rotate-secret"]):
        with pytest.raises(SystemExit) as exited:
            main([*command, "--redis", "redis+sentinel://h:26379/svc?wait_replicas=x"])
        assert exited.value.code == 2
        assert "wait_replicas is a number of replicas" in capsys.readouterr().err
