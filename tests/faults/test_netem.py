"""The userspace netem (tests/fixtures/netem.py): its delay/jitter/loss model, its netlink
parsing, and the real thing on a namespace's UDP output."""

from __future__ import annotations

import contextlib
import itertools
import socket
import struct
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tests.fixtures.netem import (
    NFNL_SUBSYS_QUEUE,
    NFQA_PACKET_HDR,
    NFQNL_MSG_PACKET,
    NLMSG_ERROR,
    LinkModel,
    _attribute,
    _packet_ids,
)
from tests.fixtures.netns import namespace, shaping_available


def test_delays_are_uniform_around_the_mean_and_never_negative() -> None:
    model = LinkModel(delay=0.050, jitter=0.030, seed=1)
    waits = np.array([model.due(10.0) - 10.0 for _ in range(20000)])  # type: ignore[operator]
    assert waits.min() >= 0.020 and waits.max() <= 0.080
    assert abs(waits.mean() - 0.050) < 0.001
    assert abs(waits.std() - 0.030 / np.sqrt(3)) < 0.001  # a uniform's standard deviation
    clipped = LinkModel(delay=0.010, jitter=0.030, seed=2)
    assert min(clipped.due(5.0) for _ in range(1000)) == 5.0  # type: ignore[type-var]


def test_packets_overtake_each_other_unless_order_is_kept() -> None:
    sent = np.arange(2000) * 0.020
    free = LinkModel(delay=0.050, jitter=0.050, seed=3)
    queue = LinkModel(delay=0.050, jitter=0.050, keep_order=True, seed=3)
    free_dues = [free.due(t) for t in sent]
    queue_dues = [queue.due(t) for t in sent]
    assert np.any(np.diff(free_dues) < 0)  # type: ignore[arg-type]
    assert np.all(np.diff(queue_dues) >= 0)  # type: ignore[arg-type]
    assert all(q >= f for q, f in zip(queue_dues, free_dues, strict=True))  # type: ignore[operator]


def test_loss_is_the_share_asked_for() -> None:
    model = LinkModel(loss=0.05, seed=4)
    lost = sum(model.due(0.0) is None for _ in range(40000))
    assert 0.045 < lost / 40000 < 0.055
    assert all(LinkModel(seed=5).due(1.0) == 1.0 for _ in range(100))


def _netlink(kind: int, body: bytes) -> bytes:
    return struct.pack("=IHHII", 16 + len(body), kind, 0, 0, 0) + body


def test_packet_ids_are_read_from_a_batch_and_errors_raise() -> None:
    kind = (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET

    def packet(packet_id: int) -> bytes:
        # nfgenmsg, then the packet header attribute (id, hw protocol, hook) and another one.
        header = struct.pack("!IHB", packet_id, 0x0800, 3)
        return _netlink(
            kind, b"\2\0\0\7" + _attribute(9, b"\1\2\3\4\5") + _attribute(NFQA_PACKET_HDR, header)
        )

    assert _packet_ids(packet(41) + packet(42)) == [41, 42]
    assert _packet_ids(_netlink(NLMSG_ERROR, struct.pack("=i", 0) + bytes(16))) == []
    with pytest.raises(OSError, match="nfqueue"):
        _packet_ids(_netlink(NLMSG_ERROR, struct.pack("=i", -1) + bytes(16)))


SENDER = """
import socket, struct, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
start = time.monotonic()
for i in range(150):
    while time.monotonic() < start + i * 0.010:
        time.sleep(0.001)
    s.sendto(struct.pack("!Id", i, time.time()), (sys.argv[1], int(sys.argv[2])))
"""


@pytest.mark.skipif(shaping_available() is not None, reason=str(shaping_available()))
def test_a_namespace_s_udp_is_delayed_with_jitter() -> None:
    """150 datagrams from the namespace to the host, 10 ms apart, through 40 ± 20 ms: each
    arrives 20–60 ms after it was sent (plus this machine's scheduling), some overtaken."""
    with namespace() as ns:
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rx.bind((ns.node_address, 0))
        rx.settimeout(1.0)
        arrivals: list[tuple[int, float]] = []

        def read() -> None:  # until a second without a datagram
            with contextlib.suppress(TimeoutError):
                while True:
                    number, sent = struct.unpack("!Id", rx.recv(100))
                    arrivals.append((number, time.time() - sent))

        with ns.shape_udp(40, 20):
            reader = threading.Thread(target=read)
            reader.start()
            argv = [sys.executable, "-c", SENDER, ns.node_address, str(rx.getsockname()[1])]
            subprocess.run(ns.command(argv), check=True, timeout=30)
            reader.join(timeout=30)
        rx.close()
    numbers = [number for number, _ in arrivals]
    delays = np.array([delay for _, delay in arrivals])
    assert sorted(numbers) == list(range(150))
    assert delays.min() >= 0.019
    assert np.percentile(delays, 50) == pytest.approx(0.040, abs=0.010)
    assert np.percentile(delays, 90) < 0.080  # the bound plus slack for a loaded machine
    assert any(b < a for a, b in itertools.pairwise(numbers))
