"""Repeated errors (a storm of failing look-ups) are one traceback, then a count."""

from __future__ import annotations

import logging

from causerie.logs import RepeatedErrors


def test_a_burst_of_errors_is_one_traceback_and_a_count(caplog, monkeypatch) -> None:
    now = [100.0]
    monkeypatch.setattr("causerie.logs.time.monotonic", lambda: now[0])
    errors = RepeatedErrors("could not look up a space's owner", every=10.0)
    with caplog.at_level(logging.ERROR, logger="causerie.logs"):
        for _ in range(31_374):  # as many as one burst logged, with a traceback each
            errors.record(ConnectionError("Too many connections"), "s1")
        now[0] += 11
        errors.record(ConnectionError("Too many connections"), "s1")
    records = caplog.records
    assert len(records) == 2
    assert records[0].exc_info is not None
    assert "31374 more times" in records[1].getMessage()
    assert errors.total == 31_375
