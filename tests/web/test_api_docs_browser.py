"""`/api/docs` in headless Chromium: Swagger UI renders from the package alone.

The page runs on the origin where the studio keeps tokens: it must load nothing from another
origin (the CDN it used to load Swagger UI from, a public validator) and hold to its
Content-Security-Policy. Every request off the node's origin is recorded and refused.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from tests.web.live import chromium

# An attribute (src, href, action…) that points at another origin: absolute or scheme-relative.
OFF_ORIGIN = re.compile(r"""\b(?:src|href|action)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:)?//""", re.I)
DISCOVERY = re.compile(r'<link rel="alternate" type="application/json\+oembed"[^>]*>')


async def test_the_api_docs_render_from_the_node_alone(node) -> None:
    origin = urlsplit(node.url).netloc
    elsewhere: list[str] = []
    violations: list[str] = []
    async with chromium() as browser:
        page = await browser.new_page()

        async def only_the_node(route) -> None:
            if urlsplit(route.request.url).netloc == origin:
                await route.continue_()
            else:
                elsewhere.append(route.request.url)
                await route.abort()

        await page.route("**/*", only_the_node)
        page.on(
            "console",
            lambda m: "Content Security Policy" in m.text and violations.append(m.text),
        )
        await page.goto(f"{node.url}/api/docs")
        # The operations of the OpenAPI document, drawn by Swagger UI.
        # (Locators, not wait_for_function: the page's CSP forbids Playwright's eval.)
        await page.locator(".opblock").nth(20).wait_for(timeout=20_000)
        await page.locator(
            ".opblock-summary", has_text="/api/spaces/{space_id}/clips"
        ).first.click()
        await page.wait_for_selector(".opblock.is-open .try-out", timeout=5_000)
    assert elsewhere == []
    assert violations == []


async def test_the_docs_page_names_no_other_origin(client) -> None:
    response = await client.get("/api/docs")
    assert response.status_code == 200
    assert "http://" not in response.text and "https://" not in response.text
    assert "script-src 'self'" in response.headers["content-security-policy"]
    for asset in ("/static/vendor/swagger-ui-bundle.js", "/static/vendor/swagger-ui.css"):
        assert (await client.get(asset)).status_code == 200, asset


async def test_no_page_names_another_origin(client) -> None:
    """Every page the node serves loads its scripts and styles from the node: the studio
    keeps account tokens in localStorage on this origin (SECURITY.md)."""
    pages = ["/", "/s/x", "/s/x/report", "/s/x/speak", "/studio", "/studio/x", "/api/docs"]
    pages.append("/embed/x")
    for path in pages:
        html = (await client.get(path)).text
        # The listener page's oEmbed discovery link is absolute (consumers read it as is) and
        # names the node's own public URL; a rel="alternate" link loads nothing.
        html = DISCOVERY.sub("", html)
        assert not OFF_ORIGIN.search(html), (path, OFF_ORIGIN.search(html))
