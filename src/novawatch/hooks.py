"""Hook points: named places where deployer code runs before and after a novawatch function.

A function becomes the hook point NAME with ``@add_hook(NAME)``. A hook is any object with
``pre(*args, **kwargs)`` and/or ``post(rv, *args, **kwargs)``. Hooks come from the entry point
group ``novawatch.hooks`` (the entry point's name is the hook point's name; it may name a class,
instantiated without arguments, or an object) and from :func:`register` in code.

Hooks written for Nova run unchanged: a hook point that corresponds to one of Nova's
(``@add_hook(NAME, nova=NovaHookPoint(NOVA_NAME, arguments))``) also loads the entry points named
NOVA_NAME of Nova's group ``nova.hooks``, as Nova did (stevedore's ``HookManager``, each plugin called
on load), and calls them with the arguments Nova passed, which ``arguments`` makes from novawatch's.

A hook that raises :class:`FatalHookError` (or Nova's ``FatalHookException``) stops the hooked call;
any other exception from a hook is logged with the hook's name and the call goes on, so a broken hook
cannot break the service.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, ParamSpec, Protocol, TypeVar

log = logging.getLogger("novawatch.hooks")

ENTRY_POINT_GROUP = "novawatch.hooks"
#: Nova's entry point group: hooks written for Nova.
NOVA_ENTRY_POINT_GROUP = "nova.hooks"
#: Called with (instance, network_info) whenever an instance's network info cache changes.
NW_INFO_HOOK = "update_instance_cache_with_nw_info"
#: Nova's name of the same hook point (the network-info spec's ``@hooks.add_hook('instance_network_info')``).
NOVA_NW_INFO_HOOK = "instance_network_info"

#: Turns the hooked function's arguments into the (args, kwargs) Nova passed to its hooks.
NovaArguments = Callable[..., tuple[tuple[Any, ...], dict[str, Any]]]


@dataclass(frozen=True)
class NovaHookPoint:
    """The Nova hook point a novawatch hook point corresponds to: its name and Nova's arguments."""

    name: str
    arguments: NovaArguments

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
_loaded_nova: dict[str, list[tuple[str, Any]]] = {}
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
        _loaded_nova.clear()


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


def nova_hooks_for(nova_name: str) -> list[tuple[str, Any]]:
    """(name, hook) pairs of Nova's hook point ``nova_name``: entry points of the ``nova.hooks`` group."""
    with _lock:
        if nova_name not in _loaded_nova:
            _loaded_nova[nova_name] = _load_nova(nova_name)
        return _loaded_nova[nova_name]


def _load_nova(nova_name: str) -> list[tuple[str, Any]]:
    # As Nova's HookManager did: stevedore finds the entry points named ``nova_name`` and calls each
    # plugin on load (a class is instantiated without arguments).
    from stevedore.hook import HookManager

    def failed(manager: Any, ep: Any, exc: BaseException) -> None:
        # A hook that cannot load must not stop the service; say which one and why.
        log.error("hook %s (%s) for %s failed to load; skipping it: %s: %s", ep.value, NOVA_ENTRY_POINT_GROUP,
                  nova_name, type(exc).__name__, exc)

    manager = HookManager(NOVA_ENTRY_POINT_GROUP, nova_name, invoke_on_load=True, on_load_failure_callback=failed)
    found = []
    for ext in manager.extensions:
        # stevedore's cached entry points carry no distribution: the hook is named by its target.
        found.append((f"{ext.entry_point.value} ({NOVA_ENTRY_POINT_GROUP})", ext.obj))
    if found:
        log.info("Nova hook point %s: %s", nova_name, ", ".join(name for name, _ in found))
    return found


def _fatal(exc: BaseException) -> bool:
    # Nova's own FatalHookException, whose module (nova.hooks) novawatch does not provide, is told by name.
    return isinstance(exc, FatalHookError) or type(exc).__name__ == "FatalHookException"


def _call(hook_point: str, name: str, method: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    try:
        method(*args, **kwargs)
    except Exception as exc:
        if not _fatal(exc):
            log.exception("hook %s failed at %s; carrying on", name, hook_point)
            return
        log.error("hook %s raised a fatal error at %s; stopping the call", name, hook_point)
        if isinstance(exc, FatalHookError):
            raise
        raise FatalHookError(str(exc)) from exc


def add_hook(hook_point: str, nova: NovaHookPoint | None = None) -> Callable[[Callable[_P, _R]], Callable[_P, _R]]:
    """Decorator: make the function the hook point ``hook_point`` (and, with ``nova``, Nova's hook point too)."""

    def decorate(func: Callable[_P, _R]) -> Callable[_P, _R]:
        @functools.wraps(func)
        def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            hooks = hooks_for(hook_point)
            nova_hooks = nova_hooks_for(nova.name) if nova is not None else []
            nova_args: tuple[Any, ...] = ()
            nova_kwargs: dict[str, Any] = {}
            if nova_hooks:
                assert nova is not None
                nova_args, nova_kwargs = nova.arguments(*args, **kwargs)
            for name, hook in hooks:
                pre = getattr(hook, "pre", None)
                if pre is not None:
                    _call(hook_point, name, pre, *args, **kwargs)
            for name, hook in nova_hooks:
                pre = getattr(hook, "pre", None)
                if pre is not None:
                    _call(hook_point, name, pre, *nova_args, **nova_kwargs)
            rv = func(*args, **kwargs)
            for name, hook in hooks:
                post = getattr(hook, "post", None)
                if post is not None:
                    _call(hook_point, name, post, rv, *args, **kwargs)
            for name, hook in nova_hooks:
                post = getattr(hook, "post", None)
                if post is not None:
                    _call(hook_point, name, post, rv, *nova_args, **nova_kwargs)
            return rv

        wrapper.__hook_point__ = hook_point  # type: ignore[attr-defined]
        return wrapper

    return decorate
