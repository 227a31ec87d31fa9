"""The jitter buffer alone: packets in by sequence number, one decision per mixer tick out."""

from __future__ import annotations

from causerie.media.jitter import Action, JitterBuffer, Take


def payload(n: int) -> bytes:
    return f"p{n}".encode()


def run(buffer: JitterBuffer, arrivals: list[list[int]]) -> list[tuple[Action, bytes | None]]:
    """Each item: the packets that arrive before one tick; returns what each tick played."""
    played = []
    for batch in arrivals:
        for n in batch:
            buffer.put(n & 0xFFFF, payload(n))
        take = buffer.take()
        played.append((take.action, take.payload))
    return played


def test_packets_in_order_are_played_in_order() -> None:
    played = run(JitterBuffer(), [[n] for n in range(5)])
    assert played == [(Action.PLAY, payload(n)) for n in range(5)]


def test_a_lost_packet_is_rebuilt_from_the_next_one() -> None:
    buffer = JitterBuffer(target=2)
    played = run(buffer, [[0, 1], [2], [], [4], [5], [6]])
    # 3 never comes: its turn is played from 4's FEC, then 4 itself.
    assert played[:5] == [
        (Action.PLAY, payload(0)),
        (Action.PLAY, payload(1)),
        (Action.PLAY, payload(2)),
        (Action.RECOVER, payload(4)),
        (Action.PLAY, payload(4)),
    ]
    assert buffer.recovered == 1 and buffer.concealed == 0


def test_two_lost_in_a_row_conceal_then_recover() -> None:
    buffer = JitterBuffer(target=3)
    played = run(buffer, [[0, 1, 2], [], [5], [6], [7]])
    assert [a for a, _ in played] == [
        Action.PLAY,  # 0
        Action.PLAY,  # 1
        Action.PLAY,  # 2
        Action.CONCEAL,  # 3: nothing after it but 5
        Action.RECOVER,  # 4, from 5
    ]
    assert buffer.concealed == 1 and buffer.recovered == 1


def test_silence_after_a_few_concealed_packets_then_resume() -> None:
    buffer = JitterBuffer(max_conceal=3)
    played = run(buffer, [[0], [], [], [], [], [], [20], [21]])
    assert [a for a, _ in played] == [
        Action.PLAY,
        Action.CONCEAL,
        Action.CONCEAL,
        Action.CONCEAL,
        Action.SILENCE,  # the speaker paused, or the connection is gone
        Action.SILENCE,
        Action.PLAY,  # 20: resumed from the first packet that came back
        Action.PLAY,
    ]
    assert played[6][1] == payload(20)


def test_a_packet_just_late_is_played_after_its_concealment() -> None:
    buffer = JitterBuffer(target=1)
    played = run(buffer, [[0], [], [1, 2], [3], [4]])
    # 1 came just after its turn was concealed: it is played next, one packet later than
    # planned: the buffer now holds one packet more, and no audio was lost.
    assert buffer.late == 1 and buffer.target == 2
    assert played == [
        (Action.PLAY, payload(0)),
        (Action.CONCEAL, None),  # 1's turn: nothing there yet
        (Action.PLAY, payload(1)),
        (Action.PLAY, payload(2)),
        (Action.PLAY, payload(3)),
    ]
    assert buffer.depth == 1  # 4 waits: one packet held


def test_a_packet_later_than_that_is_dropped_and_the_delay_built_at_once() -> None:
    buffer = JitterBuffer(target=1)
    played = run(buffer, [[0], [], [], [1, 2, 3], [4], [5]])
    # 1's and 2's turns were concealed: 1 is too late to play (dropped), 2 just late (played).
    assert buffer.target == 2 and buffer.late == 2
    assert played == [
        (Action.PLAY, payload(0)),
        (Action.CONCEAL, None),  # 1
        (Action.CONCEAL, None),  # 2
        (Action.CONCEAL, None),  # one packet of delay more, for 1 that came too late
        (Action.PLAY, payload(2)),
        (Action.PLAY, payload(3)),
    ]


def test_a_burst_at_start_is_cut_to_the_target() -> None:
    buffer = JitterBuffer(target=2)
    for n in range(30):  # queued by the sender while the connection came up
        buffer.put(n, payload(n))
    take = buffer.take()
    assert take == type(take)(Action.PLAY, payload(28))
    assert buffer.skipped == 28 and buffer.depth == 1


def test_a_buffer_deeper_than_needed_drains_one_packet_at_a_time() -> None:
    buffer = JitterBuffer(target=1, window=10, slack=1)
    buffer.put(0, payload(0))
    buffer.take()
    for n in range(1, 5):  # a clump: 4 packets at once, then one per tick
        buffer.put(n, payload(n))
    skips = 0
    for n in range(5, 60):
        buffer.put(n, payload(n))
        skips += buffer.take().skip is not None
    assert skips == 3  # back to the target + 1 packet of slack
    assert buffer.depth <= 2


def test_slack_packets_are_kept_above_the_target() -> None:
    buffer = JitterBuffer(target=1, window=10, slack=3)
    buffer.put(0, payload(0))
    buffer.take()
    for n in range(1, 7):  # a clump: 6 packets at once, then one per tick
        buffer.put(n, payload(n))
    skips = 0
    for n in range(7, 80):
        buffer.put(n, payload(n))
        skips += buffer.take().skip is not None
    # 6 held after a take; 3 dropped: with the next arrival, the target + 3 of slack.
    assert skips == 3
    assert buffer.depth == 3


def test_sequence_numbers_wrap() -> None:
    played = run(JitterBuffer(), [[n] for n in range(65534, 65540)])
    assert [p for _, p in played] == [payload(n) for n in range(65534, 65540)]


def test_the_target_comes_back_down_when_the_network_calms() -> None:
    buffer = JitterBuffer(target=1, calm=20)
    run(buffer, [[0], [], [1, 2]])
    assert buffer.target == 2
    run(buffer, [[n] for n in range(3, 40)])
    assert buffer.target == 1


def test_a_pause_on_dtx_is_not_lateness() -> None:
    """Opus DTX: while quiet, one packet every 400 ms (20 ticks); sequence numbers go on by one
    per packet sent, timestamps by the time that passed. Each packet after a pause is played
    at once; nothing is late, the target stays where it was."""
    buffer = JitterBuffer(target=1)
    played = []
    sequence, timestamp = 0, 0
    for tick in range(400):
        talking = tick < 50 or tick >= 330  # then quiet, then a talkspurt at tick 330
        if talking or tick % 20 == 0:
            buffer.put(sequence, payload(sequence), timestamp)
            sequence += 1
        timestamp += 960
        take = buffer.take()
        played.append((tick, take.action, take.payload))
    assert buffer.late == 0 and buffer.target == 1
    # Every packet sent was played, in its own tick: the talkspurt from its first packet on.
    assert sum(1 for _, action, _ in played if action is Action.PLAY) == sequence
    onset = next(n for n in range(sequence) if n >= 50 and played[330][2] == payload(n))
    assert all(played[330 + k][2] == payload(onset + k) for k in range(70))


def test_a_late_packet_is_still_late_when_its_timestamp_is_its_own() -> None:
    """A packet that missed its turn but follows its predecessor by one packet's time came late
    through the network: the target grows, as without timestamps."""
    buffer = JitterBuffer(target=1)
    for n in range(10):
        buffer.put(n, payload(n), 960 * n)
        assert buffer.take().payload == payload(n)
    assert buffer.take().action is Action.CONCEAL  # 10 is not there
    buffer.put(10, payload(10), 960 * 10)
    assert buffer.take() == Take(Action.PLAY, payload(10))  # after its concealment
    assert buffer.late == 1 and buffer.target == 2
