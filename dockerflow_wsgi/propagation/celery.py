"""Celery: tasks published during a request carry its id, and run with it.

.. code-block:: python

    from celery import Celery
    from dockerflow_wsgi.propagation import install_celery_request_id

    app = Celery("myservice")
    install_celery_request_id()

The id travels in the task message's headers (task protocol 2, Celery's default): under
:data:`TASK_HEADER`, and the request id header's name under :data:`TASK_HEADER_NAME` when the
middleware uses another one than ``X-Request-ID``. The worker makes them current while the task
runs, as the middleware does while a request is handled: the worker's log records get ``rid``
from :class:`~dockerflow_wsgi.logging.RequestIdLogFilter`, and the task passes the same id on
to the services it calls and the tasks it publishes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from celery import signals

from ..options import is_header_name
from ..request_id import (
    DEFAULT_REQUEST_ID_HEADER,
    current_request_id,
    current_request_id_header,
    is_valid_request_id,
    request_id_header_var,
    request_id_var,
)

if TYPE_CHECKING:
    from contextvars import Token

    from celery import Task

__all__ = ["TASK_HEADER", "TASK_HEADER_NAME", "install_celery_request_id"]

#: The task message header holding the id of the request that published the task.
TASK_HEADER = "dockerflow_request_id"
#: The task message header holding the name of that request's id header, when it is not
#: ``X-Request-ID``: the name the task passes the id on under.
TASK_HEADER_NAME = "dockerflow_request_id_header"

# Where a task's run keeps the tokens that put the context back when it ends: on the task's
# request context, which Celery pushes for each run (nested eager runs included) and pops after
# task_postrun.
_TOKENS = "_dockerflow_request_id_tokens"

# Celery keeps one receiver per uid: installing again, even from a reloaded module, replaces none.
_DISPATCH_UID = "dockerflow_wsgi.propagation.celery"


def install_celery_request_id() -> None:
    """Pass the request id on to Celery tasks, in this process.

    Call it where the Celery application is made, so that both the processes publishing tasks
    (the web servers) and the workers running them do. Celery's signals are the process's, not
    an application's, so this serves every Celery application of the process; calling it again
    changes nothing.

    * A task published while a request is handled carries its id, unless the call set the
      :data:`~dockerflow_wsgi.propagation.celery.TASK_HEADER` header itself
      (``apply_async(headers=...)``). A task published outside a request (by celery beat, a
      management command) carries nothing.
    * The worker makes the id current for the task's run, so its log records have ``rid`` and
      :func:`~dockerflow_wsgi.current_request_id` returns it. A task that carries no id, or one
      that is not safe to log (the middleware's rule), runs without one.
    * A task run in the publishing process (``task_always_eager``, ``task.apply()``) keeps the
      id of the request it runs in.
    """
    signals.before_task_publish.connect(
        _add_request_id_headers, weak=False, dispatch_uid=_DISPATCH_UID
    )
    signals.task_prerun.connect(_enter_request_id, weak=False, dispatch_uid=_DISPATCH_UID)
    signals.task_postrun.connect(_leave_request_id, weak=False, dispatch_uid=_DISPATCH_UID)


def _add_request_id_headers(headers: Optional[dict[str, Any]] = None, **_: Any) -> None:
    """``before_task_publish``: ``headers`` are the message's own, which the worker turns into
    the attributes of ``task.request``."""
    request_id = current_request_id()
    if request_id is None or headers is None or TASK_HEADER in headers:
        return
    headers[TASK_HEADER] = request_id
    header = current_request_id_header()
    if header != DEFAULT_REQUEST_ID_HEADER:
        headers[TASK_HEADER_NAME] = header


def _enter_request_id(task: Optional[Task] = None, **_: Any) -> None:
    """``task_prerun``: make the task's id current for its run.

    A message can come from any producer, so its id is trusted only in the form the middleware
    accepts from a client. Without one, the context is left as it is: an eager run keeps the id
    of the request it runs in.
    """
    if task is None:
        return
    request = task.request
    request_id = getattr(request, TASK_HEADER, None)
    if not isinstance(request_id, str) or not is_valid_request_id(request_id):
        return
    header = getattr(request, TASK_HEADER_NAME, None)
    header_token = request_id_header_var.set(header) if is_header_name(header) else None
    setattr(request, _TOKENS, (request_id_var.set(request_id), header_token))


def _leave_request_id(task: Optional[Task] = None, **_: Any) -> None:
    """``task_postrun`` (sent whatever the outcome): put the context back as it was before the
    run, so the next task the worker runs starts without this one's id."""
    if task is None:
        return
    tokens: Optional[tuple[Token[Optional[str]], Optional[Token[str]]]]
    tokens = vars(task.request).pop(_TOKENS, None)
    if tokens is None:
        return
    id_token, header_token = tokens
    if header_token is not None:
        request_id_header_var.reset(header_token)
    request_id_var.reset(id_token)
