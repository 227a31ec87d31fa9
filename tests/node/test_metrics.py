"""The Prometheus registry's text: counters (counted or read), gauges, histograms, numbers."""

from __future__ import annotations

import pytest

from causerie.media.timing import MediaTiming
from causerie.node.metrics import HistogramReading, Metrics, labels


def test_histogram_buckets_are_cumulative_and_end_with_inf_sum_and_count():
    timing = MediaTiming(bounds=(0.01, 0.2133, 1.0))
    for late in (0.0, 0.01, 0.011, 0.3, 7.0, -0.5):
        timing.tick(late)
    assert timing.lateness_counts == [3, 1, 1, 1]  # 0, 0.01 and -0.5 (as 0) are <= 0.01
    metrics = Metrics()
    metrics.histogram(
        "lateness_seconds",
        "How late",
        lambda: HistogramReading(timing.bounds, timing.lateness_counts, timing.lateness_sum),
    )
    assert metrics.render().splitlines() == [
        "# HELP lateness_seconds How late",
        "# TYPE lateness_seconds histogram",
        'lateness_seconds_bucket{le="0.01"} 3',
        'lateness_seconds_bucket{le="0.2133"} 4',
        'lateness_seconds_bucket{le="1"} 5',
        'lateness_seconds_bucket{le="+Inf"} 6',
        "lateness_seconds_sum 7.321",
        "lateness_seconds_count 6",
    ]


def test_a_histogram_reading_with_the_wrong_number_of_counts_is_refused():
    metrics = Metrics()
    metrics.histogram("h", "bad", lambda: HistogramReading((1.0,), (1,), 0.0))
    with pytest.raises(ValueError, match="one count per bound"):
        metrics.render()


def test_counters_read_at_scrape_time_and_numbers_spelled_as_prometheus_reads_them():
    metrics = Metrics()
    removed = {"age": 3, "budget": 0}
    metrics.counter(
        "removed_total",
        "Removed",
        lambda: {labels(reason=k): float(v) for k, v in removed.items()},
    )
    metrics.counter("counted_total", "Counted")
    metrics.inc("counted_total", 1_234_567)
    metrics.gauge("unknown", "Not measured yet", lambda: float("nan"))
    metrics.gauge("ratio", "A fraction", lambda: 0.25)
    removed["budget"] += 1
    text = metrics.render()
    assert 'removed_total{reason="age"} 3\n' in text
    assert 'removed_total{reason="budget"} 1\n' in text
    assert "counted_total 1234567\n" in text  # never 1.23457e+06
    assert "unknown NaN\n" in text
    assert "ratio 0.25\n" in text
    assert "# TYPE removed_total counter\n" in text


def test_part_late_means_more_than_its_own_duration_after_its_audio_ended():
    timing = MediaTiming()
    timing.part_ready(0.05, 0.2133)
    timing.part_ready(0.2133, 0.2133)
    timing.part_ready(0.2134, 0.2133)
    assert (timing.parts, timing.parts_late) == (3, 1)
    with pytest.raises(ValueError):
        MediaTiming(bounds=(1.0, 0.5))
