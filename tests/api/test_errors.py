"""The one table from compute errors to HTTP status codes."""

from __future__ import annotations

from sqlalchemy import exc as sa_exc

from novawatch.api.errors import STATUS, status_of
from novawatch.compute.errors import ComputeError, InvalidState, NotFound, StorageRefused, StorageUnavailable
from novawatch.compute.resource_tracker import ClaimError
from novawatch.compute.scheduler import NoValidHost
from novawatch.compute.volumes import VolumeError, VolumeNotFound, VolumeUnavailable


def test_no_row_is_shadowed_by_an_earlier_one() -> None:
    for i, row in enumerate(STATUS):
        for earlier in STATUS[:i]:
            assert not issubclass(row.error, earlier.error), f"{row.error.__name__} never reached"


def test_each_error_answers_its_status_with_what_to_do() -> None:
    cases = [
        (VolumeNotFound("volume v not found"), 404), (VolumeUnavailable("volume v is in-use, not available"), 409),
        (VolumeError("volume refused"), 400), (NotFound("instance i not found"), 404),
        (InvalidState("cannot pause"), 409), (NoValidHost(), 409), (ClaimError("x does not fit"), 409),
        (ComputeError("bad"), 400), (StorageRefused("refused"), 400), (StorageUnavailable("gone"), 503),
        (sa_exc.OperationalError("SELECT 1", {}, Exception("down")), 503), (KeyError("bug"), 500),
    ]
    for exc, status in cases:
        got, message = status_of(exc)
        assert got == status, (exc, got)
        assert message
    assert "detach it first" in status_of(VolumeUnavailable("volume v is in-use"))[1]
    assert "choose another host" in status_of(NoValidHost())[1]
    # a database error's text (its SQL and parameters) is not sent to the client
    assert "SELECT" not in status_of(sa_exc.OperationalError("SELECT secret", {}, Exception("down")))[1]


def test_every_compute_error_class_has_a_row() -> None:
    import inspect

    from novawatch.compute import errors, resource_tracker, scheduler, volumes

    for module in (errors, volumes, scheduler, resource_tracker):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, Exception) and cls.__module__ == module.__name__:
                assert any(issubclass(cls, row.error) for row in STATUS), cls


def test_docs_api_md_lists_the_table() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    section = text[text.index("### Status codes"):]
    table = section[:section.index("\n## ")]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    documented = [(line.split("`")[1], int(line.split("|")[2])) for line in rows]
    assert documented == [(row.error.__name__, row.status) for row in STATUS]


def test_the_action_is_named_in_the_message() -> None:
    from novawatch.api.errors import ACTION_NOTE

    exc = InvalidState("instance i has no resize to confirm")
    exc.add_note(f"{ACTION_NOTE}confirm_resize")
    assert status_of(exc) == (409, "confirm_resize: instance i has no resize to confirm; wait for the current task "
                                   "to end or change the state first")
