"""Reading the bearer token of a request, and who it makes the bearer: an account, an
operator, a listener."""

from __future__ import annotations

from fastapi import Request

from ..domain import NotAllowed, Operator, SiteAction, as_operator, require_on_site
from ..domain.roles import SiteRole
from ..node.services import Services
from ..security.tokens import ANY_SPACE, Claims, InvalidToken, TokenKind


def bearer_token(request: Request) -> str | None:
    """The token in `Authorization: Bearer …`, or None when there is no such header."""
    return bearer_token_in(request.headers.get("authorization"))


def bearer_token_in(header: str | None) -> str | None:
    """The token in the value of an Authorization header (None: no such header)."""
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("the Authorization header must be 'Bearer <token>'")
    return token.strip()


async def authenticate(request: Request, services: Services, space_id: str | None = None) -> Claims:
    """The verified claims of the request's token; 401 without one or for a revoked account,
    403 for another space.

    An account token is checked against the revoked accounts on every request (one indexed
    read, or one SISMEMBER in Redis), so a revocation holds on every node from the next
    request. Listener tokens are never looked up: the join storm and heartbeats stay free of
    any store read."""
    return await authenticate_header(request.headers.get("authorization"), services, space_id)


async def authenticate_header(
    header: str | None, services: Services, space_id: str | None = None
) -> Claims:
    """`authenticate`, from the value of the request's first Authorization header."""
    token = bearer_token_in(header)
    if token is None:
        raise InvalidToken("this needs a token: send 'Authorization: Bearer <token>'")
    claims = services.signer.verify(token, now=services.clock())
    if claims.kind is TokenKind.USER and await services.accounts.is_revoked(claims.sub):
        raise InvalidToken("this account was revoked by the operator")
    if space_id is not None and not claims.allows_space(space_id):
        raise NotAllowed("this token is for another space")
    if services.bans.is_banned(claims.sub):
        # Every node knows within a second (node/bans.py): no asking, speaking or hosting.
        raise NotAllowed("this account is banned from this server")
    return claims


def require_account(claims: Claims) -> None:
    """Only accounts (not anonymous listeners) may create spaces, and only with a token for
    every space: a token scoped to one space (a studio link) stays in that space."""
    if claims.kind is not TokenKind.USER:
        raise NotAllowed("only an account token can create spaces; listener tokens cannot")
    if claims.aud != ANY_SPACE:
        raise NotAllowed("this token is for one space only; it cannot create spaces")
    require_on_site(claims.site_role, SiteAction.CREATE_SPACE)


def actor(claims: Claims) -> str:
    """Who acts in a space: the token's account, as an `Operator` when it holds the site's
    operator role (the domain then lets it take down what must go in any space)."""
    if claims.site_role is SiteRole.OPERATOR:
        return as_operator(claims.sub, claims.site_role)
    return claims.sub


def require_operator(claims: Claims, action: SiteAction = SiteAction.VIEW_CONSOLE) -> Operator:
    """The operator behind `claims`; `NotAllowed` (403) for anyone else."""
    require_on_site(claims.site_role, action)
    return as_operator(claims.sub, claims.site_role)
