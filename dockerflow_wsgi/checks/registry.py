"""The process-wide registry of health checks that ``@register`` fills.

The middleware reads it at every heartbeat, so a check registered by a module imported after
the middleware was built is still run.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Iterable
from typing import Any, Callable, Optional, TypeVar, overload

from .messages import CheckMessage

__all__ = [
    "Check",
    "CheckSource",
    "clear_checks",
    "get_check_sources",
    "get_checks",
    "register",
    "register_check_source",
    "register_partial",
]

Check = Callable[[], "list[CheckMessage]"]
#: Returns ``(name, check)`` pairs; called at each heartbeat run.
CheckSource = Callable[[], Iterable[tuple[str, Check]]]
_F = TypeVar("_F", bound=Callable[..., Any])

_registry: dict[str, Check] = {}
_sources: dict[str, CheckSource] = {}
_lock = threading.Lock()


@overload
def register(func: _F, name: Optional[str] = None) -> _F: ...


@overload
def register(func: None = None, name: Optional[str] = None) -> Callable[[_F], _F]: ...


def register(func: Any = None, name: Optional[str] = None) -> Any:
    """Register a check, as ``@register``, ``@register(name="db")`` or ``register(fn)``.

    The name defaults to the function's name; registering a name again replaces the check.
    The function is returned unchanged.
    """

    def decorator(check: _F) -> _F:
        if not callable(check):
            raise TypeError(f"a check must be callable, got {check!r}")
        check_name = name or getattr(check, "__name__", None)
        if not check_name or not isinstance(check_name, str):
            raise ValueError(f"{check!r} has no __name__ that is a str; register it with name=")
        with _lock:
            _registry[check_name] = check
        return check

    if func is None:
        return decorator
    return decorator(func)


def register_partial(
    func: Callable[..., Any], *args: Any, name: Optional[str] = None, **kwargs: Any
) -> Check:
    """Register ``func(*args, **kwargs)`` as a check, e.g. a built-in check bound to its
    resource: ``register_partial(check_disk_space, "/data", error_below="5%")``.

    The name defaults to ``func``'s name. Returns the bound check. The arguments are checked
    now rather than at the first heartbeat: a missing or unknown one raises
    :class:`TypeError`, and a function with a ``check_arguments`` attribute (the built-ins
    that take thresholds or URLs) has it called with them first, whose :class:`ValueError`
    says what is wrong with a value.
    """
    _check_arguments(func, args, kwargs)
    check = functools.partial(func, *args, **kwargs)
    check_name = name or getattr(func, "__name__", None)
    functools.update_wrapper(check, func)  # type: ignore[arg-type]
    register(check, name=check_name)
    return check


def _check_arguments(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        signature = None  # a callable whose signature Python cannot tell: found out when run
    if signature is not None:
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"register_partial({_name(func)}, ...): {exc}") from None
    check_arguments = getattr(func, "check_arguments", None)
    if callable(check_arguments):
        check_arguments(*args, **kwargs)


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", None) or repr(func)


def get_checks() -> dict[str, Check]:
    """A snapshot of the registered checks, name to callable."""
    with _lock:
        return dict(_registry)


def clear_checks() -> None:
    """Forget every registered check (for tests and re-configuration)."""
    with _lock:
        _registry.clear()


def register_check_source(name: str, source: CheckSource) -> None:
    """Register a source of checks that a framework owns, under ``name`` (again: replaced).

    For integrations whose framework has checks of its own (Django's system checks): the
    source is called at each heartbeat run, so the checks it finds then are the ones run. A
    check it names like a registered check, an entry point or a built-in runs as
    ``<name of the source>.<its name>``.
    """
    with _lock:
        _sources[name] = source


def get_check_sources() -> list[tuple[str, CheckSource]]:
    """A snapshot of the registered check sources, with their names."""
    with _lock:
        return list(_sources.items())
