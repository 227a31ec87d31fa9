"""The operator's use cases: the console's overview (every space, every node, the disk), host
invites and the accounts they make, revocations.

Who may call these is checked before (api/admin.py, with the domain's site permissions); the
rules of invites are the domain's (domain/accounts.py). Actions on spaces are not here: an
operator ends a space or removes someone through the same routes and domain methods as a host
(api/spaces.py, api/stage.py), acting as `Operator`.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from redis.exceptions import RedisError

from ..accounts import redeem, update_invite
from ..cluster.nodes import SILENT_AFTER, Report
from ..domain import Operator, Space, SpaceState
from ..domain.accounts import (
    ACCOUNT_TOKEN_DAYS,
    Account,
    Invite,
    check_invite_id,
    check_revocation,
    invite_id,
    new_invite_code,
)
from ..domain.roles import SiteRole
from ..security.tokens import ANY_SPACE, Claims, TokenKind
from .admin_schemas import (
    AccountToken,
    AccountView,
    AdminSpace,
    DiskTotals,
    InviteCreated,
    InviteInfo,
    InviteView,
    NewInvite,
    NodeStatus,
    Overview,
    Person,
    RecordingsDisk,
    RedisStatus,
    ReportsSummary,
    Revoked,
)
from .services import Services
from .status import node_report
from .views import moment, replay_links, speaking_now, summarize

log = logging.getLogger(__name__)

SPACES_SHOWN = 500
"""Live and scheduled spaces listed at most (live first)."""
ENDED_SHOWN = 50
"""Ended spaces listed (the latest)."""


# -- the overview ---------------------------------------------------------------------------


async def overview(svc: Services) -> Overview:
    """Everything the console shows now."""
    nodes = await node_statuses(svc)
    return Overview(
        generated_at=svc.now(),
        spaces=await admin_spaces(svc),
        nodes=nodes,
        recordings=_disk_totals(nodes),
        reports=await reports_summary(svc),
    )


async def admin_spaces(svc: Services) -> list[AdminSpace]:
    """Every space: live first, then scheduled, then the latest ended."""
    current = await svc.store.list_spaces([SpaceState.LIVE, SpaceState.SCHEDULED], SPACES_SHOWN)
    ended = await svc.store.recently_ended(ENDED_SHOWN)
    return [await _admin_space(svc, space) for space in current + ended]


async def _admin_space(svc: Services, space: Space) -> AdminSpace:
    live = space.state is SpaceState.LIVE
    numbers = await summarize(svc, space) if live else None
    owner = await svc.ownership.owner(space.id) if live else None
    return AdminSpace(
        id=space.id,
        title=space.title,
        state=space.state.value,
        host=Person(id=space.host_id, name=space.host.name),
        created_at=space.created_at,
        scheduled_start=space.scheduled_start,
        started_at=space.started_at,
        ended_at=space.ended_at,
        ending_at=space.ending_at,
        stage=[Person(id=m.user_id, name=m.name) for m in space.on_stage()],
        speaking=len(speaking_now(svc, space.id)),
        requests_waiting=space.hands_waiting(svc.now()),
        recording=space.recording,
        owner=owner.url if owner is not None else None,
        listeners_now=numbers.listening_now if numbers else None,
        peak=numbers.peak if numbers else None,
        unique_listeners=numbers.unique_listeners if numbers else None,
        joins=numbers.joins if numbers else None,
        replay_url=replay_links(space, svc)["replay_url"],
    )


async def node_statuses(svc: Services) -> list[NodeStatus]:
    """Every node's last report. This node's is made afresh, so that it is there from the
    start and even when Redis, where the others' are, cannot be reached."""
    now = svc.clock()
    try:
        reports = await svc.nodes.reports(now)
    except (RedisError, OSError) as exc:
        log.warning("the nodes' reports could not be read: %s", exc)
        reports = []
    me = svc.config.node_url
    last_cpu = next((r.get("cpu") for r in reports if r.get("url") == me), None)
    mine = await node_report(svc, last_cpu if isinstance(last_cpu, float | int) else 0.0)
    others = [r for r in reports if r.get("url") != me]
    statuses = [_node_status(mine, now, this_node=True), *(_node_status(r, now) for r in others)]
    return [status for status in statuses if status is not None]


def _node_status(report: Report, now: float, *, this_node: bool = False) -> NodeStatus | None:
    try:
        seen_at = float(report["seen_at"])
        redis = report.get("redis")
        return NodeStatus(
            url=report["url"],
            status="up" if now - seen_at <= SILENT_AFTER else "silent",
            this_node=this_node,
            seen_at=moment(seen_at),
            started_at=moment(float(report["started_at"])),
            version=report["version"],
            cpu=report.get("cpu"),
            event_loop_lag_seconds=report["event_loop_lag_seconds"],
            requests_in_flight=report["requests_in_flight"],
            event_streams_open=report["event_streams_open"],
            live_spaces=report["live_spaces"],
            listeners_now=report["listeners_now"],
            redis=None if redis is None else RedisStatus(**redis),
            recordings=RecordingsDisk(**report["recordings"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        # A node of another version may report differently: leave it out, say so once a pass.
        log.warning("a node's report could not be read (%s): %r", exc, report.get("url"))
        return None


def _disk_totals(nodes: list[NodeStatus]) -> DiskTotals:
    disks = [n.recordings for n in nodes]
    budgets = [d.max_bytes for d in disks]
    return DiskTotals(
        bytes=sum(d.bytes for d in disks),
        live_bytes=sum(d.live_bytes for d in disks),
        count=sum(d.count for d in disks),
        max_bytes=0 if not budgets or 0 in budgets else sum(budgets),
    )


# -- the reports queue (issue 13, item 3) -------------------------------------------------------
# The reports branch plugs the queue in here: `reports_summary` says how many reports are open
# and where the queue is read; the console (web/static/admin.js, section "reports") shows it.


async def reports_summary(svc: Services) -> ReportsSummary | None:
    """The open reports at a glance, and where the console reads the queue."""
    return ReportsSummary(open=await svc.moderation.open_count(), url="/api/admin/reports")


# -- invites and accounts -----------------------------------------------------------------------


def invite_view(invite: Invite, svc: Services) -> InviteView:
    return InviteView(
        id=invite.id,
        role=invite.role.value,
        state=invite.state(svc.now()).value,
        note=invite.note,
        created_by=invite.created_by,
        created_at=invite.created_at,
        expires_at=invite.expires_at,
        used_at=invite.used_at,
        account_id=invite.account_id,
        revoked_at=invite.revoked_at,
    )


def account_view(account: Account) -> AccountView:
    return AccountView(
        id=account.id,
        name=account.name,
        role=account.role.value,
        created_at=account.created_at,
        invited_by=account.invited_by,
        revoked_at=account.revoked_at,
    )


def invite_path(code: str) -> str:
    """Where an invite is opened, on every node."""
    return f"/invite/{code}"


async def create_invite(svc: Services, operator: Operator, body: NewInvite) -> InviteCreated:
    """A new invite link; its code is in the answer, and nowhere else ever again."""
    code = new_invite_code()
    invite = Invite.create(
        code=code,
        role=SiteRole(body.role),
        created_by=operator,
        now=svc.now(),
        hours=body.hours,
        note=body.note,
    )
    await svc.accounts.add_invite(invite)
    return InviteCreated(**invite_view(invite, svc).model_dump(), code=code, url=invite_path(code))


async def revoke_invite(svc: Services, invite_id_text: str) -> InviteView:
    check_invite_id(invite_id_text)
    invite, _ = await update_invite(svc.accounts, invite_id_text, lambda i: i.revoke(svc.now()))
    return invite_view(invite, svc)


async def revoke_account(svc: Services, operator: Operator, account_id: str) -> Revoked:
    """Refuse every token of `account_id`, on every node, from the next request."""
    check_revocation(operator, account_id)
    at = svc.now()
    await svc.accounts.revoke(account_id, at)
    log.info("account %s revoked by operator %s", account_id, operator)
    return Revoked(account_id=account_id, revoked_at=at)


async def invite_info(svc: Services, code: str) -> InviteInfo:
    """What the invite page says before it is used; `Conflict` once it cannot be."""
    invite = await svc.accounts.get_invite(invite_id(code))
    invite.require_open(svc.now())
    return InviteInfo(role=invite.role.value, expires_at=invite.expires_at)


async def redeem_invite(svc: Services, code: str, name: str) -> AccountToken:
    """Use an invite: a new account and its token (shown this once)."""
    now = svc.now()
    account = await redeem(svc.accounts, invite_id(code), name, now)
    expires = now + timedelta(days=ACCOUNT_TOKEN_DAYS)
    token = svc.signer.issue(
        Claims(
            sub=account.id,
            aud=ANY_SPACE,
            kind=TokenKind.USER,
            exp=int(expires.timestamp()),
            name=account.name,
            role=account.role,
        )
    )
    log.info("invite used: account %s (%s) made", account.id, account.role.value)
    return AccountToken(account=account_view(account), token=token, expires_at=expires)
