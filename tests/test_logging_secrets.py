"""Secrets never reach the log or an error response, even at log level debug.

A real `causerie serve --log-level debug` process goes through a whole session: an account
creates and starts a space, listeners join, one is brought on stage and publishes over WHIP
(a real aiortc peer on 127.0.0.1), questions, votes, reactions and heartbeats, then every kind
of refusal (tampered, expired, foreign and malformed tokens, tokens put in query strings and
paths by a careless client, bad bodies). Afterwards neither the server's whole output nor any
error body holds a token, a token's signature, an Authorization value or the signing secret.
"""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import httpx
import pytest

from causerie.cli import issue_account_token
from causerie.security.secret_file import SECRET_FILE
from tests.conftest import account
from tests.fixtures.rtc import ToneTrack, loopback_only, publish
from tests.harness.causerie_process import causerie_process


def secrets_of(data_dir: Path, tokens: list[str]) -> dict[str, str]:
    """Every string that must never be shown, named for the failure message."""
    found = {}
    for n, line in enumerate((data_dir / SECRET_FILE).read_text().split()):
        raw = bytes.fromhex(line)
        found[f"secret {n} (hex)"] = line
        found[f"secret {n} (base64)"] = base64.b64encode(raw).decode().rstrip("=")
        found[f"secret {n} (base64url)"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    for n, token in enumerate(tokens):
        found[f"token {n}"] = token
        found[f"token {n} signature"] = token.rsplit(".", 1)[1]
    return found


def tampered(token: str) -> str:
    return token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")


@pytest.mark.slow
async def test_no_secret_in_the_log_or_in_errors(tmp_path: Path) -> None:
    loopback_only()
    args = ("serve", "--log-level", "debug", "--rtc-host", "127.0.0.1")
    errors: list[httpx.Response] = []
    tokens: list[str] = []
    with causerie_process(tmp_path, *args) as node:
        url, data_dir = node.url, node.data_dir
        assert stat.S_IMODE((data_dir / SECRET_FILE).stat().st_mode) == 0o600
        host = account(data_dir, "Hana", user="u-host")
        tokens.append(host["Authorization"].split()[1])
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:

            async def call(method: str, path: str, **kwargs) -> httpx.Response:
                response = await http.request(method, path, **kwargs)
                if response.status_code >= 400:
                    errors.append(response)
                return response

            space = (await call("POST", "/api/spaces", json={"title": "Log"}, headers=host)).json()
            base = f"/api/spaces/{space['id']}"
            assert (await call("POST", f"{base}/start", headers=host)).status_code == 200
            joined = [(await call("POST", f"{base}/join", json={"name": n})).json() for n in "AB"]
            tokens += [j["token"] for j in joined]
            listener, speaker = ({"Authorization": f"Bearer {j['token']}"} for j in joined)
            speaker_id = joined[1]["listener_id"]

            # An ordinary session.
            await call("POST", f"{base}/speak-requests", headers=speaker)
            await call("POST", f"{base}/speak-requests/{speaker_id}/approve", headers=host)
            published = await publish(http, space["id"], tokens[2], ToneTrack(440))
            try:
                await published.wait_connected()
                asked = await call(
                    "POST", f"{base}/questions", json={"text": "Hi?"}, headers=listener
                )
                await call("POST", f"{base}/questions/{asked.json()['id']}/votes", headers=speaker)
                await call("POST", f"{base}/reactions", json={"emoji": "👏"}, headers=listener)
                await call("POST", f"{base}/heartbeat", headers=listener)
                await call("GET", f"{base}/speak-requests", headers=host)
                assert (await call("DELETE", published.location, headers=speaker)).is_success
            finally:
                await published.close()

            # Refusals, with every kind of credential a caller may send wrongly.
            other = (await call("POST", "/api/spaces", json={"title": "B"}, headers=host)).json()
            foreign = (await call("POST", f"/api/spaces/{other['id']}/join")).json()["token"]
            expired = issue_account_token(data_dir, "Hana", "u-host", days=-1)
            tokens += [foreign, expired]
            for token in tokens:
                for header in (f"Bearer {tampered(token)}", f"Basic {token}", f"Bearer {token} x"):
                    await call(
                        "POST",
                        f"{base}/questions",
                        json={"text": "?"},
                        headers={"Authorization": header},
                    )
                await call("POST", f"{base}/end", headers={"Authorization": f"Bearer {token}"})
                await call("GET", f"/api/spaces/{token}", headers=listener)
                await call("POST", f"{base}/heartbeat?token={token}")
                await call("GET", f"{base}/levels?access_token={token}")
                await call("POST", f"/whip/{space['id']}?token={token}", content=b"v=0")
            await call("POST", f"{base}/questions", content=b"{not json", headers=listener)
            await call("POST", f"{base}/questions", json={"text": ""}, headers=listener)
            await call("POST", "/api/spaces", json={"title": "x" * 500}, headers=host)
            await call("POST", f"{base}/end", headers=host)
        secret_file = (data_dir / SECRET_FILE).read_text()
    log = (tmp_path / "server.log").read_text()

    assert secret_file.strip()
    assert " DEBUG " in log, "the node did not log at debug level"
    assert len(errors) > 5 * len(tokens)
    for name, secret in secrets_of(data_dir, tokens).items():
        assert secret not in log, f"{name} is in the log"
        for response in errors:
            assert set(response.json()) == {"error", "message"}
            assert secret not in response.text, f"{name} is in an error: {response.text}"
