"""The embeddable player and oEmbed: `/embed/{id}` for `<iframe>`s on any site, and
`/oembed?url=…`, which CMSs use to turn a pasted space link into that iframe (docs/embed.md).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse

from ..node import oembed
from ..node.oembed import OEmbed
from ..node.schemas import Error
from .dependencies import ERRORS, ServicesDep, SpaceId
from .errors import ApiError
from .pages import PAGE_CACHE, STATIC_DIR

# Only this page may be framed, by any site: it has no controls but play and captions, and
# acts for nobody (no token of anyone's is in it), so framing it tricks nobody into anything.
# The rest of the policy keeps the page to its own origin's scripts and data. `blob:` is for
# Media Source Extensions (dash.js, hls.js) and hls.js's worker.
EMBED_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "media-src 'self' blob:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors *"
)
OEMBED_CACHE = "public, max-age=300"

router = APIRouter(tags=["embedding"])


@router.get(
    "/embed/{space_id}",
    summary="The embeddable player (an HTML page for iframes)",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"text/html": {}}, "description": "The page."}},
)
@router.head("/embed/{space_id}", include_in_schema=False)
async def embed_page(space_id: SpaceId) -> FileResponse:
    """The player for `<iframe>`s on any site: play, the title, the state, the live listener
    count, captions; no other controls. The only page any site may frame
    (`Content-Security-Policy: frame-ancestors *`). Embed code: `GET /oembed`, or the listener
    page's copy button (docs/embed.md)."""
    return FileResponse(
        STATIC_DIR / "embed.html",
        media_type="text/html",
        headers={"Cache-Control": PAGE_CACHE, "Content-Security-Policy": EMBED_POLICY},
    )


@router.get(
    "/oembed",
    response_model=OEmbed,
    summary="oEmbed for a space's page",
    responses={
        **ERRORS,
        501: {"model": Error, "description": "A format other than json (xml)."},
    },
)
async def get_oembed(
    svc: ServicesDep,
    response: Response,
    url: Annotated[
        str | None,
        Query(description="A space's page on this site: `{public URL}/s/{id}` (or `/embed/{id}`)."),
    ] = None,
    format: Annotated[
        str | None,
        Query(
            description="`json` (the default). `xml`, oEmbed's other format, is not offered "
            "(501); anything else is a 400.",
            json_schema_extra={"enum": ["json"]},
        ),
    ] = None,
    maxwidth: Annotated[
        str | None, Query(description="The most pixels wide the player may be.")
    ] = None,
    maxheight: Annotated[
        str | None, Query(description="The most pixels high the player may be.")
    ] = None,
) -> OEmbed:
    """oEmbed 1.0 (oembed.com): the embed code of a space's player, an `<iframe>` of
    `/embed/{id}`, as a `rich` response. The listener page names this endpoint in its head
    (`<link rel="alternate" type="application/json+oembed">`), so CMSs find it by themselves.

    404 for a URL that is not a space page of this site (another host, scheme or port than the
    node's public URL, `--public-url`), or of a space that does not exist; 400 for a missing or
    malformed `url`, an unknown `format`, or a `maxwidth`/`maxheight` that is not a positive
    whole number; 501 for `format=xml`.
    """
    if format == "xml":  # §2.3.5: the provider cannot answer in the requested format
        raise ApiError(501, "only format=json is offered")
    if format not in (None, "", "json"):
        raise ApiError(400, "format is json (the default)")
    try:
        space_id = oembed.space_id_in(url, svc.config.site_url)
        size = oembed.fit(
            oembed.parse_size(maxwidth, "maxwidth"), oembed.parse_size(maxheight, "maxheight")
        )
    except oembed.BadRequest as exc:
        raise ApiError(400, str(exc)) from None
    except oembed.NotOurs as exc:
        raise ApiError(404, str(exc)) from None
    space = await svc.cached_space(space_id)  # NotFound: 404
    response.headers["Cache-Control"] = OEMBED_CACHE
    return oembed.answer(svc.config.site_url, space.id, space.title, space.host.name, size)
