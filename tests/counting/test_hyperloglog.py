"""HyperLogLog accuracy and merging."""

import pytest

from causerie.counting import HyperLogLog


@pytest.mark.parametrize("n", [0, 1, 7, 100, 5000, 200_000])
def test_counts_within_error(n: int) -> None:
    sketch = HyperLogLog()
    for i in range(n):
        sketch.add(f"listener-{i}")
    assert abs(sketch.count() - n) <= max(1, 0.03 * n)


def test_duplicates_count_once() -> None:
    sketch = HyperLogLog()
    for _ in range(3):
        for i in range(1000):
            sketch.add(f"l{i}")
    assert abs(sketch.count() - 1000) <= 10


def test_union() -> None:
    a, b = HyperLogLog(), HyperLogLog()
    for i in range(3000):
        a.add(f"l{i}")
    for i in range(2000, 6000):
        b.add(f"l{i}")
    assert abs(HyperLogLog.union([a, b]).count() - 6000) <= 120
    assert abs(a.count() - 3000) <= 60  # union leaves the parts alone
