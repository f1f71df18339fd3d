"""Finding the Dockerflow adapter an application already has, whatever wraps it.

The command's ``--app`` (its options and checks) and the Flask shim (an app wrapped by hand is
not wrapped again) both ask "which Dockerflow serves this application?". The answer does not
depend on the protocol: every adapter, the WSGI and ASGI middleware as the Sanic integration,
holds a :class:`~dockerflow_wsgi.core.DockerflowCore` at ``core``, and this module looks for
that through the wrappings each framework makes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Optional, Protocol

from .asgi import DockerflowASGIMiddleware
from .core import DockerflowCore

__all__ = ["ServesDockerflow", "find_middleware", "readable_attribute"]

# Attributes under which wrappers keep what they wrap: Flask's app.wsgi_app, the ``app`` /
# ``application`` of most middleware (ours, werkzeug's ProxyFix, whitenoise, Starlette's), and
# the middleware stack a Starlette or FastAPI application builds on its first call.
_WRAPPED_ATTRIBUTES = ("wsgi_app", "app", "application", "middleware_stack")
# Enough for a Starlette stack (the app, its error middleware, a few of the user's) above ours.
_WRAPPER_DEPTH = 6


class ServesDockerflow(Protocol):
    """A Dockerflow adapter: the WSGI or ASGI middleware, or a framework integration."""

    core: DockerflowCore


def find_middleware(app: Any) -> Optional[ServesDockerflow]:
    """The Dockerflow adapter that is ``app`` or that ``app`` wraps, if any.

    Looks breadth-first through a few layers of wrappers, so the outermost adapter wins, as it
    is the one that answers the Dockerflow paths. Besides the usual wrapper attributes it
    follows the Flask shim (``app.extensions["dockerflow"]``, which finds the middleware also
    when ``wsgi_app`` was wrapped again after the shim) and the Sanic integration
    (``app.ctx.dockerflow``). A Starlette or FastAPI application that has not served yet holds
    only the list ``add_middleware`` filled: its :class:`DockerflowASGIMiddleware` is built
    from that entry's options, as the application will build it on its first call.

    :raises ValueError: for an unbuilt ASGI middleware whose options are invalid.
    """
    seen: set[int] = set()
    layer = [app]
    for _ in range(_WRAPPER_DEPTH + 1):
        below: list[Any] = []
        for obj in layer:
            if obj is None or id(obj) in seen:
                continue
            seen.add(id(obj))
            if isinstance(readable_attribute(obj, "core"), DockerflowCore):
                return obj  # type: ignore[no-any-return]
            below.extend(_wrapped_by(obj))
        layer = below
    return None


def _wrapped_by(obj: Any) -> Iterator[Any]:
    """What ``obj`` may wrap, a framework's own record of its Dockerflow first."""
    extensions = readable_attribute(obj, "extensions")
    if isinstance(extensions, Mapping):
        yield readable_attribute(extensions.get("dockerflow"), "middleware")
    yield readable_attribute(readable_attribute(obj, "ctx"), "dockerflow")
    for name in _WRAPPED_ATTRIBUTES:
        yield readable_attribute(obj, name)
    if readable_attribute(obj, "middleware_stack") is None:
        yield from _unbuilt_asgi_middleware(readable_attribute(obj, "user_middleware"))


def _unbuilt_asgi_middleware(entries: Any) -> Iterator[DockerflowASGIMiddleware]:
    """A :class:`DockerflowASGIMiddleware` for each of Starlette's ``Middleware`` entries
    (``cls``, ``args``, ``kwargs``) that names it, built around an application that is never
    called: only its options and checks are wanted."""
    if not isinstance(entries, list):
        return
    for entry in entries:
        cls = readable_attribute(entry, "cls")
        if isinstance(cls, type) and issubclass(cls, DockerflowASGIMiddleware):
            args = readable_attribute(entry, "args") or ()
            kwargs = readable_attribute(entry, "kwargs") or {}
            yield cls(_never_called, *args, **kwargs)


async def _never_called(scope: Any, receive: Any, send: Any) -> None:
    """The application of a middleware built only to read its options."""
    raise RuntimeError("a middleware found for its options does not serve requests")


def readable_attribute(obj: Any, name: str) -> Any:
    """``obj.name``, or ``None`` when it is missing or cannot be read."""
    # Arbitrary objects (proxies, lazy settings) may raise anything from attribute access.
    try:
        return getattr(obj, name, None)
    except Exception:
        return None
