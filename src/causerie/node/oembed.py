"""oEmbed (https://oembed.com, version 1.0) for the embeddable player: pure rules, no I/O.

A consumer (a CMS, WordPress) finds `GET /oembed?url=<a space page>` through the discovery link
in the listener page's head (§4), asks for it and pastes the `html` it gets: an `<iframe>` of
`/embed/{id}`. Which URLs are ours is decided against the node's configured public address
(`Config.site_url`), never against a request's Host header, which the client chooses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, Field

PROVIDER_NAME = "causerie"
DEFAULT_WIDTH = 480
DEFAULT_HEIGHT = 200
"""The player's natural size: a play button, the title, the state, the count, two caption
lines. It lays itself out in less, down to about 240 × 120."""
URL_MAX = 2048
"""Longer `url`s are refused (400): no page of this site has one anywhere near."""
SIZE_DIGITS = 9
CACHE_AGE = 3600
"""Seconds a consumer may keep an answer (§2.3.4 `cache_age`): the title may change."""

# The pages a space has that may be embedded: its listener page and the player itself.
_PAGE_PATH = re.compile(r"^/(?:s|embed)/(?P<space>[A-Za-z0-9_-]{1,32})$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class BadRequest(ValueError):
    """The request cannot be understood (400)."""


class NotOurs(LookupError):
    """The URL is not a space page of this site (404, §2.3.5: no response for this url)."""


class OEmbed(BaseModel):
    """An oEmbed 1.0 response of type `rich` (§2.3.4, §2.3.4.4)."""

    version: str = Field("1.0", description="Always 1.0.")
    type: str = Field("rich", description="Always `rich`: the player is HTML.")
    title: str = Field(description="The space's title.")
    author_name: str = Field(description="Who hosts the space.")
    provider_name: str = Field(PROVIDER_NAME, description="This software.")
    provider_url: str = Field(description="This site.")
    cache_age: int = Field(CACHE_AGE, description="Seconds the answer may be kept.")
    html: str = Field(description="The embed code: one `<iframe>` of `/embed/{id}`.")
    width: int = Field(description="The iframe's width in pixels (at most `maxwidth`).")
    height: int = Field(description="The iframe's height in pixels (at most `maxheight`).")


@dataclass(frozen=True)
class Size:
    width: int
    height: int


def _origin(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of an absolute URL, the port made explicit; ValueError if bad."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port  # ValueError for a bad one
    host = (parts.hostname or "").lower()
    return scheme, host, port if port is not None else _DEFAULT_PORTS.get(scheme, -1)


def space_id_in(url: str | None, site_url: str) -> str:
    """The id of the space whose page `url` is, on the site at `site_url`.

    `BadRequest` for a missing, overlong or unparsable URL; `NotOurs` for anything that is not
    `{site_url}/s/{id}` or `{site_url}/embed/{id}` (another scheme or host or port, user
    information, another path). A query string and a fragment are ignored (`?player=`).
    """
    if not url:
        raise BadRequest("url is required: the address of a space's page")
    if len(url) > URL_MAX:
        raise BadRequest(f"url is too long ({URL_MAX} characters at most)")
    if any(ord(char) < 0x21 or ord(char) == 0x7F for char in url):
        raise BadRequest("url has spaces or control characters in it")
    try:
        parts = urlsplit(url)
        theirs = _origin(url)
    except ValueError as exc:
        raise BadRequest(f"url is not a valid URL ({exc})") from None
    if parts.username is not None or parts.password is not None or theirs != _origin(site_url):
        raise NotOurs("url is not a page of this site")
    match = _PAGE_PATH.match(parts.path)
    if match is None:
        raise NotOurs("url is not a space's page (/s/{id})")
    return match["space"]


def parse_size(value: str | None, name: str) -> int | None:
    """`maxwidth` or `maxheight` (§2.2): None when absent, else a positive whole number of
    pixels; `BadRequest` for anything else."""
    if value is None or value == "":
        return None
    if not value.isascii() or not value.isdigit() or len(value) > SIZE_DIGITS or int(value) < 1:
        raise BadRequest(f"{name} is a positive whole number of pixels, not {value[:20]!r}")
    return int(value)


def fit(maxwidth: int | None, maxheight: int | None) -> Size:
    """The player's size within the bounds asked for (§2.2: never larger)."""
    width = DEFAULT_WIDTH if maxwidth is None else min(DEFAULT_WIDTH, maxwidth)
    height = DEFAULT_HEIGHT if maxheight is None else min(DEFAULT_HEIGHT, maxheight)
    return Size(width, height)


def embed_url(site_url: str, space_id: str) -> str:
    """Where the embeddable player of a space is."""
    return f"{site_url}/embed/{quote(space_id, safe='')}"


def iframe_html(site_url: str, space_id: str, title: str, size: Size) -> str:
    """The embed code. Only attributes that CMSs keep when they clean embed code (WordPress
    keeps src, width, height, frameborder, title and drops style and allow); the title is
    escaped for an attribute value."""
    label = escape(f"{title} · live audio", quote=True)
    return (
        f'<iframe src="{escape(embed_url(site_url, space_id), quote=True)}" '
        f'width="{size.width}" height="{size.height}" frameborder="0" title="{label}"></iframe>'
    )


def answer(site_url: str, space_id: str, title: str, host_name: str, size: Size) -> OEmbed:
    """The oEmbed response for a space."""
    return OEmbed(
        title=title,
        author_name=host_name,
        provider_url=f"{site_url}/",
        html=iframe_html(site_url, space_id, title, size),
        width=size.width,
        height=size.height,
    )


def discovery_link(site_url: str, space_id: str) -> str:
    """The `<link>` a listener page carries so that consumers find its oEmbed (§4)."""
    page = f"{site_url}/s/{quote(space_id, safe='')}"
    href = f"{site_url}/oembed?url={quote(page, safe='')}&format=json"
    return (
        f'<link rel="alternate" type="application/json+oembed" href="{escape(href, quote=True)}"'
        ' title="oEmbed">'
    )
