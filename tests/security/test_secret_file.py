"""The secret file: created once, mode 0600, rotatable."""

import logging
import os
import stat
import time

import httpx
import pytest
import redis

from causerie.cli import issue_account_token, main
from causerie.cluster.keys import KEYS
from causerie.security.secret_file import SECRET_FILE, load_or_create_secrets, rotate_secret
from causerie.security.shared_secrets import shared_secrets
from causerie.security.tokens import Claims, InvalidToken, TokenKind, TokenSigner
from tests.harness.in_process import run_node

CLAIMS = Claims(sub="u-1", aud="*", kind=TokenKind.USER, exp=2**40)


def test_created_private_and_stable(tmp_path) -> None:
    first = load_or_create_secrets(tmp_path)
    mode = stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode)
    assert mode == 0o600
    assert len(first) == 1 and len(first[0]) == 32
    assert load_or_create_secrets(tmp_path) == first


def test_rotation_puts_a_new_secret_first(tmp_path) -> None:
    first = load_or_create_secrets(tmp_path)
    rotate_secret(tmp_path)
    after = load_or_create_secrets(tmp_path)
    assert after[1:] == first and after[0] != first[0]
    assert stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode) == 0o600


def test_damaged_file_is_reported(tmp_path) -> None:
    (tmp_path / SECRET_FILE).write_text("not hex\n")
    with pytest.raises(ValueError, match="damaged"):
        load_or_create_secrets(tmp_path)


def test_private_whatever_the_umask(tmp_path) -> None:
    previous = os.umask(0)
    try:
        load_or_create_secrets(tmp_path)
        assert stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode) == 0o600
        (tmp_path / "secret.tmp").touch(mode=0o666)  # a leftover of an interrupted rotation
        rotate_secret(tmp_path)
        assert stat.S_IMODE((tmp_path / SECRET_FILE).stat().st_mode) == 0o600
    finally:
        os.umask(previous)


def test_a_secret_file_others_can_read_is_reported(tmp_path, caplog) -> None:
    load_or_create_secrets(tmp_path)
    (tmp_path / SECRET_FILE).chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="causerie.security.secret_file"):
        load_or_create_secrets(tmp_path)
    assert "chmod 600" in caplog.text
    assert (tmp_path / SECRET_FILE).read_text().split()[0] not in caplog.text


async def create(node_url: str, token: str) -> int:
    async with httpx.AsyncClient(base_url=node_url, timeout=10) as http:
        response = await http.post(
            "/api/spaces", json={"title": "Rotation"}, headers={"Authorization": f"Bearer {token}"}
        )
        return response.status_code


async def test_rotation_on_a_real_node(tmp_path) -> None:
    """`causerie rotate-secret`: tokens of the kept secret still work after a restart, those of
    a secret dropped by the next rotation do not; `--keep 0` refuses every older token."""
    data_dir = tmp_path / "data"
    first = issue_account_token(data_dir, "Hana", "u-host", days=1)
    async with run_node(data_dir) as node:
        assert await create(node.url, first) == 201
    assert main(["rotate-secret", "--data-dir", str(data_dir)]) == 0
    second = issue_account_token(data_dir, "Hana", "u-host", days=1)
    async with run_node(data_dir) as node:
        assert await create(node.url, first) == 201  # still accepted, during the rotation
        assert await create(node.url, second) == 201
        async with httpx.AsyncClient(base_url=node.url) as http:
            listener = (
                await http.post(
                    "/api/spaces",
                    json={"title": "x"},
                    headers={"Authorization": f"Bearer {second}"},
                )
            ).json()
            joined = (await http.post(f"/api/spaces/{listener['id']}/join")).json()["token"]
        # The node signs with the new secret only.
        new_only = TokenSigner(load_or_create_secrets(data_dir)[:1])
        assert new_only.verify(joined, now=time.time()).kind == "listener"
    assert main(["rotate-secret", "--data-dir", str(data_dir)]) == 0  # drops the first secret
    async with run_node(data_dir) as node:
        assert await create(node.url, first) == 401
        assert await create(node.url, second) == 201
    assert main(["rotate-secret", "--data-dir", str(data_dir), "--keep", "0"]) == 0
    async with run_node(data_dir) as node:
        assert await create(node.url, second) == 401
    assert len(load_or_create_secrets(data_dir)) == 1


def test_rotation_of_the_secret_nodes_share_in_redis(tmp_path, redis_url) -> None:
    node_a, node_b = tmp_path / "a", tmp_path / "b"
    node_a.mkdir()
    old = TokenSigner(shared_secrets(redis_url, node_a)).issue(CLAIMS)
    assert main(["rotate-secret", "--data-dir", str(node_b), "--redis", redis_url]) == 0
    # Any node restarted now takes the rotated secrets from Redis, and keeps them on disk.
    rotated = shared_secrets(redis_url, node_a)
    assert rotated == load_or_create_secrets(node_a) == load_or_create_secrets(node_b)
    assert TokenSigner(rotated).verify(old, now=0) == CLAIMS
    assert main(["rotate-secret", "--data-dir", str(node_b), "--redis", redis_url]) == 0
    with pytest.raises(InvalidToken, match="signature"):
        TokenSigner(shared_secrets(redis_url, node_a)).verify(old, now=0)
    assert stat.S_IMODE((node_a / SECRET_FILE).stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("stored", "error"),
    [("not hex\n", "are damaged"), ("\n \n", "holds no secret")],
)
def test_damaged_shared_secrets_are_reported(tmp_path, redis_url, stored, error) -> None:
    client = redis.Redis.from_url(redis_url)
    try:
        client.set(KEYS.secrets, stored)
    finally:
        client.close()
    with pytest.raises(ValueError, match=f"{error}.*{KEYS.secrets}|{KEYS.secrets}.*{error}"):
        shared_secrets(redis_url, tmp_path)


def test_keep_must_not_be_negative(tmp_path, capsys) -> None:
    assert main(["rotate-secret", "--data-dir", str(tmp_path), "--keep", "-1"]) == 2
    assert "--keep" in capsys.readouterr().err
