"""Errors of the compute API: what Nova answers with a 4xx instead of performing the action."""

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
