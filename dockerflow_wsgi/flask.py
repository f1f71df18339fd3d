"""The Flask shim: wrap ``app.wsgi_app`` once, the way a Flask extension does.

.. code-block:: python

    from dockerflow_wsgi.flask import Dockerflow

    dockerflow = Dockerflow(app)          # or Dockerflow() then dockerflow.init_app(app)

Beyond the middleware it only translates Flask: options also from ``app.config``, the request
id as ``g.request_id``, a view's exception (which Flask answers with a 500 page) reported to
the summary, the Flask-Login user as its ``uid``, and the app as the signals' sender.
"""

from __future__ import annotations

import importlib.util
import os
from typing import Any, Callable, Optional

from flask import Flask, current_app, g, got_request_exception, has_app_context, request
from flask.ctx import _AppCtxGlobals

from .config import FrameworkSettings
from .request_id import request_id_var
from .request_keys import EXC_INFO_KEY, ROUTE_KEY, USER_ID_KEY
from .wsgi import DockerflowMiddleware, find_middleware

__all__ = ["Dockerflow"]

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


def _globals_with_request_id(base: type) -> type:
    """A subclass of Flask's ``g`` class that starts with ``request_id`` already set.

    Flask makes a new ``g`` for every request's app context, inside the middleware's call,
    so copying the id when ``g`` is made costs one context-variable read and needs no work
    later. A view that sets ``g.request_id`` itself simply overwrites it. The id copied is
    also kept in a slot, outside ``g``'s namespace, for :func:`_request_id_into_kept_g`.
    """
    if getattr(base, "_dockerflow_request_id", False):
        return base

    if base.__init__ is object.__init__ and base.__setattr__ is _AppCtxGlobals.__setattr__:
        # Flask's own class (or one that keeps its construction and attribute setting):
        # nothing to call first, and its __setattr__ only stores into __dict__.
        class DockerflowGlobals(base):  # type: ignore[valid-type, misc]
            __slots__ = ("_dockerflow_copied_id",)
            _dockerflow_request_id = True

            def __init__(self) -> None:
                request_id = request_id_var.get()
                _set_copied_id(self, request_id)
                if request_id is not None:
                    self.__dict__["request_id"] = request_id

    else:

        class DockerflowGlobals(base):  # type: ignore[valid-type, misc, no-redef]
            __slots__ = ("_dockerflow_copied_id",)
            _dockerflow_request_id = True

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                request_id = request_id_var.get()
                _set_copied_id(self, request_id)
                if request_id is not None:
                    self.request_id = request_id

    DockerflowGlobals.__qualname__ = f"Dockerflow{base.__qualname__}"
    return DockerflowGlobals


def _set_copied_id(globals_: Any, request_id: Optional[str]) -> None:
    # Stored in the slot directly: g's own __setattr__ would put it in g's namespace.
    object.__setattr__(globals_, "_dockerflow_copied_id", request_id)


def _request_id_into_kept_g(wsgi_app: WSGIApp, app: Flask) -> WSGIApp:
    """``wsgi_app`` (Flask's, or a wrapper of it) for the middleware to call, first copying the
    request's id into a ``g`` made before the request.

    When an app context of ``app`` is already pushed (pytest-flask, and many test suites, push
    one around several requests), Flask serves the request with that context's ``g``, made
    outside any request, instead of a new one. Its ``request_id`` is replaced unless the app
    set it: what it holds counts as the app's unless it is absent or the id this shim copied
    there. For the usual request (no context pushed yet) this costs one call and one context
    lookup, where a ``before_request`` hook would cost Flask's hook machinery, several times
    as much, on every request.

    Before the app's first request (the last moment Flask takes a new hook), it also installs
    the hook that reports the Flask-Login user, if the app has a login manager by then: an app
    without one pays nothing for it.
    """
    login_checked = False

    def copy_request_id_then_call(environ: dict[str, Any], start_response: Any) -> Any:
        nonlocal login_checked
        if not login_checked:
            login_checked = True
            _report_login_user(app)
        # The middleware calls this with the request's id current.
        if has_app_context() and current_app._get_current_object() is app:
            globals_ = g._get_current_object()
            request_id = request_id_var.get()
            # A context pushed before init_app has a g of Flask's class, without the slot.
            copied = getattr(globals_, "_dockerflow_copied_id", None)
            if copied is not request_id and globals_.__dict__.get("request_id", copied) is copied:
                _set_copied_id(globals_, request_id)
                globals_.request_id = request_id
        return wsgi_app(environ, start_response)

    # find_middleware looks through wrappers by this name; init_app, for the app it serves.
    copy_request_id_then_call.wsgi_app = wsgi_app  # type: ignore[attr-defined]
    copy_request_id_then_call.dockerflow_flask_app = app  # type: ignore[attr-defined]
    return copy_request_id_then_call


def _report_login_user(app: Flask) -> None:
    """Report the Flask-Login user of each request to the summary, if ``app`` has a login
    manager (set up before or after this extension); once per app."""
    if getattr(app, "login_manager", None) is None or app.extensions.get(_LOGIN_HOOKED):
        return
    if _flask_login_installed():
        app.after_request(_user_id_recorder())
        app.extensions[_LOGIN_HOOKED] = True


#: The key in ``app.extensions`` saying the Flask-Login hook is installed.
_LOGIN_HOOKED = "dockerflow.flask_login"


def _flask_login_installed() -> bool:
    return importlib.util.find_spec("flask_login") is not None


def _user_id_recorder() -> Callable[[Any], Any]:
    """An ``after_request`` hook reporting the Flask-Login user to the summary."""
    from flask_login import current_user

    def record_user_id(response: Any) -> Any:
        try:
            if current_user.is_authenticated:
                request.environ[USER_ID_KEY] = str(current_user.get_id())
        except Exception:
            # The summary must not fail the request because a user loader did.
            pass
        return response

    return record_user_id


def _report_exception(sender: Flask, exception: BaseException, **extra: Any) -> None:
    """``got_request_exception``: the view raised, and Flask answers a 500 page itself.

    The middleware sees only that page; the exception goes to the summary through the environ.
    """
    request.environ[EXC_INFO_KEY] = (type(exception), exception, exception.__traceback__)
    # Flask raises it on to the server when it propagates exceptions (testing, debug), and
    # then starts no response, where the route is read otherwise.
    if request.url_rule is not None:
        request.environ.setdefault(ROUTE_KEY, request.url_rule.rule)


def flask_settings(app: Flask) -> FrameworkSettings:
    """``app.config`` as the options' source, with the ``dockerflow`` package's default for
    ``version_path``: the parent directory of ``app.root_path``."""
    return FrameworkSettings(
        app.config, "app.config[{!r}]", default_version_path=os.path.dirname(app.root_path)
    )


class Dockerflow:
    """Dockerflow for a Flask application, as a Flask extension.

    Each option comes from the keyword, else from ``app.config`` under its environment
    variable's name (``app.config["DOCKERFLOW_CHECK_TIMEOUT"]``), else from the environment;
    ``version_path`` defaults to the parent directory of ``app.root_path``.

    :param app: the Flask application; may be given later to :meth:`init_app`.
    :param options: options of :class:`~dockerflow_wsgi.DockerflowMiddleware`.
    """

    def __init__(self, app: Optional[Flask] = None, **options: Any) -> None:
        self.options = options
        self.middleware: Optional[DockerflowMiddleware] = None
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Wrap ``app.wsgi_app`` (unless it already is wrapped) and install the shim."""
        existing = find_middleware(app.wsgi_app)
        if existing is not None:
            self.middleware = existing
        else:
            self.middleware = DockerflowMiddleware.with_framework_settings(
                app.wsgi_app, flask_settings(app), **self.options
            )
            app.wsgi_app = self.middleware  # type: ignore[method-assign]
        if getattr(self.middleware.app, "dockerflow_flask_app", None) is not app:
            self.middleware.app = _request_id_into_kept_g(self.middleware.app, app)
        # heartbeat_failed.connect_via(app) is how a Flask user listens.
        self.middleware.core.sender = app
        app.app_ctx_globals_class = _globals_with_request_id(app.app_ctx_globals_class)
        if "dockerflow" not in app.extensions:
            got_request_exception.connect(_report_exception, app)
        app.extensions["dockerflow"] = self
