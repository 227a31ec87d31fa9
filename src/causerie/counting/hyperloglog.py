"""HyperLogLog: counting distinct listeners in 16 KiB, whether there are ten or ten million.

Flajolet et al., "HyperLogLog: the analysis of a near-optimal cardinality estimation algorithm"
(2007), with 64-bit hashes (no large-range correction needed) and linear counting for small sets,
as Redis does. With 2^14 registers the standard error is 1.04 / sqrt(2^14) = 0.81 %.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np

PRECISION = 14
REGISTERS = 1 << PRECISION
_REST_BITS = 64 - PRECISION
_REST_MASK = (1 << _REST_BITS) - 1


def _hash64(item: str) -> int:
    return int.from_bytes(hashlib.blake2b(item.encode(), digest_size=8).digest(), "big")


class HyperLogLog:
    """A mergeable estimate of how many distinct strings were added."""

    __slots__ = ("registers",)

    def __init__(self, registers: np.ndarray | None = None) -> None:
        self.registers = registers if registers is not None else np.zeros(REGISTERS, dtype=np.uint8)

    def add(self, item: str) -> bool:
        """Add `item`; True if the sketch changed (so its count may have changed)."""
        h = _hash64(item)
        index = h >> _REST_BITS
        rank = _REST_BITS - (h & _REST_MASK).bit_length() + 1
        if rank > self.registers[index]:
            self.registers[index] = rank
            return True
        return False

    def merge(self, other: HyperLogLog) -> None:
        """Add everything `other` has seen (a union)."""
        np.maximum(self.registers, other.registers, out=self.registers)

    def count(self) -> int:
        """The estimated number of distinct items added."""
        registers = self.registers
        zeros = int(np.count_nonzero(registers == 0))
        alpha = 0.7213 / (1 + 1.079 / REGISTERS)
        estimate = (
            alpha
            * REGISTERS
            * REGISTERS
            / float(np.sum(np.ldexp(1.0, -registers.astype(np.int32))))
        )
        if estimate <= 2.5 * REGISTERS and zeros:
            estimate = REGISTERS * math.log(REGISTERS / zeros)
        return round(estimate)

    @classmethod
    def union(cls, sketches: list[HyperLogLog]) -> HyperLogLog:
        result = cls()
        for sketch in sketches:
            result.merge(sketch)
        return result
