"""A speaker in its own process, to be killed: `python -m tests.faults.speaker URL SPACE TOKEN`.

Publishes a 440 Hz tone over WHIP (aiortc, ICE on 127.0.0.1 only), prints "connected" once the
peer connection is up, then keeps sending for at most 60 s.
"""

from __future__ import annotations

import asyncio
import sys

import httpx

from tests.fixtures.rtc import ToneTrack, loopback_only, publish


async def main(url: str, space_id: str, token: str) -> None:
    loopback_only()
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        speaker = await publish(http, space_id, token, ToneTrack(440), receive=False)
        await speaker.wait_connected()
        print("connected", flush=True)
        await asyncio.sleep(60)
        await speaker.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
