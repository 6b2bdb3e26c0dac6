"""QuietLog: a repeating condition is logged once, then at most once per interval, and once when it clears."""

from __future__ import annotations

import logging

import pytest

from novawatch.logs import QuietLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def messages(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "test.quiet"]


def test_a_repeating_condition_is_logged_once_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="test.quiet")
    clock = Clock()
    quiet = QuietLog(logging.getLogger("test.quiet"), every=300.0, clock=clock)
    assert quiet.problem("down", "broker down")
    for _ in range(50):
        clock.now += 5
        assert not quiet.problem("down", "broker down")
    clock.now += 60  # 310 s after it was logged
    assert quiet.problem("down", "broker down")
    assert messages(caplog) == [
        (logging.WARNING, "broker down"),
        (logging.WARNING, "broker down (again; 50 more attempts since it was last logged)"),
    ]
    assert quiet.key == "down" and quiet.message == "broker down"


def test_a_new_condition_is_logged_at_once_and_the_end_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="test.quiet")
    quiet = QuietLog(logging.getLogger("test.quiet"), clock=Clock())
    quiet.cleared("nothing was wrong")  # nothing logged: no condition was
    quiet.problem("down", "broker down")
    quiet.problem("perm", "permission missing")
    quiet.problem("perm", "permission missing")
    quiet.cleared("consuming")
    quiet.cleared("consuming")
    assert messages(caplog) == [
        (logging.WARNING, "broker down"),
        (logging.WARNING, "permission missing"),
        (logging.INFO, "consuming"),
    ]
    assert quiet.key is None and quiet.message is None
