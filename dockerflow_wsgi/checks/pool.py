"""A small bounded pool of daemon threads for running checks.

``concurrent.futures.ThreadPoolExecutor`` joins its threads when the interpreter exits, so a
check that never returns would keep a worker process from ever shutting down. These threads
are daemons: a stuck check costs one thread, never a hung shutdown. Threads start only when
work needs one and stay for reuse, up to ``max_workers``.
"""

from __future__ import annotations

import functools
import itertools
import queue
import threading
from concurrent.futures import Future
from typing import Any, Callable, TypeVar

from .process_local import ProcessLocal

__all__ = ["DaemonThreadPool"]

_T = TypeVar("_T")
_pool_numbers = itertools.count(1)


class DaemonThreadPool(ProcessLocal):
    """Run callables on at most ``max_workers`` reusable daemon threads.

    It is fork-aware: a process forked after the pool started (gunicorn with ``--preload``,
    uWSGI without ``lazy-apps``) gets a fresh, empty pool instead of a queue that no thread of
    its own serves.
    """

    def __init__(self, max_workers: int, name: str = "dockerflow-check") -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.max_workers = max_workers
        self.name = f"{name}-{next(_pool_numbers)}"
        self._fresh()

    def _start_fresh(self) -> None:
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []

    @property
    def thread_count(self) -> int:
        """Threads started by this pool in this process."""
        self._fresh()
        return len(self._threads)

    def submit(self, fn: Callable[..., _T], *args: Any) -> Future[_T]:
        """Schedule ``fn(*args)`` and return its future."""
        future: Future[_T] = Future()
        self._fresh()
        with self._lock:
            self._queue.put((future, fn, args))
            # An idle thread will take the work; otherwise start one, if the bound allows.
            if not self._idle.acquire(blocking=False) and len(self._threads) < self.max_workers:
                thread = threading.Thread(
                    target=self._work,
                    args=(self._queue, self._idle),
                    name=f"{self.name}-{len(self._threads) + 1}",
                    daemon=True,
                )
                thread.start()
                self._threads.append(thread)
        return future

    @staticmethod
    def _work(work: queue.SimpleQueue[Any], idle: threading.Semaphore) -> None:
        while True:
            future, fn, args = work.get()
            if not future.set_running_or_notify_cancel():
                idle.release()
                continue
            try:
                result = fn(*args)
            except BaseException as exc:
                settle = functools.partial(future.set_exception, exc)
            else:
                settle = functools.partial(future.set_result, result)
            del future, fn, args
            # Idle before the future is done: whoever it wakes may submit more work at once,
            # which this thread then takes instead of a new one being started.
            idle.release()
            settle()
            del settle
