"""What the audience does: questions, votes and reactions, rate-limited and aggregated.

Listener actions are never fanned out one by one: reactions are summed, and changed questions
collected, then published together once a second, so a million reacting listeners send each
page one small event a second, not a million.
"""

from __future__ import annotations

import logging
import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ..domain import Action, Invalid, NotAllowed
from ..domain import questions as q
from ..domain.audit import AuditAction
from ..domain.reactions import EMOJI
from ..node.moderation import log_space_act
from ..node.schemas import QuestionView, question_view, text_schema
from ..node.services import Services
from ..security.tokens import Claims
from .auth import actor, authenticate
from .dependencies import ERRORS, ServicesDep, SpaceId
from .errors import ApiError

log = logging.getLogger(__name__)


router = APIRouter(prefix="/api/spaces/{space_id}", responses=ERRORS, tags=["audience"])


# -- views ------------------------------------------------------------------------------------


class QuestionList(BaseModel):
    questions: list[QuestionView]


class Ask(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(
        description=f"The question, 1–{q.QUESTION_MAX} characters.",
        json_schema_extra=text_schema(q.QUESTION_MAX, multiline=True),
    )


class React(BaseModel):
    model_config = ConfigDict(extra="forbid")

    emoji: str = Field(
        description="One of: " + " ".join(EMOJI), json_schema_extra={"enum": list(EMOJI)}
    )


class ReactionTotals(BaseModel):
    totals: dict[str, int]


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _limit(svc: Services, kind: str, claims: Claims, request: Request) -> None:
    await svc.limits.check(kind, claims.sub, _ip(request), svc.clock())


# -- questions --------------------------------------------------------------------------------


# OpenAPI links: what may be done next with the new question (see spaces.SPACE_LINKS).
QUESTION_LINKS = {
    name: {
        "operationId": operation_id,
        "parameters": {"space_id": "$request.path.space_id", "question_id": "$response.body#/id"},
    }
    for name, operation_id in (
        ("Vote", "vote_api_spaces__space_id__questions__question_id__votes_post"),
        ("Withdraw", "withdraw_api_spaces__space_id__questions__question_id__delete"),
        ("Moderate", "moderate_api_spaces__space_id__questions__question_id___action__post"),
    )
}


@router.post(
    "/questions",
    status_code=201,
    response_model=QuestionView,
    summary="Ask",
    responses={201: {"links": QUESTION_LINKS}},
)
async def ask(space_id: SpaceId, body: Ask, request: Request, svc: ServicesDep) -> QuestionView:
    """Anyone with a token for the space (join first): before or during the space."""
    claims = await authenticate(request, svc, space_id)
    await _limit(svc, "question", claims, request)
    space = await svc.cached_space(space_id)
    question = q.ask(
        space,
        question_id="q-" + secrets.token_urlsafe(6),
        author_id=claims.sub,
        author_name=claims.name,
        text=body.text,
        now=svc.now(),
    )
    await svc.store.add_question(question)
    svc.activity.question_changed(space_id, question.id)
    return question_view(question)


@router.get("/questions", response_model=QuestionList, summary="The questions, best first")
async def list_questions(
    space_id: SpaceId,
    request: Request,
    response: Response,
    svc: ServicesDep,
    include: Annotated[Literal["visible", "all"], Query()] = "visible",
) -> QuestionList:
    """Visible questions for everyone; `include=all` (moderators) adds hidden and withdrawn."""
    space = await svc.cached_space(space_id)
    questions = await svc.store.list_questions(space_id)
    if include == "all":
        claims = await authenticate(request, svc, space_id)
        space.check(actor(claims), Action.MODERATE_QUESTIONS)
        response.headers["Cache-Control"] = "no-store"
    else:
        questions = [x for x in questions if x.visible]
        response.headers["Cache-Control"] = "public, max-age=1, stale-while-revalidate=10"
    return QuestionList(questions=[question_view(x) for x in q.ordered(questions)])


@router.post(
    "/questions/{question_id}/votes", status_code=201, response_model=QuestionView, summary="Upvote"
)
async def vote(
    space_id: SpaceId, question_id: str, request: Request, svc: ServicesDep
) -> QuestionView:
    """Once per token: a second vote gets 409."""
    claims = await authenticate(request, svc, space_id)
    await _limit(svc, "vote", claims, request)
    space = await svc.cached_space(space_id)
    question = await svc.store.get_question(space_id, question_id)
    q.check_vote(space, question, claims.sub)
    votes = await svc.store.add_vote(space_id, question_id, claims.sub)
    if votes is None:
        raise ApiError(409, "you have already voted for this question")
    question.votes = votes
    svc.activity.question_changed(space_id, question_id)
    return question_view(question)


@router.delete("/questions/{question_id}", status_code=204, summary="Withdraw your question")
async def withdraw(
    space_id: SpaceId, question_id: str, request: Request, svc: ServicesDep
) -> Response:
    claims = await authenticate(request, svc, space_id)
    question = await svc.store.get_question(space_id, question_id)
    q.withdraw(question, claims.sub)
    await svc.store.save_question(question)
    svc.activity.question_changed(space_id, question_id)
    return Response(status_code=204)


@router.post(
    "/questions/{question_id}/{action}",
    response_model=QuestionView,
    summary="Pin, unpin, answer, hide or show (moderators)",
)
async def moderate(
    space_id: SpaceId,
    question_id: str,
    action: Literal["pin", "unpin", "answer", "hide", "show"],
    request: Request,
    svc: ServicesDep,
) -> QuestionView:
    """Host or co-host. Pinning a question unpins the one pinned before."""
    claims = await authenticate(request, svc, space_id)
    space = await svc.cached_space(space_id)
    question = await svc.store.get_question(space_id, question_id)
    q.moderate(space, question, actor(claims), action)
    if action == "pin":
        for other in await svc.store.list_questions(space_id):
            if other.pinned and other.id != question.id:
                other.pinned = False
                await svc.store.save_question(other)
                svc.activity.question_changed(space_id, other.id)
    await svc.store.save_question(question)
    svc.activity.question_changed(space_id, question_id)
    if action in _LOGGED:
        await log_space_act(
            svc,
            space,
            actor(claims),
            Action.MODERATE_QUESTIONS,
            _LOGGED[action],
            f"question:{question_id}",
        )
    return question_view(question)


# Hiding and showing again are moderation (audit log); pinning and answering run the show.
_LOGGED = {"hide": AuditAction.HIDE_QUESTION, "show": AuditAction.SHOW_QUESTION}


# -- reactions --------------------------------------------------------------------------------


@router.post(
    "/reactions",
    status_code=202,
    response_class=Response,  # an empty 202: nothing to read back (the sums come as events)
    responses={202: {"description": "Accepted; reaches pages summed within a second"}},
    summary="React with an emoji",
)
async def react(space_id: SpaceId, body: React, request: Request, svc: ServicesDep) -> Response:
    """Listeners react while the space is live; reactions reach pages summed, once a second."""
    claims = await authenticate(request, svc, space_id)
    if body.emoji not in EMOJI:
        raise Invalid(f"unknown reaction; use one of {' '.join(EMOJI)}")
    space = await svc.cached_space(space_id)
    space.check(claims.sub, Action.REACT)
    if space.state.value != "live":
        raise NotAllowed("reactions are open while the space is live")
    await _limit(svc, "reaction", claims, request)
    svc.activity.react(space_id, body.emoji)
    return Response(status_code=202)


@router.get("/reactions", response_model=ReactionTotals, summary="Reaction totals")
async def reaction_totals(space_id: SpaceId, svc: ServicesDep) -> ReactionTotals:
    await svc.cached_space(space_id)
    return ReactionTotals(totals=await svc.store.reaction_totals(space_id))
