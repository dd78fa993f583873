"""A value recomputed at most once per period, shared by the threads of one process."""

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class TimedCache(Generic[T]):
    """``get(compute, seconds)``: the last value if younger than ``seconds``, else a new one.

    Concurrent callers wait for the one computing instead of computing too, so a
    flood of probes or scrapes costs one computation per period, whatever its size.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: T | None = None
        self._at = float("-inf")

    def get(self, compute: Callable[[], T], seconds: float) -> T:
        with self._lock:
            now = time.monotonic()
            if self._value is None or now - self._at >= seconds:
                self._value = compute()
                self._at = time.monotonic()
            return self._value

    def clear(self) -> None:
        with self._lock:
            self._value = None
