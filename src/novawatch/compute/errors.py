"""Errors of the compute API: what Nova answers with a 4xx instead of performing the action, and storage failures.

Each class carries the HTTP ``code`` it stands for; the HTTP apps map them in one table
(``novawatch.api.errors``).
"""

from __future__ import annotations


class ComputeError(Exception):
    """An action the API refuses (Nova's 4xx); nothing was changed or sent."""

    code = 400


class InvalidState(ComputeError):
    """The instance or service is not in a state that allows the action (Nova's 409)."""

    code = 409


class NotFound(ComputeError):
    """No such instance, service or volume (Nova's 404)."""

    code = 404


class Conflict(ComputeError):
    """Something of that name already exists (Nova's 409)."""

    code = 409


class OverQuota(ComputeError):
    """The request would go over a quota (Nova's 403)."""

    code = 403


class StorageError(Exception):
    """The database failed the transaction: it was rolled back, the service reloaded, nothing was sent."""

    code = 500


class StorageRefused(StorageError):
    """The database refused a value the API let through (out of a column's range, a character it cannot store)."""

    code = 400


class StorageUnavailable(StorageError):
    """The database cannot be reached (or the service could not reload from it): retry later."""

    code = 503
