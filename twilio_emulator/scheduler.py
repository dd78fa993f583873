"""One thread that runs small callables at given monotonic times.

Status changes (sent, delivered, ...) are due at computed instants; a heap and a
condition variable serve thousands of them with one thread instead of a timer
thread per message. Callables must be quick: slow work (HTTP callbacks) is handed
on to the callback sender's workers.
"""

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)


class Scheduler:
    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._order = itertools.count()
        self._condition = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="emulator-scheduler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def call_at(self, when: float, action: Callable[[], None]) -> None:
        with self._condition:
            heapq.heappush(self._heap, (when, next(self._order), action))
            self._condition.notify()

    def clear(self) -> None:
        with self._condition:
            self._heap.clear()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopping:
                    if self._heap:
                        wait = self._heap[0][0] - time.monotonic()
                        if wait <= 0:
                            break
                        self._condition.wait(wait)
                    else:
                        self._condition.wait()
                if self._stopping:
                    return
                _, _, action = heapq.heappop(self._heap)
            try:
                action()
            except Exception:
                logger.exception("Emulator scheduled action failed")
