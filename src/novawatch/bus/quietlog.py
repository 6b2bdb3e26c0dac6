"""Logging a condition that repeats (a broker that stays away, a permission that stays missing) quietly.

A retry loop meets the same failure every few seconds for as long as it lasts; logging each attempt
buries everything else. :class:`QuietLog` logs a condition when it starts, then at most once every
``every`` seconds while it goes on (saying how many attempts it swallowed), and once when it clears.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any


class QuietLog:
    """One condition at a time, keyed: a new key is logged at once, a repeated one at most every ``every`` s."""

    def __init__(self, logger: logging.Logger, every: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.every = every
        self.clock = clock
        self.key: str | None = None  #: the condition going on, None when all is well
        self.message: str | None = None
        self._logged_at = 0.0
        self._swallowed = 0

    def problem(self, key: str, message: str, *, level: int = logging.WARNING,
                extra: Mapping[str, Any] | None = None) -> bool:
        """Report one occurrence of condition ``key``; returns True when it was logged."""
        now = self.clock()
        if key == self.key and now - self._logged_at < self.every:
            self._swallowed += 1
            self.message = message
            return False
        again = f" (again; {self._swallowed} more attempts since it was last logged)" if key == self.key else ""
        self.key, self.message, self._logged_at, self._swallowed = key, message, now, 0
        self.logger.log(level, "%s%s", message, again, extra=dict(extra or {}))
        return True

    def cleared(self, message: str, *, extra: Mapping[str, Any] | None = None) -> None:
        """The condition is over: say so once (only if one was logged)."""
        if self.key is not None:
            self.logger.info(message, extra=dict(extra or {}))
        self.key = self.message = None
        self._swallowed = 0
