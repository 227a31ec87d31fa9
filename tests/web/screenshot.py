"""Screenshot the listener page, playing the real demo space, for the docs.

    .venv/bin/python -m tests.web.screenshot [--out docs/listener-page.png]

Runs `causerie demo` on a free port of 127.0.0.1 with a throwaway data directory, opens the demo
space in headless Chromium at phone size (390×844 CSS pixels, 2× density), presses play, waits
until the page shows the listener count and the delay behind live, and saves the screenshot.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import tempfile
from pathlib import Path

from tests.harness.causerie_process import causerie_process
from tests.web.live import chromium, demo_space, phone_page, start_listening

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "docs" / "listener-page.png"
MAX_BYTES = 300_000


async def screenshot(url: str, out: Path) -> str:
    """Play the demo space at `url` and save the page; returns the figures it shows."""
    space = await demo_space(url)
    async with chromium() as browser:
        page = await phone_page(browser)
        await page.goto(f"{url}/s/{space['id']}")
        await page.locator("#stage-list .person").first.wait_for()
        await start_listening(page)
        await (
            page.locator("#listeners")
            .filter(has_text=re.compile(r"^[1-9][\d,]* listening now$"))
            .wait_for(timeout=10_000)
        )
        await page.locator("#latency").filter(has_text=re.compile(r"behind live$")).wait_for()
        await asyncio.sleep(4)  # past the first seconds: a settled delay, no "Connecting…"
        out.parent.mkdir(parents=True, exist_ok=True)
        # Animations off: the LIVE dot's pulse would otherwise be caught at a random opacity.
        await page.screenshot(path=str(out), animations="disabled")
        listeners = await page.locator("#listeners").text_content()
        latency = await page.locator("#latency").text_content()
        return f"{listeners}; {latency}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="default %(default)s")
    args = parser.parse_args()
    with (
        tempfile.TemporaryDirectory(prefix="causerie-screenshot-") as folder,
        causerie_process(Path(folder), "demo") as demo,
    ):
        shown = asyncio.run(screenshot(demo.url, args.out))
    size = args.out.stat().st_size
    print(f"{args.out}: {size // 1000} KB; the page showed: {shown}")
    if size > MAX_BYTES:
        print(f"warning: larger than {MAX_BYTES // 1000} KB", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
