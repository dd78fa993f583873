"""A Redis outage as the long-running processes see it: one log line when it starts,
one when it ends, and a bounded backoff between reconnection attempts.

Without this the worker and the scheduler either died on the first
``ConnectionError`` (nothing sent until a person restarted them) or, where rq
already retries, logged a line per retry. ``RedisOutage`` is the one place that
says "Redis is gone" and "Redis is back"; ``RetryLogFilter`` silences rq's own
per-retry lines while an outage is already logged.
"""

import logging
import time
from collections.abc import Callable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

#: What an unreachable Redis raises (redis-py's ``BusyLoadingError`` while a
#: restarted Redis loads its data is a ``ConnectionError`` too).
REDIS_DOWN: tuple[type[Exception], ...] = (RedisConnectionError, RedisTimeoutError)

#: Longest wait between two reconnection attempts: how late, at most, a process
#: notices that Redis is back (the README's deployment section states it).
MAX_RECONNECT_SECONDS = 2.0
FIRST_RECONNECT_SECONDS = 0.1

logger = logging.getLogger("notification.processes")


class RedisOutage:
    """Tracks whether Redis is reachable for one process and logs each change once."""

    def __init__(self, process: str, log: logging.Logger = logger) -> None:
        self.process = process
        self.log = log
        self.down_since: float | None = None
        self.delay = FIRST_RECONNECT_SECONDS

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def lost(self, error: BaseException) -> None:
        """Redis failed: log it if this starts an outage (not on every retry)."""
        if self.down_since is None:
            self.down_since = time.monotonic()
            self.delay = FIRST_RECONNECT_SECONDS
            self.log.warning(
                'redis_outage process=%s state=lost error="%s" '
                "(reconnecting every %.0f s at most; work resumes when it is back)",
                self.process,
                error,
                MAX_RECONNECT_SECONDS,
            )

    def recovered(self) -> None:
        """Redis answered: log the end of the outage, if there was one."""
        if self.down_since is not None:
            seconds = time.monotonic() - self.down_since
            self.down_since = None
            self.log.warning(
                "redis_outage process=%s state=recovered after_s=%.1f", self.process, seconds
            )

    def backoff(self) -> float:
        """Sleep before the next attempt: doubling from 0.1 s up to ``MAX_RECONNECT_SECONDS``."""
        delay = self.delay
        time.sleep(delay)
        self.delay = min(MAX_RECONNECT_SECONDS, delay * 2)
        return delay

    def wait_until_up(self, ping: Callable[[], object], stop: Callable[[], bool]) -> bool:
        """Retry ``ping`` with backoff until it answers (True) or ``stop()`` (False)."""
        while not stop():
            try:
                ping()
            except REDIS_DOWN as error:
                self.lost(error)
                self.backoff()
                continue
            self.recovered()
            return True
        return False


class RetryLogFilter(logging.Filter):
    """Drops rq's "could not connect to Redis instance ... retrying" lines during an
    outage ``RedisOutage`` has already logged (rq logs one per retry)."""

    def __init__(self, outage: RedisOutage) -> None:
        super().__init__()
        self.outage = outage

    def filter(self, record: logging.LogRecord) -> bool:
        if "could not connect to Redis" in str(record.msg):
            error = record.args[1] if isinstance(record.args, tuple) and record.args else None
            self.outage.lost(error if isinstance(error, BaseException) else RuntimeError("-"))
            return False
        return True
