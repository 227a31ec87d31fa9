"""What the audience does: questions, votes and reactions, rate-limited and aggregated.

Listener actions are never fanned out one by one: reactions are summed, and changed questions
collected, then published together once a second, so a million reacting listeners send each
page one small event a second, not a million.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import Counter
from typing import Annotated, ClassVar, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from ..domain import Action, Invalid, NotAllowed
from ..domain import questions as q
from ..ratelimit import Rate, RateLimiter, retry_after_header
from ..redis_ratelimit import RedisRateLimits
from ..tokens import Claims
from .auth import authenticate
from .errors import ApiError
from .schemas import text_schema
from .services import Services
from .spaces import ERRORS, ServicesDep, SpaceId, check_space_id

log = logging.getLogger(__name__)

EMOJI = ("👏", "❤️", "😂", "🔥", "😮", "💯", "🙏", "👍")
PUBLISH_INTERVAL = 1.0
MAX_QUESTIONS_PER_EVENT = 50

router = APIRouter(prefix="/api/spaces/{space_id}", responses=ERRORS, tags=["audience"])


class Limits:
    """Per-token and per-IP limits for each kind of write: in this node's memory, or with
    `shared`, in Redis for every node (redis_ratelimit.py)."""

    # Per IP, limits are generous: a campus, an office or a mobile carrier puts many honest
    # listeners behind one address. They stop one machine flooding with fresh tokens.
    RATES: ClassVar[dict[str, tuple[Rate, Rate]]] = {
        "question": (Rate(0.2, 3), Rate(2, 60)),
        "vote": (Rate(2, 10), Rate(50, 300)),
        "reaction": (Rate(3, 10), Rate(100, 500)),
        "speak_request": (Rate(0.2, 3), Rate(10, 200)),
    }

    def __init__(self, shared: RedisRateLimits | None = None) -> None:
        self.shared = shared
        self.by_kind: dict[str, tuple[RateLimiter, RateLimiter]] = {
            kind: (RateLimiter(per_token), RateLimiter(per_ip))
            for kind, (per_token, per_ip) in self.RATES.items()
        }

    async def check(self, kind: str, subject: str, ip: str, now: float) -> None:
        """Raise a 429 with Retry-After if the token or the IP went over the limit."""
        if self.shared is not None:
            wait = await self.shared.take(kind, self.RATES[kind], subject, ip, now)
        else:
            per_token, per_ip = self.by_kind[kind]
            wait = per_token.take(subject, now) or per_ip.take(ip, now)
        if wait is not None:
            raise ApiError(
                429,
                f"too many {kind.replace('_', ' ')}s; try again in {retry_after_header(wait)} s",
                {"Retry-After": retry_after_header(wait)},
            )


class Activity:
    """Rate limits, and what waits to be published at the next tick."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.reactions: dict[str, Counter[str]] = {}
        self.changed: dict[str, set[str]] = {}

    def react(self, space_id: str, emoji: str) -> None:
        self.reactions.setdefault(space_id, Counter())[emoji] += 1

    def question_changed(self, space_id: str, question_id: str) -> None:
        self.changed.setdefault(space_id, set()).add(question_id)


# -- views ------------------------------------------------------------------------------------


class QuestionView(BaseModel):
    id: str
    text: str
    author_id: str
    author_name: str
    votes: int
    state: Literal["open", "answered", "hidden", "withdrawn"]
    pinned: bool
    created_at: str


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

    emoji: str = Field(description="One of: " + " ".join(EMOJI), json_schema_extra={"enum": EMOJI})


class ReactionTotals(BaseModel):
    totals: dict[str, int]


def question_view(question: q.Question) -> QuestionView:
    return QuestionView(
        id=question.id,
        text=question.text,
        author_id=question.author_id,
        author_name=question.author_name,
        votes=question.votes,
        state=question.state.value,
        pinned=question.pinned,
        created_at=question.created_at.isoformat(),
    )


def _ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _limit(svc: Services, kind: str, claims: Claims, request: Request) -> None:
    await svc.activity.limits.check(kind, claims.sub, _ip(request), svc.clock())


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
    check_space_id(space_id)
    claims = authenticate(request, svc, space_id)
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
    check_space_id(space_id)
    space = await svc.cached_space(space_id)
    questions = await svc.store.list_questions(space_id)
    if include == "all":
        claims = authenticate(request, svc, space_id)
        space.check(claims.sub, Action.MODERATE_QUESTIONS)
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
    check_space_id(space_id)
    claims = authenticate(request, svc, space_id)
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
    check_space_id(space_id)
    claims = authenticate(request, svc, space_id)
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
    check_space_id(space_id)
    claims = authenticate(request, svc, space_id)
    space = await svc.cached_space(space_id)
    question = await svc.store.get_question(space_id, question_id)
    q.moderate(space, question, claims.sub, action)
    if action == "pin":
        for other in await svc.store.list_questions(space_id):
            if other.pinned and other.id != question.id:
                other.pinned = False
                await svc.store.save_question(other)
                svc.activity.question_changed(space_id, other.id)
    await svc.store.save_question(question)
    svc.activity.question_changed(space_id, question_id)
    return question_view(question)


# -- reactions --------------------------------------------------------------------------------


@router.post("/reactions", status_code=202, summary="React with an emoji")
async def react(space_id: SpaceId, body: React, request: Request, svc: ServicesDep) -> Response:
    """Listeners react while the space is live; reactions reach pages summed, once a second."""
    check_space_id(space_id)
    claims = authenticate(request, svc, space_id)
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
    check_space_id(space_id)
    await svc.cached_space(space_id)
    return ReactionTotals(totals=await svc.store.reaction_totals(space_id))


# -- the once-a-second publisher ----------------------------------------------------------


async def publish_once(svc: Services) -> None:
    """Publish what changed since the last tick: reaction sums and changed questions."""
    activity = svc.activity
    reactions, activity.reactions = activity.reactions, {}
    changed, activity.changed = activity.changed, {}
    for space_id, counts in reactions.items():
        await svc.store.add_reactions(space_id, dict(counts))
        await svc.bus.publish(
            space_id, "reactions", {"counts": dict(counts), "seconds": PUBLISH_INTERVAL}
        )
    for space_id, ids in changed.items():
        views = []
        for question_id in list(ids)[:MAX_QUESTIONS_PER_EVENT]:
            question = await svc.store.get_question(space_id, question_id)
            view = question_view(question).model_dump()
            if not question.visible:
                view = {"id": question.id, "state": question.state.value}  # gone for the public
            views.append(view)
        await svc.bus.publish(space_id, "questions", {"questions": views})


async def publish_activity(svc: Services, interval: float = PUBLISH_INTERVAL) -> None:
    """Run `publish_once` every `interval` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval)
        try:
            await publish_once(svc)
        except Exception:
            log.exception("publishing audience activity failed")
