"""Hook points: named places where deployer code runs before and after a novawatch function.

A function becomes the hook point NAME with ``@add_hook(NAME)``. A hook is any object with
``pre(*args, **kwargs)`` and/or ``post(rv, *args, **kwargs)``. Hooks come from the entry point
group ``novawatch.hooks`` (the entry point's name is the hook point's name; it may name a class,
instantiated without arguments, or an object) and from :func:`register` in code.

A hook that raises :class:`FatalHookError` stops the hooked call; any other exception from a hook
is logged with the hook's name and the call goes on, so a broken hook cannot break the service.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, ParamSpec, Protocol, TypeVar

log = logging.getLogger("novawatch.hooks")

ENTRY_POINT_GROUP = "novawatch.hooks"
#: Called with (instance, network_info) whenever an instance's network info cache changes.
NW_INFO_HOOK = "update_instance_cache_with_nw_info"

_P = ParamSpec("_P")
_R = TypeVar("_R")


class FatalHookError(Exception):
    """Raised by a hook to stop the hooked function; it propagates to the caller."""


class Hook(Protocol):
    """Either method may be absent."""

    def pre(self, *args: Any, **kwargs: Any) -> None: ...

    def post(self, rv: Any, *args: Any, **kwargs: Any) -> None: ...


_lock = threading.Lock()
_loaded: dict[str, list[tuple[str, Any]]] = {}
_registered: dict[str, list[tuple[str, Any]]] = {}


def register(hook_point: str, hook: Any, name: str | None = None) -> None:
    """Attach a hook object to a hook point from code (tests, embedding applications)."""
    with _lock:
        _registered.setdefault(hook_point, []).append((name or type(hook).__name__, hook))


def unregister_all() -> None:
    """Forget hooks registered in code and re-read entry points on next use."""
    with _lock:
        _registered.clear()
        _loaded.clear()


def hooks_for(hook_point: str) -> list[tuple[str, Any]]:
    """(name, hook) pairs for a hook point: entry points first, then those registered in code."""
    with _lock:
        if hook_point not in _loaded:
            _loaded[hook_point] = _load(hook_point)
        return _loaded[hook_point] + _registered.get(hook_point, [])


def _load(hook_point: str) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for ep in entry_points(group=ENTRY_POINT_GROUP, name=hook_point):
        label = f"{ep.value} ({ep.dist.name if ep.dist else 'unknown distribution'})"
        try:
            target = ep.load()
            found.append((label, target() if isinstance(target, type) else target))
        except Exception:
            # A hook that cannot load must not stop the service; say which one and why.
            log.exception("hook %s for %s failed to load; skipping it", label, hook_point)
    if found:
        log.info("hook point %s: %s", hook_point, ", ".join(name for name, _ in found))
    return found


def _call(hook_point: str, name: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    try:
        method(*args, **kwargs)
    except FatalHookError:
        log.error("hook %s raised a fatal error at %s; stopping the call", name, hook_point)
        raise
    except Exception:
        log.exception("hook %s failed at %s; carrying on", name, hook_point)


def add_hook(hook_point: str) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorator: make the function the hook point ``hook_point``."""

    def decorate(func: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(func)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            hooks = hooks_for(hook_point)
            for name, hook in hooks:
                pre = getattr(hook, "pre", None)
                if pre is not None:
                    _call(hook_point, name, pre, *args, **kwargs)
            rv = func(*args, **kwargs)
            for name, hook in hooks:
                post = getattr(hook, "post", None)
                if post is not None:
                    _call(hook_point, name, post, rv, *args, **kwargs)
            return rv

        wrapper.__hook_point__ = hook_point  # type: ignore[attr-defined]
        return wrapper

    return decorate
