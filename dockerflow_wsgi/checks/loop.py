"""One background event loop per process, for ``async def`` checks run under WSGI.

A WSGI server has no event loop of its own; an async check is awaited on a loop that runs on a
daemon thread, started at the first async check and made anew in a forked process (its
thread does not survive the fork).
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from typing import Any, Optional, TypeVar

from .process_local import ProcessLocal

__all__ = ["BackgroundLoop", "background_loop"]

_T = TypeVar("_T")


class BackgroundLoop(ProcessLocal):
    """An event loop on a daemon thread, started when first needed, one per process."""

    def _start_fresh(self) -> None:
        self._lock = threading.Lock()
        self._loop: Optional[asyncio.AbstractEventLoop] = None

    def submit(
        self, coroutine: Coroutine[Any, Any, _T], context: contextvars.Context
    ) -> Future[_T]:
        """Run ``coroutine`` on the loop, in ``context``; its result as a thread-safe future."""
        self._fresh()
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(
                    target=self._loop.run_forever, name="dockerflow-async-checks", daemon=True
                ).start()
            loop = self._loop
        # The task is made in the loop's thread from a callback that runs in ``context``, and
        # a task copies the context it is made in: the check sees the request's context.
        return context.run(asyncio.run_coroutine_threadsafe, coroutine, loop)


#: The loop of this process.
background_loop = BackgroundLoop()
