"""The threads that parse untrusted SAML XML, each retired after a budget of input bytes.

libxml2, through lxml, keeps one dictionary of element and attribute names per thread and never
shrinks it. A long-lived thread that parses attacker XML full of new names grows without bound
(measured: a worker thread passed 900 MB after 600 crafted 0.6 MB responses posted to the ACS,
which needs no sign-in). The dictionary is freed with its thread, so responses are validated on a
few dedicated threads, and a thread that has parsed `retire_after_bytes` hands over to a fresh
one and ends. Growth is then bounded per thread by the budget plus one response; a legitimate
response (~5-10 KB) retires a thread every few thousand sign-ins, for the price of one thread
start and one schema compile.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")

RETIRE_AFTER_BYTES = 16 * 1024 * 1024
THREADS = 4
"""Validations at once per process: a slow (large) response holds one thread, not all."""


class RetiringThreads:
    """A small thread pool whose threads end after parsing `retire_after_bytes` in all.

    Threads start on first use (in the process that uses them: after a server's fork)."""

    def __init__(
        self, *, threads: int = THREADS, retire_after_bytes: int = RETIRE_AFTER_BYTES
    ) -> None:
        self._threads = threads
        self._budget = retire_after_bytes
        self._tasks: queue.SimpleQueue[tuple[Callable[[], Any], int, Future[Any]]] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._local = threading.local()
        """`spent`: bytes a thread of this pool has parsed (unset on other threads)."""
        self._started = False
        self.retired = 0
        """Threads retired so far (for tests and curiosity)."""

    def run(self, task: Callable[[], T], *, cost: int) -> T:
        """Run `task` on one of the threads and return its result (or raise its exception);
        `cost` is the number of untrusted bytes it parses. Already on one of them (a request
        that `run_async` put here), it runs in place, counted against this thread's budget."""
        if getattr(self._local, "spent", None) is not None:
            self._local.spent += cost
            return task()
        return self._submit(task, cost).result()

    async def run_async(self, task: Callable[[], T]) -> T:
        """Run `task` on one of the threads without blocking the event loop: for a request
        whose work parses untrusted XML through `run`, so it needs no second thread hop."""
        return await asyncio.wrap_future(self._submit(task, 0))

    def _submit(self, task: Callable[[], T], cost: int) -> Future[T]:
        if not self._started:
            self._start()
        future: Future[T] = Future()
        self._tasks.put((task, cost, future))
        return future

    def _start(self) -> None:
        with self._lock:
            if self._started:
                return
            for _ in range(self._threads):
                self._spawn()
            self._started = True

    def _spawn(self) -> None:
        threading.Thread(target=self._work, name="deskgate-saml-untrusted", daemon=True).start()

    def _work(self) -> None:
        self._local.spent = 0
        while self._local.spent < self._budget:
            task, cost, future = self._tasks.get()
            if not future.set_running_or_notify_cancel():
                continue
            self._local.spent += cost
            try:
                future.set_result(task())
            except BaseException as problem:  # handed to the caller, who re-raises it
                future.set_exception(problem)
        with self._lock:
            self.retired += 1
        self._spawn()  # this thread ends here, and its parser dictionary with it


validation_threads = RetiringThreads()
"""The process's threads for validating responses posted to the ACS."""
