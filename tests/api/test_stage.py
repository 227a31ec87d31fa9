"""Moderation through the HTTP API: every kind of caller x every stage action -> status."""

from __future__ import annotations

import pytest

from causerie.cli import issue_account_token
from tests.conftest import account

CALLERS = [
    "host",
    "cohost",
    "speaker",
    "listener",
    "stranger",  # another account: a listener here, whatever it hosts elsewhere
    "none",
    "other_space",
    "expired",
    "tampered",
]

# The status each caller gets for each action; "T" is the target: a speaker whose hand was
# raised again before (so approve/deny have a request to act on) — see `setup`.
ACTIONS = {
    "raise_hand": ("POST", "/speak-requests", None),
    "list_requests": ("GET", "/speak-requests", None),
    "approve": ("POST", "/speak-requests/{asker}/approve", None),
    "deny": ("POST", "/speak-requests/{asker}/deny", None),
    "invite": ("POST", "/invitations", {"user_id": "l-invitee", "name": "Ivy"}),
    "make_cohost": ("PUT", "/cohosts/{target}", None),
    "mute_target": ("PUT", "/stage/{target}/muted", {"muted": True}),
    "to_audience": ("DELETE", "/stage/{target}", None),
    "remove": ("POST", "/removals", {"user_id": "{target}"}),
    "end": ("POST", "/end", None),
}

MODERATOR_ONLY = {"host": 200, "cohost": 200, "speaker": 403, "listener": 403, "stranger": 403}
EXPECTED: dict[str, dict[str, int]] = {
    "raise_hand": {"host": 403, "cohost": 403, "speaker": 403, "listener": 200, "stranger": 200},
    "list_requests": MODERATOR_ONLY,
    "approve": MODERATOR_ONLY,
    "deny": MODERATOR_ONLY,
    "invite": MODERATOR_ONLY,
    "make_cohost": {"host": 200, "cohost": 403, "speaker": 403, "listener": 403, "stranger": 403},
    "mute_target": MODERATOR_ONLY,
    "to_audience": MODERATOR_ONLY,
    "remove": MODERATOR_ONLY,
    "end": {"host": 200, "cohost": 403, "speaker": 403, "listener": 403, "stranger": 403},
}
for table in EXPECTED.values():
    table.update({"none": 401, "other_space": 403, "expired": 401, "tampered": 401})


async def listener_token(client, space_id: str) -> tuple[str, str]:
    joined = (await client.post(f"/api/spaces/{space_id}/join")).json()
    return joined["listener_id"], joined["token"]


async def setup(client, node) -> tuple[str, dict[str, dict[str, str]], dict[str, str]]:
    """A live space with a co-host, a speaker (the target), a listener and a raised hand."""
    data_dir = node.data_dir
    host = account(data_dir, user="u-host")
    space = (await client.post("/api/spaces", json={"title": "Stage"}, headers=host)).json()
    base = f"/api/spaces/{space['id']}"
    assert (await client.post(f"{base}/start", headers=host)).status_code == 200

    async def on_stage(name: str) -> tuple[str, dict[str, str]]:
        user, token = await listener_token(client, space["id"])
        auth = {"Authorization": f"Bearer {token}"}
        assert (
            await client.post(f"{base}/speak-requests", json={"name": name}, headers=auth)
        ).status_code == 200
        assert (
            await client.post(f"{base}/speak-requests/{user}/approve", headers=host)
        ).status_code == 200
        return user, auth

    speaker_id, speaker = await on_stage("Sam")
    target_id, _ = await on_stage("Tia")
    cohost = account(data_dir, name="Cora", user="u-cohost")
    assert (
        await client.put(f"{base}/cohosts/u-cohost", json={"name": "Cora"}, headers=host)
    ).status_code == 200
    listener_id, listener_tok = await listener_token(client, space["id"])
    asker_id, asker_tok = await listener_token(client, space["id"])
    asking = {"Authorization": f"Bearer {asker_tok}"}
    assert (await client.post(f"{base}/speak-requests", headers=asking)).status_code == 200

    other = (await client.post("/api/spaces", json={"title": "Other"}, headers=host)).json()
    _, other_tok = await listener_token(client, other["id"])
    expired = issue_account_token(data_dir, "Old", "u-host", days=-1)
    good = host["Authorization"]
    callers = {
        "host": host,
        "cohost": cohost,
        "speaker": speaker,
        "listener": {"Authorization": f"Bearer {listener_tok}"},
        "stranger": account(data_dir, name="Sly", user="u-stranger"),
        "none": {},
        "other_space": {"Authorization": f"Bearer {other_tok}"},
        "expired": {"Authorization": f"Bearer {expired}"},
        "tampered": {"Authorization": good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")},
    }
    ids = {"target": target_id, "asker": asker_id, "listener": listener_id, "speaker": speaker_id}
    return base, callers, ids


@pytest.mark.parametrize("action", list(ACTIONS))
async def test_permission_matrix(client, node, action) -> None:
    method, path, body = ACTIONS[action]
    for caller in CALLERS:
        base, callers, ids = await setup(client, node)
        url = base + path.format(**ids)
        json_body = None
        if body is not None:
            json_body = {k: (v.format(**ids) if isinstance(v, str) else v) for k, v in body.items()}
        response = await client.request(method, url, json=json_body, headers=callers[caller])
        expected = EXPECTED[action][caller]
        assert response.status_code == expected, (action, caller, response.text)
        if expected >= 400:
            assert response.json()["message"]


async def test_the_stage_flow_and_its_limits(client, node) -> None:
    base, callers, ids = await setup(client, node)
    host = callers["host"]
    space = (await client.get(base)).json()
    assert space["requests_waiting"] == 1
    names = {p["name"]: p["role"] for p in space["stage"]}
    assert names == {"Hana": "host", "Cora": "cohost", "Sam": "speaker", "Tia": "speaker"}
    listed = (await client.get(f"{base}/speak-requests", headers=host)).json()["requests"]
    assert [r["user_id"] for r in listed] == [ids["asker"]]

    # Mute, and the speaker unmutes themselves.
    muted = await client.put(
        f"{base}/stage/{ids['speaker']}/muted", json={"muted": True}, headers=host
    )
    assert {p["name"]: p["muted"] for p in muted.json()["stage"]}["Sam"] is True
    again = await client.put(
        f"{base}/stage/{ids['speaker']}/muted", json={"muted": False}, headers=callers["speaker"]
    )
    assert again.status_code == 200
    # A speaker leaves the stage by themselves.
    left = await client.delete(f"{base}/stage/{ids['speaker']}", headers=callers["speaker"])
    assert left.status_code == 200 and "Sam" not in {p["name"] for p in left.json()["stage"]}
    # Removed people cannot come back on stage.
    await client.post(f"{base}/removals", json={"user_id": ids["target"]}, headers=host)
    again = await client.post(f"{base}/invitations", json={"user_id": ids["target"]}, headers=host)
    assert again.status_code == 403 and "removed" in again.json()["message"]
    # The invited listener accepts.
    await client.post(
        f"{base}/invitations", json={"user_id": ids["listener"], "name": "Lou"}, headers=host
    )
    accepted = await client.post(f"{base}/invitations/accept", headers=callers["listener"])
    assert accepted.status_code == 200
    assert "Lou" in {p["name"] for p in accepted.json()["stage"]}
    # Nothing to accept twice, no request to approve twice.
    assert (
        await client.post(f"{base}/invitations/accept", headers=callers["listener"])
    ).status_code == 404
    assert (
        await client.post(f"{base}/speak-requests/nobody/approve", headers=host)
    ).status_code == 404


async def test_speaker_limit_is_a_clear_429(client, node) -> None:
    host = account(node.data_dir, user="u-host")
    space = (await client.post("/api/spaces", json={"title": "Full"}, headers=host)).json()
    base = f"/api/spaces/{space['id']}"
    await client.post(f"{base}/start", headers=host)
    for i in range(11):
        user, token = await listener_token(client, space["id"])
        await client.post(f"{base}/speak-requests", headers={"Authorization": f"Bearer {token}"})
        response = await client.post(f"{base}/speak-requests/{user}/approve", headers=host)
        if i < 10:
            assert response.status_code == 200
    assert response.status_code == 429
    assert "at most 10 speakers" in response.json()["message"]
    assert (await client.get(base)).json()["requests_waiting"] == 1  # the hand stays raised


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("PUT", "/stage/x/muted", {"muted": "loud"}, 422),
        ("PUT", "/stage/x/muted", {}, 422),
        ("POST", "/invitations", {"user_id": ""}, 422),
        ("POST", "/invitations", {"user_id": "x" * 65}, 422),
        ("POST", "/removals", {"user": "x"}, 422),
        ("PUT", "/cohosts/" + "x" * 65, None, 422),
    ],
)
async def test_bad_moderation_input(client, node, method, path, body, status) -> None:
    base, callers, _ = await setup(client, node)
    response = await client.request(method, base + path, json=body, headers=callers["host"])
    assert response.status_code == status
    assert response.json()["message"]
