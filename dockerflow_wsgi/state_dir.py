"""The folder the processes of one pod share (``state_dir``): where the drain mark is, and the
shared heartbeat's lease and result.

Every process of a pod that serves through this library, and the ``dockerflow-wsgi drain``
command run beside them, agree on one folder: ``DOCKERFLOW_STATE_DIR``, else
``dockerflow-<uid>`` in the system's temporary directory. The default folder lies in a
directory every local user may write to, so it is used only when this user owns it and no other
may write to it: anyone else's folder of that name could hold a mark that drains the service.
"""

from __future__ import annotations

import logging
import os
import stat
import tempfile
import threading

__all__ = ["default_state_dir", "prepare_state_dir"]

logger = logging.getLogger("dockerflow_wsgi")

# The folders this process has prepared (and warned about, at most once each), by path.
_prepared: dict[str, bool] = {}
_prepared_lock = threading.Lock()


def _user() -> str:
    """This user, for the default folder's name: the uid, or the login name where there is no
    uid (Windows)."""
    getuid = getattr(os, "getuid", None)
    if getuid is not None:
        return str(getuid())
    import getpass

    return getpass.getuser()


def default_state_dir() -> str:
    """``dockerflow-<uid>`` in the system's temporary directory (``tempfile.gettempdir()``)."""
    return os.path.join(tempfile.gettempdir(), f"dockerflow-{_user()}")


def _problem(path: str) -> str | None:
    """Why ``path`` cannot be this process's state folder, or ``None`` when it can: made if
    absent, a folder this process may write in, and, for the default folder, this user's own."""
    try:
        os.makedirs(path, mode=0o700, exist_ok=True)
        info = os.stat(path)
    except OSError as exc:
        return f"{exc.strerror or exc}"
    if not stat.S_ISDIR(info.st_mode):
        return "it is not a folder"
    if path == default_state_dir() and hasattr(os, "getuid"):
        if info.st_uid != os.getuid():
            return "another user owns it"
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            return "other users may write to it"
    if not os.access(path, os.W_OK | os.X_OK):
        return "this process may not write to it"
    return None


def prepare_state_dir(path: str) -> bool:
    """Make ``path`` if it is absent and say whether this process can use it; when it cannot,
    log one WARNING saying why (one per folder per process, however many middlewares ask).

    A service whose folder cannot be used serves as before: it only cannot be drained through
    the folder, and each of its processes runs its own checks.
    """
    with _prepared_lock:
        usable = _prepared.get(path)
        if usable is None:
            problem = _problem(path)
            usable = _prepared[path] = problem is None
            if problem is not None:
                logger.warning(
                    "state_dir %s cannot be used (%s): this process will not see a drain mark "
                    "there, nor share heartbeat runs; set DOCKERFLOW_STATE_DIR to a folder of "
                    "its own",
                    path,
                    problem,
                )
    return usable
