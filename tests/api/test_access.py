"""Access control on a real node: every endpoint x every kind of caller -> the expected status.

One node (module scope) and one live space ("the world") whose people are all made through the
API, as a deployment would: the host's and co-host's account tokens (`causerie token`), an
operator's (`causerie token --operator`: no member of the space), a listener's token from
`join`, a speaker who raised a hand and was approved, a speaker who was then removed, the host
of another space, a listener token for another space, an expired account token and a tampered
token. `ROWS` holds one row per endpoint (method and path as the router
spells them), with the status each caller gets; `test_every_route_has_a_row` fails when a route
is added without its row. Refusals must be JSON `{"error", "message"}`.

Rows whose success would change the world get their own target per call (`setup`), so the rows
stay independent of their order; only `end` uses a world of its own (one per caller).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastapi.routing
import httpx
import pytest
import pytest_asyncio
from starlette.routing import Mount

from causerie.cli import issue_account_token
from tests.conftest import account
from tests.fixtures.rtc import Published, ToneTrack, loopback_only, publish
from tests.harness.in_process import RunningNode, run_node

ROLES = (
    "none",
    "expired",
    "tampered",
    "other_space",
    "other_host",
    "removed",
    "listener",
    "speaker",
    "cohost",
    "host",
    "operator",
)

# What a caller without a valid token for this space gets from an endpoint that needs one.
REFUSED = {"none": 401, "expired": 401, "tampered": 401, "other_space": 403}


def everyone(status: int) -> dict[str, int]:
    """A public endpoint: the token (or its absence) changes nothing."""
    return dict.fromkeys(ROLES, status)


def by_role(
    *,
    host: int,
    cohost: int,
    speaker: int,
    listener: int,
    removed: int = 403,
    other_host: int | None = None,
    operator: int | None = None,
) -> dict[str, int]:
    """An endpoint that needs a token for the space; another space's host is a listener here,
    and so is an operator, except where the operator's role says otherwise."""
    return {
        **REFUSED,
        "other_host": listener if other_host is None else other_host,
        "operator": listener if operator is None else operator,
        "removed": removed,
        "listener": listener,
        "speaker": speaker,
        "cohost": cohost,
        "host": host,
    }


def operators(ok: int) -> dict[str, int]:
    """The site's operators only, whatever anyone is in a space."""
    return {**dict.fromkeys(ROLES, 403), **REFUSED, "operator": ok}


def moderators(ok: int, operator: int = 403) -> dict[str, int]:
    """Host and co-hosts; an operator only for what takes something down (`operator=ok`)."""
    return by_role(host=ok, cohost=ok, speaker=403, listener=403, operator=operator)


@dataclass
class World:
    """A live space and one set of credentials per role (see the module docstring)."""

    http: httpx.AsyncClient
    node: RunningNode
    space_id: str
    other_space_id: str
    headers: dict[str, dict[str, str]]
    ids: dict[str, str]
    sessions: list[Published] = field(default_factory=list)

    def base(self) -> str:
        return f"/api/spaces/{self.space_id}"

    async def join(self, name: str = "Lou", space_id: str | None = None) -> tuple[str, str]:
        joined = await self.http.post(
            f"/api/spaces/{space_id or self.space_id}/join", json={"name": name}
        )
        assert joined.status_code == 200, joined.text
        return joined.json()["listener_id"], joined.json()["token"]

    async def as_host(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self.http.request(
            method, self.base() + path, headers=self.headers["host"], **kwargs
        )
        assert response.is_success, (method, path, response.text)
        return response

    async def speaker(self, name: str) -> tuple[str, dict[str, str]]:
        """A listener who raised a hand and was approved by the host, through the API."""
        user, token = await self.join(name)
        auth = {"Authorization": f"Bearer {token}"}
        raised = await self.http.post(f"{self.base()}/speak-requests", headers=auth)
        assert raised.status_code == 200, raised.text
        await self.as_host("POST", f"/speak-requests/{user}/approve")
        return user, auth


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def escalated(listener_token: str) -> str:
    """A listener token whose claims were rewritten into the host's account (signature kept)."""
    prefix, payload, signature = listener_token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(sub="u-host", aud="*", kind="user")
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    return f"{prefix}.{forged}.{signature}"


async def make_world(http: httpx.AsyncClient, node: RunningNode) -> World:
    data_dir = node.data_dir
    host = account(data_dir, "Hana", user="u-host")
    cohost = account(data_dir, "Cora", user="u-cohost")
    other_host = account(data_dir, "Otto", user="u-other")
    created = await http.post("/api/spaces", json={"title": "The world"}, headers=host)
    other = await http.post("/api/spaces", json={"title": "Elsewhere"}, headers=other_host)
    assert created.status_code == other.status_code == 201
    space_id, other_id = created.json()["id"], other.json()["id"]
    world = World(http, node, space_id, other_id, {"host": host}, {"host": "u-host"})
    await world.as_host("POST", "/start")
    await world.as_host("PUT", "/cohosts/u-cohost", json={"name": "Cora"})
    speaker_id, speaker = await world.speaker("Sam")
    removed_id, removed = await world.speaker("Rex")
    await world.as_host("POST", "/removals", json={"user_id": removed_id})
    listener_id, listener = await world.join("Lou")
    _, other_space = await world.join("Oz", other_id)
    expired = issue_account_token(data_dir, "Hana", "u-host", days=-1)
    operator = issue_account_token(data_dir, "Olga", "u-op", days=1, operator=True)
    world.headers.update(
        none={},
        expired=bearer(expired),
        tampered=bearer(escalated(listener)),
        other_space=bearer(other_space),
        other_host=other_host,
        removed=removed,
        listener=bearer(listener),
        speaker=speaker,
        cohost=cohost,
        operator=bearer(operator),
    )
    world.ids.update(
        cohost="u-cohost",
        operator="u-op",
        other_host="u-other",
        speaker=speaker_id,
        removed=removed_id,
        listener=listener_id,
    )
    return world


# -- per-call preparations: (world, role) -> values for the path, and an undo ------------------

Values = dict[str, str]
Setup = Callable[[World, str], Awaitable[Values]]


async def fresh_id(world: World, role: str) -> Values:
    return {"user_id": "l-" + secrets.token_urlsafe(6)}


async def raised_hand(world: World, role: str) -> Values:
    user, token = await world.join("Ada")
    response = await world.http.post(f"{world.base()}/speak-requests", headers=bearer(token))
    assert response.status_code == 200, response.text
    return {"user_id": user}


async def other_speaker(world: World, role: str) -> Values:
    user, _ = await world.speaker("Tia")
    return {"user_id": user}


async def other_cohost(world: World, role: str) -> Values:
    user = "u-" + secrets.token_urlsafe(6)
    await world.as_host("PUT", f"/cohosts/{user}", json={"name": "Cole"})
    return {"user_id": user}


async def question(world: World, role: str) -> Values:
    _, token = await world.join("Quinn")
    asked = await world.http.post(
        f"{world.base()}/questions", json={"text": "Why?"}, headers=bearer(token)
    )
    assert asked.status_code == 201, asked.text
    return {"question_id": asked.json()["id"]}


async def open_report(world: World, role: str) -> Values:
    """A fresh open report of the world's space (put in the store: no rate limit spent)."""
    from causerie.domain.reports import Target, TargetKind, file_report

    target = Target(world.space_id, TargetKind.SPACE, world.space_id)
    report = file_report(
        target,
        reason="spam",
        note=None,
        reporter=f"l-{secrets.token_hex(4)}",
        now=world.node.app.services.now(),
    )
    await world.node.app.services.moderation.add_report(report)
    return {"ref": report.ref}


async def invited_caller(world: World, role: str) -> Values:
    """The host invites the caller (when the caller has an id and may be invited)."""
    user = world.ids.get(role)
    if user is not None and role not in ("host", "removed"):
        await world.http.post(
            f"{world.base()}/invitations", json={"user_id": user}, headers=world.headers["host"]
        )
    return {}


async def speaker_session(world: World, role: str) -> Values:
    """A live WHIP session of the world's speaker (a new one if the last was ended)."""
    speakers = world.node.app.services.speakers
    live = [s for s in world.sessions if speakers.get(world.space_id, s.location.rsplit("/", 1)[1])]
    if not live:
        token = world.headers["speaker"]["Authorization"].split()[1]
        live = [await publish(world.http, world.space_id, token, ToneTrack(440))]
        world.sessions += live
    return {"session_id": live[0].location.rsplit("/", 1)[1]}


async def clean_target(world: World, values: Values, role: str) -> None:
    """Remove the call's target, so that the stage stays within its limits."""
    if "user_id" in values:
        await world.as_host("POST", "/removals", json={"user_id": values["user_id"]})


async def back_to_audience(world: World, values: Values, role: str) -> None:
    """Put a caller who accepted an invitation back in the audience."""
    space = (await world.http.get(world.base())).json()
    if world.ids.get(role) in {p["id"] for p in space["stage"]} and role in (
        "listener",
        "other_host",
        "operator",
    ):
        await world.as_host("DELETE", f"/stage/{world.ids[role]}")


async def new_invite(world: World, role: str) -> Values:
    """A fresh invite (made by the operator), its id and code."""
    made = await world.http.post(
        "/api/admin/invites", json={"note": "access"}, headers=world.headers["operator"]
    )
    assert made.status_code == 201, made.text
    return {"invite_id": made.json()["id"], "code": made.json()["code"]}


async def some_account(world: World, role: str) -> Values:
    return {"account_id": "u-" + secrets.token_urlsafe(6)}


# -- the table ------------------------------------------------------------------------------

SDP = {"Content-Type": "application/sdp"}
NOT_AN_OFFER = b"v=0\r\nthis is not an offer\r\n"


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    """As the router spells it; `{space_id}` is the world's space unless `values` says."""
    expect: dict[str, int]
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    """The query string; `{site}` is the node's public URL."""
    values: Values = field(default_factory=dict)
    setup: Setup | None = None
    cleanup: Callable[[World, Values, str], Awaitable[None]] | None = None
    note: str = ""

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


def page(path: str) -> Row:
    return Row("GET", path, everyone(200))


ROWS: list[Row] = [
    # Operations and documents: public (an edge never exposes /metrics, see docs/edges.md).
    Row("GET", "/healthz", everyone(200)),
    Row("GET", "/metrics", everyone(200)),
    Row("GET", "/openapi.json", everyone(200)),
    Row("HEAD", "/openapi.json", everyone(200)),
    Row("GET", "/api/docs", everyone(200)),
    Row("HEAD", "/api/docs", everyone(200)),
    # Pages and their files: public.
    page("/"),
    page("/s/{space_id}"),
    page("/s/{space_id}/report"),
    page("/s/{space_id}/speak"),
    page("/studio"),
    page("/studio/{space_id}"),
    # The embeddable player and its oEmbed (tests/api/test_embed.py): public, framed anywhere.
    page("/embed/{space_id}"),
    Row("HEAD", "/embed/{space_id}", everyone(200)),
    Row("GET", "/oembed", everyone(200), params={"url": "{site}/s/{space_id}"}),
    page("/admin"),
    Row("GET", "/invite/{code}", everyone(200), values={"code": "any"}),
    page("/transparency"),
    Row("GET", "/static/{path}", everyone(200), values={"path": "space.js"}),
    # Reading a space: public and cacheable.
    Row("GET", "/api/settings", everyone(200)),
    Row("GET", "/api/transparency", everyone(200)),
    # Reports: anyone with a token for the space reports; only operators see and decide.
    Row(
        "POST",
        "/api/spaces/{space_id}/reports",
        by_role(host=201, cohost=201, speaker=201, listener=201, removed=201),
        json={"reason": "spam"},
        note="a removed person may still report what happened to them",
    ),
    Row("GET", "/api/admin/reports", operators(200)),
    Row(
        "POST",
        "/api/admin/reports/{ref}/actions",
        operators(200),
        json={"action": "dismiss", "reason": "not abusive"},
        setup=open_report,
    ),
    Row("GET", "/api/admin/audit", operators(200)),
    Row("GET", "/api/admin/audit/latest", operators(200)),
    Row("GET", "/api/spaces", everyone(200)),
    Row("GET", "/api/spaces/{space_id}", everyone(200)),
    Row("GET", "/api/spaces/{space_id}.ics", everyone(200)),
    Row("GET", "/api/spaces/{space_id}/stats", everyone(200)),
    Row("GET", "/api/spaces/{space_id}/stats.csv", everyone(200)),
    Row("GET", "/api/spaces/{space_id}/events", everyone(200)),
    Row("GET", "/api/spaces/{space_id}/questions", everyone(200)),
    Row("GET", "/api/spaces/{space_id}/reactions", everyone(200)),
    # Joining is anonymous: even a removed listener gets a new, unrelated listener token
    # (SECURITY.md: "A removed listener can re-join anonymously").
    Row("POST", "/api/spaces/{space_id}/join", everyone(200), json={"name": "Joe"}),
    # The space itself.
    Row(
        "POST",
        "/api/spaces",
        by_role(host=201, cohost=201, other_host=201, speaker=403, listener=403, operator=201),
        json={"title": "Mine"},
        note="accounts only: a listener token cannot create spaces",
    ),
    Row("PATCH", "/api/spaces/{space_id}", moderators(200), json={"title": "Renamed"}),
    Row(
        "POST",
        "/api/spaces/{space_id}/start",
        moderators(409),
        note="already live: 409 shows the role check passed (it comes first)",
    ),
    Row(
        "POST",
        "/api/spaces/{space_id}/heartbeat",
        by_role(host=204, cohost=204, speaker=204, listener=204, removed=204),
        note="a removed listener may still listen (the media is public) and is counted",
    ),
    # The stage.
    Row(
        "POST",
        "/api/spaces/{space_id}/speak-requests",
        by_role(host=403, cohost=403, speaker=403, listener=200),
    ),
    Row(
        "DELETE",
        "/api/spaces/{space_id}/speak-requests/me",
        by_role(host=204, cohost=204, speaker=204, listener=204, removed=204),
        note="lowering one's own hand (a no-op without one) changes nothing for others",
    ),
    Row("GET", "/api/spaces/{space_id}/speak-requests", moderators(200)),
    Row(
        "POST",
        "/api/spaces/{space_id}/speak-requests/{user_id}/approve",
        moderators(200),
        setup=raised_hand,
        cleanup=clean_target,
    ),
    Row(
        "POST",
        "/api/spaces/{space_id}/speak-requests/{user_id}/deny",
        moderators(200),
        setup=raised_hand,
        cleanup=clean_target,
    ),
    Row(
        "POST",
        "/api/spaces/{space_id}/invitations",
        moderators(200),
        json={"user_id": "l-invited", "name": "Ivy"},
    ),
    Row(
        "POST",
        "/api/spaces/{space_id}/invitations/accept",
        by_role(host=404, cohost=404, speaker=404, listener=200, removed=404),
        setup=invited_caller,
        cleanup=back_to_audience,
        note="the host invites each caller first; the removed cannot be invited",
    ),
    Row(
        "PUT",
        "/api/spaces/{space_id}/cohosts/{user_id}",
        by_role(host=200, cohost=403, speaker=403, listener=403),
        json={"name": "Cole"},
        setup=fresh_id,
        cleanup=clean_target,
    ),
    Row(
        "DELETE",
        "/api/spaces/{space_id}/cohosts/{user_id}",
        by_role(host=200, cohost=403, speaker=403, listener=403),
        setup=other_cohost,
        cleanup=clean_target,
    ),
    Row(
        "PUT",
        "/api/spaces/{space_id}/stage/{user_id}/muted",
        moderators(200, operator=200),
        json={"muted": True},
        setup=other_speaker,
        cleanup=clean_target,
    ),
    Row(
        "DELETE",
        "/api/spaces/{space_id}/stage/{user_id}",
        moderators(200, operator=200),
        setup=other_speaker,
        cleanup=clean_target,
    ),
    Row(
        "POST",
        "/api/spaces/{space_id}/removals",
        moderators(200, operator=200),
        json={"user_id": "{user_id}"},
        setup=other_speaker,
        cleanup=clean_target,
    ),
    Row(
        "GET",
        "/api/spaces/{space_id}/levels",
        moderators(200, operator=200),
        note="who is talking: what an operator looks at before muting someone",
    ),
    # The audience.
    Row(
        "POST",
        "/api/spaces/{space_id}/questions",
        by_role(host=201, cohost=201, speaker=201, listener=201),
        json={"text": "What next?"},
    ),
    Row(
        "POST",
        "/api/spaces/{space_id}/questions/{question_id}/votes",
        by_role(host=201, cohost=201, speaker=201, listener=201),
        setup=question,
    ),
    Row(
        "DELETE",
        "/api/spaces/{space_id}/questions/{question_id}",
        by_role(host=403, cohost=403, speaker=403, listener=403),
        setup=question,
        note="only its author withdraws a question (tests/api/test_audience.py)",
    ),
    Row(
        "POST",
        "/api/spaces/{space_id}/questions/{question_id}/{action}",
        moderators(200, operator=200),
        values={"action": "pin"},
        setup=question,
    ),
    Row(
        "POST",
        "/api/spaces/{space_id}/reactions",
        by_role(host=202, cohost=202, speaker=202, listener=202),
        json={"emoji": "👏"},
    ),
    # Replays and clips: public (the world is live, so its replay is not ready: 409).
    Row("GET", "/replay/{space_id}/index.m3u8", everyone(409)),
    Row(
        "GET",
        "/replay/{space_id}/{run_id}/{name}",
        everyone(404),
        values={"run_id": "r1", "name": "init.mp4"},
    ),
    Row(
        "HEAD",
        "/replay/{space_id}/{run_id}/{name}",
        everyone(404),
        values={"run_id": "r1", "name": "init.mp4"},
    ),
    Row("GET", "/replay/{space_id}.m4a", everyone(409)),
    Row("HEAD", "/replay/{space_id}.m4a", everyone(409)),
    Row(
        "POST",
        "/api/spaces/{space_id}/clips",
        everyone(409),
        json={},
        values={"space_id": "{other_space_id}"},
        note="anyone may cut a clip; the other space has not started, so nothing is recorded",
    ),
    Row("GET", "/clips/{clip_id}.m4a", everyone(404), values={"clip_id": "nope.0-1000"}),
    # Captions: the host and co-hosts switch them; transcripts are public once the space ended
    # (the world is live: 409), and so is search (no words to search for: 400).
    Row(
        "PUT",
        "/api/spaces/{space_id}/captions",
        moderators(200),
        json={"enabled": True},
        note="host and co-hosts (Action.SET_CAPTIONS)",
    ),
    Row("GET", "/replay/{space_id}/transcript.vtt", everyone(409)),
    Row("GET", "/replay/{space_id}/transcript.txt", everyone(409)),
    Row("GET", "/replay/{space_id}/transcript.json", everyone(409)),
    Row("GET", "/replay/{space_id}/main.m3u8", everyone(409)),
    Row("GET", "/replay/{space_id}/subtitles.m3u8", everyone(409)),
    Row("GET", "/api/search", everyone(400)),
    Row("HEAD", "/clips/{clip_id}.m4a", everyone(404), values={"clip_id": "nope.0-1000"}),
    # WHIP: the host, co-hosts and speakers publish. A garbage offer gets 400 once the caller
    # is allowed, 403 before: so no media session is made for each row.
    Row(
        "POST",
        "/whip/{space_id}",
        by_role(host=400, cohost=400, speaker=400, listener=403),
        content=NOT_AN_OFFER,
        headers=SDP,
    ),
    Row(
        "DELETE",
        "/whip/{space_id}/sessions/{session_id}",
        by_role(host=200, cohost=200, speaker=200, listener=403),
        setup=speaker_session,
        note="a real aiortc session of the speaker; its owner, the host or a co-host end it",
    ),
    Row(
        "PATCH",
        "/whip/{space_id}/sessions/{session_id}",
        by_role(host=403, cohost=403, speaker=204, listener=403),
        content=b"a=end-of-candidates\r\n",
        headers={"Content-Type": "application/trickle-ice-sdpfrag", "If-Match": "*"},
        setup=speaker_session,
        note="trickle ICE and ICE restarts: the session's own speaker only",
    ),
    Row("OPTIONS", "/whip/{space_id}", everyone(204)),
    Row(
        "OPTIONS",
        "/whip/{space_id}/sessions/{session_id}",
        everyone(204),
        values={"session_id": "s1"},
    ),
    # Ending: the host, or an operator (a world of its own per caller, since it ends it).
    Row(
        "POST",
        "/api/spaces/{space_id}/end",
        by_role(host=200, cohost=403, speaker=403, listener=403, operator=200),
    ),
]

ROWS += [
    # The operator's console: operators only, whatever else the token may do.
    Row("GET", "/api/admin/overview", operators(200)),
    Row("GET", "/api/admin/events", operators(200)),
    Row("GET", "/api/admin/invites", operators(200)),
    Row("POST", "/api/admin/invites", operators(201), json={"role": "host"}),
    Row("DELETE", "/api/admin/invites/{invite_id}", operators(200), setup=new_invite),
    Row("GET", "/api/admin/accounts", operators(200)),
    Row(
        "POST",
        "/api/admin/accounts/{account_id}/revoke",
        operators(200),
        setup=some_account,
    ),
    # Opening an invite: the code is the credential, whoever holds it (once each).
    Row("GET", "/api/invites/{code}", everyone(200), setup=new_invite),
    Row("POST", "/api/invites/{code}", everyone(201), json={"name": "Ivo"}, setup=new_invite),
]

# Served beside the router by the node's raw ASGI origin (api/app.py `Node`): public media.
RAW_ROWS: list[Row] = [
    Row("GET", "/hls/{space_id}/index.m3u8", everyone(200)),
    Row("GET", "/hls/{space_id}/main.m3u8", everyone(200)),
    Row("GET", "/feed/{space_id}/now", everyone(200)),
    Row("GET", "/hls/{space_id}/{media}", everyone(200)),
    Row("GET", "/hls/{space_id}/nothing-here.m4s", everyone(404)),
    Row("GET", "/dash/{space_id}/manifest.mpd", everyone(200)),
    Row("GET", "/dash/{space_id}/nothing-here/1.m4s", everyone(404)),
    Row("GET", "/time", everyone(200)),
]

OWN_WORLD = {"POST /api/spaces/{space_id}/end"}


# -- running it ---------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def node(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[RunningNode]:
    loopback_only()
    data_dir = tmp_path_factory.mktemp("access") / "data"
    async with run_node(data_dir, rtc_host_addresses=("127.0.0.1",)) as running:
        yield running


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def http(node: RunningNode) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=node.url, timeout=10) as client:
        yield client


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(http: httpx.AsyncClient, node: RunningNode) -> AsyncIterator[World]:
    made = await make_world(http, node)
    yield made
    for session in made.sessions:
        await session.close()


async def call(world: World, row: Row, role: str) -> tuple[httpx.Response, Values]:
    values: Values = {"space_id": world.space_id}
    for key, value in row.values.items():
        values[key] = value.format(other_space_id=world.other_space_id)
    if row.setup is not None:
        values.update(await row.setup(world, role))
    url = row.path.format(**values)
    body = row.json
    if isinstance(body, dict):
        body = {k: v.format(**values) if isinstance(v, str) else v for k, v in body.items()}
    headers = {**row.headers, **world.headers[role]}
    if row.path.endswith("/events"):
        async with world.http.stream(row.method, url, headers=headers) as response:
            if response.status_code >= 400:
                await response.aread()  # a refusal is a JSON body, checked below
            await response.aclose()
        return response, values
    site = world.node.app.services.config.site_url
    params = {k: v.format(site=site, **values) for k, v in row.params.items()}
    response = await world.http.request(
        row.method, url, json=body, content=row.content, headers=headers, params=params
    )
    return response, values


def check_refusal(response: httpx.Response, method: str) -> None:
    if response.status_code >= 400 and method != "HEAD":
        body = response.json()
        assert set(body) == {"error", "message"}, body
        assert body["error"] and body["message"]


async def run_row(world: World, row: Row, roles: tuple[str, ...] = ROLES) -> list[str]:
    wrong = []
    for role in roles:
        response, values = await call(world, row, role)
        if response.status_code != row.expect[role]:
            wrong.append(f"{role}: {response.status_code} != {row.expect[role]} {response.text}")
        check_refusal(response, row.method)
        if row.cleanup is not None:
            await row.cleanup(world, values, role)
    return wrong


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("row", ROWS, ids=lambda row: row.id)
async def test_access(world: World, http: httpx.AsyncClient, node: RunningNode, row: Row) -> None:
    if row.id in OWN_WORLD:
        wrong = []
        for role in ROLES:
            wrong += await run_row(await make_world(http, node), row, (role,))
    else:
        wrong = await run_row(world, row)
    assert not wrong, "\n".join(wrong)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize("row", RAW_ROWS, ids=lambda row: row.id)
async def test_raw_asgi_access(world: World, row: Row) -> None:
    if "{media}" in row.path:
        playlist = (await world.http.get(f"/hls/{world.space_id}/index.m3u8")).text
        init = playlist.split('#EXT-X-MAP:URI="', 1)[1].split('"', 1)[0]
        row = Row(row.method, f"/hls/{{space_id}}/{init}", row.expect)
    assert not await run_row(world, row)


def router_endpoints(routes: list[Any]) -> set[str]:
    """Every (method, path) the FastAPI app answers, including those left out of OpenAPI."""
    found = set()
    for route in fastapi.routing.iter_route_contexts(routes):
        original = route.original_route
        if isinstance(original, Mount):
            found.add(f"GET {original.path}/{{path}}")
            continue
        found.update(f"{method} {route.path}" for method in route.methods or ())
    return found


def test_every_route_has_a_row(tmp_path: Path) -> None:
    from causerie.app import create_app
    from causerie.node.config import Config

    app = create_app(Config(data_dir=tmp_path))
    routes = router_endpoints(app.api.routes)
    rows = {row.id for row in ROWS}
    assert routes - rows == set(), "add a row to ROWS for each new endpoint"
    assert rows - routes == set(), "rows for endpoints that no longer exist"
    openapi = app.api.openapi()["paths"]
    documented = {f"{m.upper()} {p}" for p, ops in openapi.items() for m in ops}
    assert documented <= rows


# -- removal: what a removed person still holds is worth nothing ------------------------------


@pytest.mark.asyncio(loop_scope="module")
async def test_removed_people_cannot_act_or_come_back(world: World) -> None:
    """A removed speaker (publishing at that moment) and a removed co-host keep their tokens,
    which the space now refuses for everything but listening; moderators cannot bring them back.
    Re-joining gives an anonymous new listener, unrelated to the removed one."""
    http, base = world.http, world.base()
    rogue_id, rogue = await world.speaker("Rogue")
    session = await publish(http, world.space_id, rogue["Authorization"].split()[1], ToneTrack(330))
    try:
        await session.wait_connected()
        cohost = account(world.node.data_dir, "Mallory", user="u-mallory")
        await world.as_host("PUT", "/cohosts/u-mallory", json={"name": "Mallory"})
        asked = await http.post(f"{base}/questions", json={"text": "Still here?"}, headers=rogue)
        assert asked.status_code == 201
        await world.as_host("POST", "/removals", json={"user_id": rogue_id})
        await world.as_host("POST", "/removals", json={"user_id": "u-mallory"})

        # The speaker's session ended with the removal, and cannot start again.
        speakers = world.node.app.services.speakers
        assert all(s.user_id != rogue_id for s in speakers.sessions(world.space_id))
        again = await http.post(
            f"/whip/{world.space_id}",
            content=session.pc.localDescription.sdp,
            headers={**SDP, **rogue},
        )
        assert again.status_code == 403 and "removed" in again.json()["message"]
        attempts = [
            ("POST", "/speak-requests", None),
            ("POST", "/questions", {"text": "Let me back in"}),
            ("POST", f"/questions/{asked.json()['id']}/votes", None),
            ("POST", "/reactions", {"emoji": "🔥"}),
        ]
        for headers in (rogue, cohost):
            for method, path, body in attempts:
                refused = await http.request(method, base + path, json=body, headers=headers)
                assert refused.status_code == 403, (method, path, refused.text)
                assert "removed" in refused.json()["message"]
        # What the co-host could do as a moderator is gone too.
        for method, path, body in [
            ("GET", "/speak-requests", None),
            ("PATCH", "", {"title": "Mine now"}),
            ("POST", "/removals", {"user_id": world.ids["speaker"]}),
            ("PUT", f"/stage/{world.ids['speaker']}/muted", {"muted": True}),
        ]:
            refused = await http.request(method, base + path, json=body, headers=cohost)
            assert refused.status_code == 403, (method, path, refused.text)
        # Nobody can bring them back on stage under the ids they had.
        host = world.headers["host"]
        for user in (rogue_id, "u-mallory"):
            invited = await http.post(f"{base}/invitations", json={"user_id": user}, headers=host)
            assert invited.status_code == 403 and "removed" in invited.json()["message"]
            made = await http.put(f"{base}/cohosts/{user}", json={"name": "X"}, headers=host)
            assert made.status_code == 403
        stage = {p["id"] for p in (await http.get(base)).json()["stage"]}
        assert rogue_id not in stage and "u-mallory" not in stage
        # Re-joining is anonymous: a new listener id, which must ask to speak like anyone.
        new_id, _ = await world.join("Rogue")
        assert new_id != rogue_id
    finally:
        await session.close()


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(
    "authorization",
    [
        b"Bearer c1.abc.\xe9",  # latin-1 in a header: once a 500 (hmac refuses non-ASCII text)
        b"Bearer \xe9",
        b"Bearer",
        b"Basic dTpw",
        b"bearer c1.a.b",
        b"Bearer " + b"A" * 3000,
        b"Bearer c1..",
    ],
)
async def test_malformed_credentials_are_401(world: World, authorization: bytes) -> None:
    for method, path in [("POST", "/questions"), ("GET", "/levels"), ("POST", "/heartbeat")]:
        response = await world.http.request(
            method,
            world.base() + path,
            json={"text": "?"} if method == "POST" else None,
            headers={"Authorization": authorization},
        )
        assert response.status_code == 401, (path, response.text)
        assert set(response.json()) == {"error", "message"}
    whip = await world.http.post(
        f"/whip/{world.space_id}",
        content=NOT_AN_OFFER,
        headers={"Authorization": authorization, **SDP},
    )
    assert whip.status_code == 401 and whip.json()["error"] == "unauthorized"
