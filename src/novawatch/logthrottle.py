"""Logging a condition that repeats: once per interval, with how many times it happened meanwhile."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any


class Throttle:
    """Lets one record per ``interval`` seconds through for each key; counts the ones held back."""

    def __init__(self, logger: logging.Logger, interval: float = 60.0) -> None:
        self.logger = logger
        self.interval = interval
        self._last: dict[object, float] = {}
        self._held: dict[object, int] = {}
        self._lock = threading.Lock()

    def log(self, level: int, key: object, message: str, *args: Any, **extra: Any) -> bool:
        """Log ``message % args`` at ``level`` unless ``key`` was logged less than ``interval`` ago."""
        now = time.monotonic()
        with self._lock:
            last = self._last.get(key)
            if last is not None and now - last < self.interval:
                self._held[key] = self._held.get(key, 0) + 1
                return False
            self._last[key] = now
            held = self._held.pop(key, 0)
        suffix = f" ({held} more like it since the last one)" if held else ""
        self.logger.log(level, message + suffix, *args, extra={**extra, "repeated": held})
        return True

    def warning(self, key: object, message: str, *args: Any, **extra: Any) -> bool:
        return self.log(logging.WARNING, key, message, *args, **extra)
