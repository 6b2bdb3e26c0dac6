"""The log's safety net (secrets masked in any record) and the throttle for repeating conditions."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from novawatch.logs import SecretFilter, Throttle, install_secret_filter


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s %(bus_url)s"))
    root = logging.getLogger("novawatch-test-logs")
    root.propagate = False
    root.addHandler(handler)
    install_secret_filter(root)
    install_secret_filter(root)  # once is enough: no second filter
    assert sum(isinstance(f, SecretFilter) for f in handler.filters) == 1
    try:
        yield root, out
    finally:
        root.removeHandler(handler)


def test_secrets_are_masked_in_message_arguments_traceback_and_extra(
        logged: tuple[logging.Logger, io.StringIO]) -> None:
    root, out = logged
    # A child logger's record propagates to the handler: the filter on the handler still sees it.
    child = root.getChild("bus")
    child.warning("lost %s (%s)", "rabbit://guest:p@ss@broker:5672/", "guest:hunter2@broker refused",
                  extra={"bus_url": "amqp://u:topsecret@h//"})
    try:
        raise ConnectionError("cannot reach http://admin:s3cret@compute:8774 with Bearer tok-123")
    except ConnectionError:
        child.exception("source failed", extra={"bus_url": "-"})
    text = out.getvalue()
    for secret in ("p@ss", "ss@broker", "hunter2", "topsecret", "s3cret", "tok-123"):
        assert secret not in text
    assert "rabbit://guest:***@broker:5672/" in text and "amqp://u:***@h//" in text
    assert "ConnectionError: cannot reach http://admin:***@compute:8774" in text  # the traceback is kept


def test_a_record_without_secrets_is_untouched(logged: tuple[logging.Logger, io.StringIO]) -> None:
    root, out = logged
    root.warning("applied %d of %d", 3, 4, extra={"bus_url": "embedded:///tmp/bus"})
    assert out.getvalue() == "WARNING applied 3 of 4 embedded:///tmp/bus\n"


def test_throttle_writes_once_per_interval_with_the_count_held_back(caplog: pytest.LogCaptureFixture) -> None:
    now = [100.0]
    throttle = Throttle(60.0, clock=lambda: now[0])
    log = logging.getLogger("novawatch-test-throttle")
    with caplog.at_level(logging.WARNING, logger=log.name):
        written = [throttle.log(log, logging.WARNING, "limit", "at the limit (%d)", n) for n in range(1000)]
        assert written[0] and not any(written[1:])
        throttle.log(log, logging.WARNING, "other", "another condition")  # its own interval
        now[0] += 59.0
        assert not throttle.log(log, logging.WARNING, "limit", "at the limit (%d)", 1000)
        now[0] += 1.0
        assert throttle.log(log, logging.WARNING, "limit", "at the limit (%d)", 1001)
    assert [r.getMessage() for r in caplog.records] == [
        "at the limit (0)", "another condition",
        "at the limit (1001) (1000 more like this since the last report)"]
