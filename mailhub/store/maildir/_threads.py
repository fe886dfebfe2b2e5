"""A lean pool of threads for the delivery path's blocking calls (file writes, commits).

Why not ``asyncio.to_thread``/``ThreadPoolExecutor``: every call through them builds a
``concurrent.futures.Future`` whose locking (``threading.Condition``, the executor's
semaphore) is Python code run under the GIL, then chains it to an asyncio future. With ten
senders every message pays that two or three times, and the GIL is what the event loop waits
for (profiled with ``py-spy --gil`` under ``bench/ingest.py``). Here a job is one tuple on a
C-implemented ``queue.SimpleQueue``, and its result goes back with one
``call_soon_threadsafe``.

The threads are daemons started on first use: a process exiting in the middle of a write
leaves at most a file in ``tmp/``, which was never acknowledged and which the next open of the
folder removes (``_fs.sweep_tmp``).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[
    asyncio.AbstractEventLoop,
    "asyncio.Future[Any]",
    Callable[[], Any],
    Callable[[Any], None] | None,
]


class ThreadRunner:
    """Runs blocking callables on up to ``size`` threads; ``run`` returns an asyncio future."""

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._lock = threading.Lock()

    def run(
        self,
        call: Callable[[], T],
        *,
        orphan: Callable[[T], None] | None = None,
    ) -> asyncio.Future[T]:
        """Run ``call()`` on a thread. ``orphan(result)`` runs (on the loop) when the call
        succeeded but its future was cancelled meanwhile: the caller is gone, so whatever
        the call made must be undone by someone."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            # A thread waiting for work takes this job; otherwise start one, up to the limit.
            if self._idle <= self._jobs.qsize() and len(self._threads) < self._size:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}_{len(self._threads)}", daemon=True
                )
                self._threads.append(thread)
                thread.start()
        self._jobs.put((loop, future, call, orphan))
        return future

    def _work(self) -> None:
        while True:
            with self._lock:
                self._idle += 1
            loop, future, call, orphan = self._jobs.get()
            with self._lock:
                self._idle -= 1
            try:
                result = call()
            except BaseException as exc:  # handed to the waiting coroutine
                _deliver(loop, _fail, future, exc)
            else:
                _deliver(loop, _succeed, future, (result, orphan))
            del loop, future, call, orphan


def _deliver(loop: asyncio.AbstractEventLoop, fn: Callable[..., None], *args: Any) -> None:
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(fn, *args)


_Outcome = tuple[Any, Callable[[Any], None] | None]


def _succeed(future: asyncio.Future[Any], outcome: _Outcome) -> None:
    result, orphan = outcome
    if future.cancelled():
        if orphan is not None:
            orphan(result)
        return
    future.set_result(result)


def _fail(future: asyncio.Future[Any], exc: BaseException) -> None:
    if not future.cancelled():
        future.set_exception(exc)
