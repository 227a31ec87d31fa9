"""Moderation use cases shared by the HTTP adapters: putting an act in the audit log.

Hosts' acts (api/stage.py, api/audience.py, api/spaces.py) and operators' decisions on reports
(api/reports.py) are logged the same way, after the act succeeded: who (the token's account),
with which role (what the space let them act as: host, co-host or operator), what, to whom,
why, and the report answered, if any.
"""

from __future__ import annotations

from ..domain import Action, Space
from ..domain.audit import AuditAction, AuditEntry
from .services import Services


def acting_role(space: Space, acting: str, permission: Action) -> str:
    """The role `acting` holds `permission` with in `space` (operator for an operator acting
    where they have no stage role allowing it)."""
    return space.check(acting, permission).value


async def log_act(
    svc: Services,
    *,
    actor: str,
    role: str,
    action: AuditAction,
    space_id: str,
    target: str,
    reason: str = "",
    report_ref: str = "",
) -> AuditEntry:
    """Append one act to the audit log; the entry as stored (with its id)."""
    entry = AuditEntry(
        at=svc.now(),
        actor=str(actor),
        actor_role=role,
        action=action,
        space_id=space_id,
        target=target,
        reason=reason,
        report_ref=report_ref,
    )
    return await svc.moderation.append_audit(entry)


async def log_space_act(
    svc: Services,
    space: Space,
    acting: str,
    permission: Action,
    action: AuditAction,
    target: str,
    reason: str = "",
) -> AuditEntry:
    """Log an act done in `space` through its stage or question controls."""
    return await log_act(
        svc,
        actor=acting,
        role=acting_role(space, acting, permission),
        action=action,
        space_id=space.id,
        target=target,
        reason=reason,
    )
