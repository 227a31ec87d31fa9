"""The web pages: the list of spaces at `/`, one space at `/s/{id}`, its audience report at
`/s/{id}/report`, the studio, the operator's console at `/admin`, invites, static assets."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse
from starlette.staticfiles import StaticFiles

from ..domain import SPACE_ID
from ..node.oembed import discovery_link
from .dependencies import ServicesDep

STATIC_DIR = Path(str(files("causerie.web") / "static"))
PAGE_CACHE = "public, max-age=60"

router = APIRouter(include_in_schema=False)


def _page(name: str) -> FileResponse:
    return FileResponse(
        STATIC_DIR / name, media_type="text/html", headers={"Cache-Control": PAGE_CACHE}
    )


@router.get("/")
async def index() -> FileResponse:
    return _page("index.html")


@cache
def _listener_page() -> str:
    return (STATIC_DIR / "space.html").read_text()


@router.get("/s/{space_id}")
async def space_page(space_id: str, svc: ServicesDep) -> HTMLResponse:
    """The listener page. Its head names the space's oEmbed (oEmbed §4, discovery), for CMSs
    that read the page without running it; the link starts with the configured public URL,
    never the request's Host (the page is cached by edges for everyone)."""
    html = _listener_page()
    if SPACE_ID.match(space_id):
        link = discovery_link(svc.config.site_url, space_id)
        html = html.replace("</head>", f"  {link}\n</head>", 1)
    return HTMLResponse(html, headers={"Cache-Control": PAGE_CACHE})


@router.get("/s/{space_id}/report")
async def report_page(space_id: str) -> FileResponse:
    """The audience report of a space: its numbers, defined, and a plot over time."""
    return _page("report.html")


@router.get("/s/{space_id}/speak")
async def speak_page(space_id: str) -> FileResponse:
    """The speaker view: a listener brought on stage publishes their microphone (WHIP)."""
    return _page("speak.html")


@router.get("/studio")
async def studio_create_page() -> FileResponse:
    """The host studio: create and schedule a space."""
    return _page("studio.html")


@router.get("/studio/{space_id}")
async def studio_page(space_id: str) -> FileResponse:
    """The host studio of one space: go live, the stage, raised hands, questions."""
    return _page("studio.html")


@router.get("/admin")
async def admin_page() -> FileResponse:
    """The operator's console: every space, every node, the disk; invites and accounts."""
    return _page("admin.html")


@router.get("/invite/{code}")
async def invite_page(code: str) -> FileResponse:
    """An invite link: choose a name, get a host (or operator) account."""
    return _page("invite.html")


@router.get("/transparency")
async def transparency_page() -> FileResponse:
    """The public transparency figures: reports received, actions taken, time to act."""
    return _page("transparency.html")


# The API documentation runs a large third-party bundle on the origin where the studio keeps
# tokens: its files come from the package (never a CDN), and the page may load nothing from
# anywhere else (Swagger UI sets a few inline styles; its icons are data: images).
DOCS_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


@router.get("/api/docs")
@router.head("/api/docs")
async def api_docs() -> FileResponse:
    """Swagger UI over /openapi.json, served from the package."""
    return FileResponse(
        STATIC_DIR / "api-docs.html",
        media_type="text/html",
        headers={"Cache-Control": PAGE_CACHE, "Content-Security-Policy": DOCS_POLICY},
    )


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)
