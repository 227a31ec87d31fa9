"""A small Prometheus registry: counters, gauges and histograms in the text exposition format
(https://prometheus.io/docs/instrumenting/exposition_formats/, version 0.0.4)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

Labels = tuple[tuple[str, str], ...]
Reading = Callable[[], dict[Labels, float] | float]


def _labels(labels: dict[str, str]) -> Labels:
    return tuple(sorted(labels.items()))


def _format_labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in labels
    )
    return "{" + inner + "}"


@dataclass(frozen=True)
class HistogramReading:
    """A histogram as read at scrape time: observations per bucket (not cumulative; one more
    than `bounds`, for those past the last bound) and their sum."""

    bounds: Sequence[float]
    counts: Sequence[int]
    total: float


class Metrics:
    """Counters (`inc`, or read at scrape time), gauges and histograms (read at scrape time)."""

    def __init__(self) -> None:
        self._help: dict[str, tuple[str, str]] = {}
        self._counters: dict[str, dict[Labels, float]] = defaultdict(dict)
        self._read: dict[str, Reading] = {}
        self._histograms: dict[str, Callable[[], HistogramReading]] = {}

    def counter(self, name: str, help_text: str, read: Reading | None = None) -> None:
        """A counter: counted here with `inc`, or, with `read`, kept elsewhere and read at
        scrape time (it must only grow)."""
        self._help[name] = ("counter", help_text)
        if read is not None:
            self._read[name] = read

    def gauge(self, name: str, help_text: str, read: Reading) -> None:
        self._help[name] = ("gauge", help_text)
        self._read[name] = read

    def histogram(self, name: str, help_text: str, read: Callable[[], HistogramReading]) -> None:
        self._help[name] = ("histogram", help_text)
        self._histograms[name] = read

    def inc(self, name: str, amount: float = 1.0, **labels: str) -> None:
        series = self._counters[name]
        key = _labels(labels)
        series[key] = series.get(key, 0.0) + amount

    def value(self, name: str, **labels: str) -> float:
        return self._counters.get(name, {}).get(_labels(labels), 0.0)

    def render(self) -> str:
        """The Prometheus text format (version 0.0.4)."""
        lines: list[str] = []
        for name, (kind, help_text) in sorted(self._help.items()):
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            if kind == "histogram":
                lines.extend(_histogram_lines(name, self._histograms[name]()))
                continue
            if name in self._read:
                read = self._read[name]()
                samples = read if isinstance(read, dict) else {(): read}
            else:
                samples = self._counters.get(name) or {(): 0.0}
            for labels, value in sorted(samples.items()):
                lines.append(f"{name}{_format_labels(labels)} {_number(value)}")
        return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    """A sample value as the format spells it (Go's ParseFloat: NaN, +Inf, -Inf)."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))  # "%g" would round a counter past a million (1.23457e+06)
    return repr(value)


def _histogram_lines(name: str, reading: HistogramReading) -> list[str]:
    if len(reading.counts) != len(reading.bounds) + 1:
        raise ValueError(f"{name}: one count per bound, and one past the last")
    lines = []
    cumulative = 0
    for bound, count in zip(reading.bounds, reading.counts, strict=False):
        cumulative += count
        lines.append(f'{name}_bucket{{le="{bound:g}"}} {cumulative}')
    cumulative += reading.counts[-1]
    lines.append(f'{name}_bucket{{le="+Inf"}} {cumulative}')
    lines.append(f"{name}_sum {_number(reading.total)}")
    lines.append(f"{name}_count {cumulative}")
    return lines


def labels(**items: str) -> Labels:
    """Labels for a gauge sample."""
    return _labels(items)
