"""Logging that is safe and quiet: a filter that masks secrets in every record, a throttle for
conditions that repeat (one line per interval, with the count of the ones held back), and a log of one
condition at a time that says when it starts, while it lasts and when it clears."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any

from novawatch.redact import mask

#: Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


class SecretFilter(logging.Filter):
    """Masks passwords and tokens (``user:password@``, URLs, ``Bearer ...``) in a record's message, its
    traceback and its string ``extra`` fields: a safety net behind the code's own masking."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it itself when it formats the record
            return True
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if record.stack_info:
            record.stack_info = mask(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, mask(value))
        return True


def install_secret_filter(logger: logging.Logger | None = None) -> None:
    """Put a :class:`SecretFilter` on every handler of ``logger`` (the root logger by default), once each.

    On the handlers, not the logger: a logger's filters do not see records that propagate up from its
    children, a handler's see them all.
    """
    for handler in (logger or logging.getLogger()).handlers:
        if not any(isinstance(f, SecretFilter) for f in handler.filters):
            handler.addFilter(SecretFilter())


class Throttle:
    """Lets a repeating condition be logged once per ``interval`` seconds per key.

    ``throttle.log(logger, logging.WARNING, "refused", "... %d ...", n)`` writes the line when the key's
    interval has passed, adding how many were held back since the last one; otherwise it only counts.
    Keys name conditions (a few fixed values), so the table stays small. Safe to share between threads.
    """

    MAX_KEYS = 256

    def __init__(self, interval: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self.clock = clock
        self._last: dict[Hashable, float] = {}
        self._held: dict[Hashable, int] = {}
        self._lock = threading.Lock()

    def ready(self, key: Hashable) -> int | None:
        """None while ``key`` was logged less than ``interval`` ago (counted as held back); otherwise the
        number held back since its last line, and the interval starts again."""
        now = self.clock()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._held[key] = self._held.get(key, 0) + 1
                return None
            if len(self._last) >= self.MAX_KEYS and key not in self._last:
                self._last.clear()
                self._held.clear()
            self._last[key] = now
            return self._held.pop(key, 0)

    def log(self, logger: logging.Logger, level: int, key: Hashable, msg: str, *args: Any, **kwargs: Any) -> bool:
        """Log ``msg % args`` under ``key`` if its interval has passed; True when a line was written."""
        held = self.ready(key)
        if held is None:
            return False
        if held:
            msg += f" ({held} more like this since the last report)"
        logger.log(level, msg, *args, **kwargs)
        return True

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
