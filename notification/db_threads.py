"""The status webhook's database work: a few long-lived threads that keep their connection.

Django's ORM is synchronous, so the async status view runs its database work
in a thread (one hop per callback). The threads here live as long as the
process, and so do their connections: re-opening one per callback is pure cost
(a file open on SQLite, a TCP and authentication handshake on PostgreSQL) that
showed up prominently in the webhook's profile (README, "Profiling notes").
That is why ``CONN_MAX_AGE=0`` (the SQLite setting) is not applied to these
threads; a positive ``CONN_MAX_AGE`` still bounds the connection's age, and a
connection that saw an error and no longer answers is replaced before the next
call, as ``close_old_connections`` would do.

How many threads: one on SQLite, where writers take turns on the file lock
anyway (more threads only add lock waits, whose busy-wait sleeps cost
latency), a few on PostgreSQL so that one callback's round trips overlap with
another's.
"""

import asyncio
import contextvars
import functools
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections

P = ParamSpec("P")
R = TypeVar("R")

POSTGRES_THREADS = 4

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_threads = 0


def _thread_count() -> int:
    return 1 if connections[DEFAULT_DB_ALIAS].vendor == "sqlite" else POSTGRES_THREADS


def _get_executor() -> tuple[ThreadPoolExecutor, int]:
    global _executor, _threads
    with _lock:
        if _executor is None:
            _threads = _thread_count()
            _executor = ThreadPoolExecutor(max_workers=_threads, thread_name_prefix="webhook-db")
        return _executor, _threads


def _replace_if_unusable() -> None:
    """``close_if_unusable_or_obsolete`` without treating ``CONN_MAX_AGE=0`` as "obsolete"."""
    for conn in connections.all(initialized_only=True):
        if conn.connection is None:
            continue
        if conn.in_atomic_block or conn.get_autocommit() != conn.settings_dict["AUTOCOMMIT"]:
            conn.close()  # left mid-transaction by a bug: never reuse that state
            continue
        if conn.errors_occurred:
            if not conn.is_usable():
                conn.close()
                continue
            conn.errors_occurred = False
        max_age = conn.settings_dict["CONN_MAX_AGE"]
        if max_age and conn.close_at is not None and time.monotonic() >= conn.close_at:
            conn.close()


def _call(func: Callable[..., R], *args: object) -> R:
    _replace_if_unusable()
    try:
        return func(*args)
    finally:
        _replace_if_unusable()


async def run_in_db_thread(func: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> R:
    """Run ``func(*args, **kwargs)`` in a webhook database thread and await its result."""
    executor, _ = _get_executor()
    context = contextvars.copy_context()
    call = functools.partial(context.run, _call, functools.partial(func, *args, **kwargs))
    return await asyncio.get_running_loop().run_in_executor(executor, call)


def close_connections() -> None:
    """Close the threads' connections (tests: before the test database is dropped).

    Each thread must close its own connection, so one task per thread is
    queued; the barrier keeps a thread from taking two of them.
    """
    with _lock:
        executor, threads = _executor, _threads
    if executor is None:
        return
    barrier = threading.Barrier(threads)

    def close_mine() -> None:
        connections.close_all()
        barrier.wait(timeout=10)

    for future in [executor.submit(close_mine) for _ in range(threads)]:
        future.result(timeout=15)
