"""Logging that stays readable under a storm: one traceback, then a count."""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


class RepeatedErrors:
    """Logs the first of a run of errors with its traceback, then one line with a count every
    `every` seconds: a burst of failing requests must not write a traceback each."""

    def __init__(
        self, what: str, every: float = 10.0, logger: logging.Logger | None = None
    ) -> None:
        self.what = what
        self.log = logger or log
        self.every = every
        self.count = 0
        """Errors since the last line logged."""
        self.total = 0
        self._logged_at: float | None = None

    def record(self, exc: BaseException, subject: str) -> None:
        self.count += 1
        self.total += 1
        now = time.monotonic()
        if self._logged_at is None:
            self.log.error("%s (%s): %r", self.what, subject, exc, exc_info=exc)
        elif now - self._logged_at >= self.every:
            self.log.error(
                "%s: %d more times in %.0f s (last: %r)",
                self.what,
                self.count,
                now - self._logged_at,
                exc,
            )
        else:
            return
        self._logged_at = now
        self.count = 0
