"""The public transparency figures: `GET /api/transparency` and the page `/transparency`.

Per month (UTC) over the last year: reports received (by reason), reports dismissed and
actioned, moderation acts by kind (hosts' and operators'), and the median time from a report
to the operator's action. Counts only: no names, no notes (domain/transparency.py).

The figures are computed from every report of the year and the whole audit log, so a node
keeps them `CACHE_SECONDS` and edges may too: they change slowly and nobody needs them to the
second.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, Field

from ..domain.audit import AuditEntry
from ..domain.transparency import Month, months_between, summarize
from ..node.services import Services
from ..store.moderation import AUDIT_PAGE_MAX
from .dependencies import ERRORS, ServicesDep

router = APIRouter(responses=ERRORS, tags=["moderation"])

MONTHS = 12
CACHE_SECONDS = 300
AUDIT_READ_MAX = 1_000_000
"""The most audit entries one computation reads (a thousand pages)."""


class MonthView(BaseModel):
    month: str = Field(description="YYYY-MM (UTC).")
    reports_received: int
    reports_by_reason: dict[str, int]
    reports_dismissed: int
    reports_actioned: int
    actions: dict[str, int] = Field(description="Moderation acts logged, by kind.")
    actions_by_operators: int
    median_seconds_to_action: float | None = Field(
        description="From a report to the operator's action on it; null without any."
    )


class Transparency(BaseModel):
    generated_at: datetime
    months: list[MonthView] = Field(description="Newest first.")


class Figures:
    """The figures, computed at most once per `CACHE_SECONDS` on this node."""

    def __init__(self) -> None:
        self._at = 0.0
        self._value: Transparency | None = None

    async def get(self, svc: Services) -> Transparency:
        if self._value is not None and time.monotonic() - self._at < CACHE_SECONDS:
            return self._value
        now = svc.now()
        months_back = now.year * 12 + now.month - 1 - (MONTHS - 1)
        first = datetime(months_back // 12, months_back % 12 + 1, 1, tzinfo=UTC)
        reports = await svc.moderation.reports_since(first)
        entries = await _audit_since(svc, first)
        summary = summarize(reports, entries, months_between(first, now))
        self._value = Transparency(generated_at=now, months=[_view(m) for m in summary])
        self._at = time.monotonic()
        return self._value


async def _audit_since(svc: Services, since: datetime) -> list[AuditEntry]:
    found: list[AuditEntry] = []
    after = ""
    while len(found) < AUDIT_READ_MAX:
        page = await svc.moderation.audit(after, AUDIT_PAGE_MAX)
        found.extend(e for e in page if e.at >= since)
        if len(page) < AUDIT_PAGE_MAX:
            break
        after = page[-1].id
    return found


def _view(month: Month) -> MonthView:
    return MonthView(
        month=month.month,
        reports_received=month.reports_received,
        reports_by_reason=month.reports_by_reason,
        reports_dismissed=month.reports_dismissed,
        reports_actioned=month.reports_actioned,
        actions=month.actions,
        actions_by_operators=month.actions_by_operators,
        median_seconds_to_action=month.median_seconds_to_action,
    )


@router.get("/api/transparency", response_model=Transparency, summary="Transparency figures")
async def transparency(request: Request, response: Response, svc: ServicesDep) -> Transparency:
    """Anyone: per month, reports received, reports dismissed and actioned, moderation acts by
    kind and the median time from a report to action (cacheable, 5 min)."""
    response.headers["Cache-Control"] = f"public, max-age={CACHE_SECONDS}"
    figures: Figures = request.app.state.transparency
    return await figures.get(svc)
