"""Listening now: heartbeats within the window count, silence drops out."""

from causerie.counting import LocalPresence


async def test_listeners_counted_and_dropped_after_the_window() -> None:
    presence = LocalPresence(interval=10)
    for i in range(50):
        await presence.seen("sp", f"l{i}", 100.0)
    assert await presence.listening_now("sp", 100.0) == 50
    # Half keep heartbeating every interval; the others go quiet.
    for t in (110.0, 120.0, 130.0):
        for i in range(25):
            await presence.seen("sp", f"l{i}", t)
    assert await presence.listening_now("sp", 130.0) == 25
    assert await presence.listening_now("other", 130.0) == 0


async def test_everyone_gone_after_two_intervals() -> None:
    presence = LocalPresence(interval=10)
    await presence.seen("sp", "l1", 100.0)
    assert await presence.listening_now("sp", 119.0) == 1
    assert await presence.listening_now("sp", 120.0) == 0
    presence.forget("sp")
    assert await presence.listening_now("sp", 100.0) == 0
