"""Waiting for a condition another thread or process makes true, with a deadline.

The condition is the signal (a request logged by the emulator, a row written, a
Redis key gone); the short pause between checks only paces the polling.
"""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLL_SECONDS = 0.02


def wait_until(condition: Callable[[], T], timeout: float = 10.0, what: str = "") -> T:
    """Return ``condition()``'s first truthy value; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or condition}")
        time.sleep(POLL_SECONDS)
