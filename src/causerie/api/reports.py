"""Reports and what operators do about them (notice and action), and the audit log's export.

    POST /api/spaces/{space}/reports          anyone with a token for the space: report it, a
                                              question or a speaker; a reference comes back
    GET  /api/admin/reports                   operators: the open reports, grouped per target
    POST /api/admin/reports/{ref}/actions     operators: decide a target's reports, with a reason
    GET  /api/admin/audit?format=json|csv     operators: the audit log, paged
    GET  /api/admin/audit/latest              operators: the newest entries (the console)

Every rule is the domain's (domain/reports.py); decisions reuse the moderation the hosts have
(`Space.remove`, `Space.end`, `questions.moderate`), acting as the operator
(`auth.require_operator`), and each lands in the audit log (node/moderation.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ..domain import NotFound, Space, SpaceState
from ..domain import questions as q
from ..domain.audit import AuditAction, AuditEntry, to_csv
from ..domain.reports import (
    DECISION_REASON_MAX,
    DECISIONS,
    NOTE_MAX,
    Decision,
    Report,
    ReportGroup,
    ReportReason,
    Target,
    TargetKind,
    ban_subject,
    decide,
    file_report,
    parse_decision,
    queue,
    target_of,
)
from ..media import retention
from ..node.loops import remove_recording
from ..node.moderation import log_act
from ..node.schemas import text_schema
from ..node.services import Services
from ..node.views import space_view
from ..store import update_space
from ..store.moderation import AUDIT_PAGE_MAX
from .auth import authenticate, require_operator
from .dependencies import ERRORS, ServicesDep, SpaceId

router = APIRouter(responses=ERRORS)

QUEUE_MAX = 1000
"""The most open reports the queue reads at once (grouped, they are far fewer lines)."""


# -- shapes -----------------------------------------------------------------------------------


class NewReport(BaseModel):
    """What a listener reports, and why."""

    model_config = ConfigDict(extra="forbid")

    target: TargetKind = Field(TargetKind.SPACE, description="What is reported.")
    target_id: str | None = Field(
        None,
        max_length=64,
        description="The question's id, or the speaker's user id; left out for the space.",
    )
    reason: str = Field(
        description="One of the reasons on offer.",
        json_schema_extra={"enum": [r.value for r in ReportReason]},
    )
    note: str | None = Field(
        None,
        description=f"Optional, 1–{NOTE_MAX} characters; needed with the reason `other`.",
        json_schema_extra=text_schema(NOTE_MAX, multiline=True),
    )


class ReportTarget(BaseModel):
    space_id: str
    kind: TargetKind
    id: str


class ReportReceipt(BaseModel):
    """What the reporter gets back: the reference to quote, and where their report stands."""

    ref: str
    state: Literal["open", "dismissed", "actioned"]
    target: ReportTarget
    reason: ReportReason
    created_at: datetime


class ReportView(BaseModel):
    ref: str
    reason: ReportReason
    note: str
    reporter: str
    created_at: datetime


class GroupView(BaseModel):
    """Every open report of one target."""

    ref: str = Field(description="The first report's reference: act on the group with it.")
    target: ReportTarget
    space_title: str = Field(description="The reported space's title.")
    label: str = Field(
        description="What is reported, as the audience sees it: the space's title, the "
        "speaker's name or the question's text; empty once the speaker left the stage."
    )
    count: int
    reasons: dict[str, int]
    first_at: datetime
    last_at: datetime
    actions: list[Decision] = Field(description="What may be done about this target.")
    reports: list[ReportView]


class ReportQueue(BaseModel):
    groups: list[GroupView]


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Decision
    reason: str = Field(
        description=f"Why, 1–{DECISION_REASON_MAX} characters: kept in the audit log.",
        json_schema_extra=text_schema(DECISION_REASON_MAX, multiline=True),
    )


class AuditEntryView(BaseModel):
    id: str
    at: datetime
    actor: str
    actor_role: str
    action: AuditAction
    space_id: str
    target: str
    reason: str
    report_ref: str


class DecisionResult(BaseModel):
    action: Decision
    reports_closed: list[str]
    audit: list[AuditEntryView]


class LatestAudit(BaseModel):
    entries: list[AuditEntryView] = Field(description="The newest entries, newest first.")


class AuditPage(BaseModel):
    entries: list[AuditEntryView]
    next: str | None = Field(description="Pass as `after` for the next page; null at the end.")


def _target(target: Target) -> ReportTarget:
    return ReportTarget(space_id=target.space_id, kind=target.kind, id=target.id)


def _receipt(report: Report) -> ReportReceipt:
    return ReportReceipt(
        ref=report.ref,
        state=report.state.value,
        target=_target(report.target),
        reason=report.reason,
        created_at=report.created_at,
    )


async def _labels(svc: Services, target: Target) -> tuple[str, str]:
    """The space's title, and what the reported thing is called (see `GroupView.label`);
    empty texts for what is no longer there (the queue is shown all the same)."""
    try:
        space = await svc.cached_space(target.space_id)
        if target.kind is TargetKind.QUESTION:
            question = await svc.store.get_question(target.space_id, target.id)
            return space.title, question.text
    except NotFound:
        return "", ""
    if target.kind is TargetKind.SPEAKER:
        member = space.members.get(target.id)
        return space.title, member.name if member else ""
    return space.title, space.title


async def _group(svc: Services, group: ReportGroup) -> GroupView:
    space_title, label = await _labels(svc, group.target)
    return GroupView(
        ref=group.reports[0].ref,
        target=_target(group.target),
        space_title=space_title,
        label=label,
        count=group.count,
        reasons=group.reasons,
        first_at=group.first_at,
        last_at=group.last_at,
        actions=sorted(DECISIONS[group.target.kind]),
        reports=[
            ReportView(
                ref=r.ref,
                reason=r.reason,
                note=r.note,
                reporter=r.reporter,
                created_at=r.created_at,
            )
            for r in group.reports
        ],
    )


def _entry(entry: AuditEntry) -> AuditEntryView:
    return AuditEntryView.model_validate(entry.to_dict())


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


# -- listeners --------------------------------------------------------------------------------


@router.post(
    "/api/spaces/{space_id}/reports",
    status_code=201,
    response_model=ReportReceipt,
    summary="Report the space, a question or a speaker",
    tags=["moderation"],
    responses={200: {"model": ReportReceipt, "description": "Reported already: that report."}},
)
async def report(
    space_id: SpaceId, body: NewReport, request: Request, response: Response, svc: ServicesDep
) -> ReportReceipt:
    """Anyone with a token for the space (a listener joins first). The answer carries the
    report's reference (`ref`). Reporting the same thing again while the report is open gives
    that report back (200), not a new one. Rate-limited per token and per address (429 with
    Retry-After)."""
    claims = await authenticate(request, svc, space_id)
    space = await svc.cached_space(space_id)
    question = None
    if body.target is TargetKind.QUESTION and body.target_id:
        try:
            question = await svc.store.get_question(space_id, body.target_id)
        except NotFound:
            question = None  # target_of says what is missing
    target = target_of(space, body.target, body.target_id, question)
    made = file_report(
        target, reason=body.reason, note=body.note, reporter=claims.sub, now=svc.now()
    )
    # Counted once the report is sound: a mistyped one costs nothing but the answer.
    await svc.limits.check("report", claims.sub, _ip(request), svc.clock())
    kept, new = await svc.moderation.add_report(made)
    if not new:
        response.status_code = 200
    response.headers["Cache-Control"] = "no-store"
    return _receipt(kept)


# -- operators --------------------------------------------------------------------------------

RefPath = Annotated[str, Path(pattern=r"^R-[A-Z0-9]{12}$", description="A report's reference.")]


@router.get(
    "/api/admin/reports",
    response_model=ReportQueue,
    summary="The open reports, grouped per target (operators)",
    tags=["admin"],
)
async def report_queue(request: Request, response: Response, svc: ServicesDep) -> ReportQueue:
    """Most reported targets first, then the longest waiting. Each group lists what may be
    done about its target; act on it with any of its references."""
    require_operator(await authenticate(request, svc))
    reports = await svc.moderation.open_reports(QUEUE_MAX)
    response.headers["Cache-Control"] = "no-store"
    return ReportQueue(groups=[await _group(svc, g) for g in queue(reports)])


@router.post(
    "/api/admin/reports/{ref}/actions",
    response_model=DecisionResult,
    summary="Decide a target's reports: dismiss, or act (operators)",
    tags=["admin"],
)
async def act_on_report(
    ref: RefPath, body: DecisionBody, request: Request, svc: ServicesDep
) -> DecisionResult:
    """Every open report of the reported target is closed with the decision; the reason is
    required and kept in the audit log. `dismiss`; `hide_question`; `remove_speaker` (not the
    host: end the space instead); `end_space`; `take_down_replay` (a live space ends first;
    its replay, download and clips answer 410 Gone on every node at once); `ban_account` (the
    speaker, the question's author or the space's host: refused everywhere within a second,
    taken off every live stage, and the live spaces they host end). 409 if the reports were
    decided meanwhile."""
    operator = require_operator(await authenticate(request, svc))
    first = await svc.moderation.get_report(ref)
    decision = parse_decision(body.action.value, first.target.kind)
    reports = await svc.moderation.open_reports_of(first.target.key)
    now = svc.now()
    # Checked before acting: an empty reason or reports decided already change nothing.
    closing = decide(reports or [first], decision, actor=operator, reason=body.reason, now=now)
    reason = closing[0].decision_reason
    acts = await _carry_out(svc, operator, first.target, decision)
    closed = await svc.moderation.close_reports(closing)
    entries = [
        await log_act(
            svc,
            actor=operator,
            role="operator",
            action=action,
            space_id=where,
            target=target,
            reason=reason,
            report_ref=ref,
        )
        for action, where, target in acts
    ]
    return DecisionResult(
        action=decision,
        reports_closed=[r.ref for r in closed],
        audit=[_entry(e) for e in entries],
    )


Act = tuple[AuditAction, str, str]
"""An act to log: what, in which space, to whom."""


async def _carry_out(svc: Services, operator: str, target: Target, decision: Decision) -> list[Act]:
    """Do what was decided, through the domain's own moderation; the acts to log."""
    space_id = target.space_id
    if decision is Decision.DISMISS:
        return [(AuditAction.DISMISS_REPORTS, space_id, target.key)]
    if decision is Decision.HIDE_QUESTION:
        space = await svc.cached_space(space_id)
        question = await svc.store.get_question(space_id, target.id)
        q.moderate(space, question, operator, "hide")
        await svc.store.save_question(question)
        svc.activity.question_changed(space_id, question.id)
        return [(AuditAction.HIDE_QUESTION, space_id, f"question:{question.id}")]
    if decision is Decision.REMOVE_SPEAKER:
        await _change(svc, space_id, lambda s: s.remove(operator, target.id))
        return [(AuditAction.REMOVE_SPEAKER, space_id, f"user:{target.id}")]
    if decision is Decision.END_SPACE:
        await _change(svc, space_id, lambda s: s.end(operator, svc.now()))
        await svc.ownership.end(space_id)
        return [(AuditAction.END_SPACE, space_id, f"space:{space_id}")]
    if decision is Decision.TAKE_DOWN_REPLAY:
        await _take_down(svc, operator, space_id)
        return [(AuditAction.TAKE_DOWN_REPLAY, space_id, f"space:{space_id}")]
    return await _ban(svc, operator, target)


async def _change(svc: Services, space_id: str, change: Callable[[Space], object]) -> Space:
    """Apply a change to a space atomically, then tell the media and the pages (as the
    hosts' own routes do, api/spaces.change_space)."""
    space, _ = await update_space(svc.store, space_id, change)
    svc.remember(space)
    await svc.stage_changed(space)
    await svc.bus.publish(space_id, "space", (await space_view(space, svc)).model_dump(mode="json"))
    return space


async def _take_down(svc: Services, operator: str, space_id: str) -> None:
    was_live = (await svc.store.get_space(space_id)).state is SpaceState.LIVE
    now = svc.now()
    await _change(svc, space_id, lambda s: s.take_down_replay(operator, now))
    if was_live:
        await svc.ownership.end(space_id)
    # Its files here go now if this node is done with them; every node's retention pass
    # removes the rest (their replay answers 410 from the store meanwhile).
    recorder = svc.broadcasts.recorder(space_id)
    if recorder is None or recorder.closed:
        await remove_recording(svc, space_id, retention.TAKEDOWN, now)


async def _ban(svc: Services, operator: str, target: Target) -> list[Act]:
    space = await svc.store.get_space(target.space_id)
    question = None
    if target.kind is TargetKind.QUESTION:
        question = await svc.store.get_question(target.space_id, target.id)
    subject = ban_subject(target, space, question)
    await svc.moderation.ban(subject)
    svc.bans.add(subject)
    acts = [(AuditAction.BAN_ACCOUNT, space.id, f"user:{subject}")]
    # A banned account does not speak: off every live stage it is on (its microphone stops
    # with the session), and the live spaces it hosts end (nobody can take a host off stage).
    for live in await svc.store.list_spaces([SpaceState.LIVE], limit=10_000):
        if subject == live.host_id:
            await _change(svc, live.id, lambda s: s.end(operator, svc.now()))
            await svc.ownership.end(live.id)
            acts.append((AuditAction.END_SPACE, live.id, f"space:{live.id}"))
        elif subject in live.members:
            await _change(svc, live.id, lambda s: s.remove(operator, subject))
            acts.append((AuditAction.REMOVE_SPEAKER, live.id, f"user:{subject}"))
    return acts


@router.get(
    "/api/admin/audit",
    summary="The audit log, as JSON or CSV (operators)",
    tags=["admin"],
    response_model=AuditPage,
    responses={200: {"content": {"text/csv": {}}}},
)
async def audit_log(
    request: Request,
    svc: ServicesDep,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
    after: Annotated[str, Query(max_length=64, description="The last id of the page before.")] = "",
    limit: Annotated[int, Query(ge=1, le=AUDIT_PAGE_MAX)] = 100,
) -> Response:
    """Oldest first, `limit` entries after the entry `after`; the next page starts after the
    last id (JSON: `next`; CSV: the `Link` header, RFC 8288). CSV cells a spreadsheet would
    run as formulas are prefixed with an apostrophe."""
    require_operator(await authenticate(request, svc))
    entries = await svc.moderation.audit(after, limit)
    following = entries[-1].id if len(entries) == limit else None
    headers = {"Cache-Control": "no-store"}
    if format == "csv":
        if following is not None:
            following_url = f"/api/admin/audit?format=csv&after={following}&limit={limit}"
            headers["Link"] = f'<{following_url}>; rel="next"'
        headers["Content-Disposition"] = 'attachment; filename="causerie-audit.csv"'
        body = await asyncio.to_thread(to_csv, entries, header=not after)
        return Response(body, media_type="text/csv; charset=utf-8", headers=headers)
    page = AuditPage(entries=[_entry(e) for e in entries], next=following)
    return JSONResponse(page.model_dump(mode="json"), headers=headers)


@router.get(
    "/api/admin/audit/latest",
    summary="The newest audit entries, newest first (operators)",
    tags=["admin"],
    response_model=LatestAudit,
)
async def latest_audit(
    request: Request,
    response: Response,
    svc: ServicesDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> LatestAudit:
    """What the console shows under "Audit log"; the whole log is `GET /api/admin/audit`."""
    require_operator(await authenticate(request, svc))
    response.headers["Cache-Control"] = "no-store"
    return LatestAudit(entries=[_entry(e) for e in await svc.moderation.latest_audit(limit)])


__all__ = ["router"]
