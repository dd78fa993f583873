"""Waiting for a condition another thread or process makes true, with a deadline.

The condition is the signal (a request logged by the emulator, a row written, a
Redis key gone); the short pause between checks only paces the polling.
"""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
POLL_SECONDS = 0.02
#: How long a server process the tests start (uvicorn, the emulator) may take to be
#: ready. A deadline reached only when something is wrong: no test asserts how fast
#: a server starts, and on a loaded 2-core machine running ``tests.run``'s passes
#: side by side, starting a Django process took over 30 s (the old deadline).
STARTUP_TIMEOUT_SECONDS = 120.0


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
