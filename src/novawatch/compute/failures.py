"""Failure injection: a seeded per-action failure rate that makes the fake hypervisor raise."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping


class InjectedFailure(Exception):
    """The fake hypervisor (or volume/network backend) failed: what Nova's drivers raise."""

    code = 500


class FailureInjector:
    """Decides, from its own seeded RNG, whether an action's backend call fails.

    ``rate`` applies to every action; ``per_action`` overrides it by action name; ``fail_next[action]`` makes
    that many next calls of ``action`` fail whatever the rates say (a failure that happens once).
    """

    def __init__(self, rate: float = 0.0, seed: int | None = 0, per_action: Mapping[str, float] | None = None) -> None:
        self.rate = rate
        self.per_action = dict(per_action or {})
        self.fail_next: Counter[str] = Counter()
        self._rng = random.Random(seed)
        self.injected = 0

    def rate_for(self, action: str) -> float:
        return self.per_action.get(action, self.rate)

    def check(self, action: str, what: str = "driver") -> None:
        """Raise :class:`InjectedFailure` with the configured probability for ``action``."""
        if self.fail_next[action] > 0:
            self.fail_next[action] -= 1
            self.injected += 1
            raise InjectedFailure(f"injected {what} failure during {action}")
        rate = self.rate_for(action)
        # Draw only when failures are possible, so that a zero rate does not consume randomness.
        if rate > 0.0 and self._rng.random() < rate:
            self.injected += 1
            raise InjectedFailure(f"injected {what} failure during {action}")
