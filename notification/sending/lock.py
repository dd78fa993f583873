"""The Redis lock that keeps two scheduled batch runs from overlapping.

Non-blocking: a run that finds the lock taken exits at once (and says so).
Its timeout is longer than any batch can take (the RQ job timeout), so a worker
that dies holding it only delays the schedule, never blocks it forever.

Overlap protection is about pacing and tidiness only: exactly-once sending
comes from the row claims, so manual concurrent workers may skip the lock.
"""

from collections.abc import Iterator
from contextlib import contextmanager, suppress

from django.conf import settings
from redis import Redis
from redis.exceptions import LockError

from notification.conf import app_settings

BATCH_LOCK_NAME = "sms:send-batch:lock"


def sms_job_timeout() -> int:
    """Seconds a batch job may run: the RQ job timeout of the sms queue.

    The scheduled job is registered with it, and the lock lasts as long (a batch
    cannot outlive its job).
    """
    queue = settings.RQ_QUEUES.get(app_settings.SMS_QUEUE_NAME, {})
    return int(queue.get("DEFAULT_TIMEOUT", 900))


@contextmanager
def batch_lock(connection: Redis, timeout: int | None = None) -> Iterator[bool]:
    """Yield True when this run holds the lock, False when another run does."""
    lock = connection.lock(BATCH_LOCK_NAME, timeout=timeout or sms_job_timeout(), blocking=False)
    acquired = lock.acquire(blocking=False)
    try:
        yield acquired
    finally:
        if acquired:
            # Expired and taken over by another run: nothing of ours to release.
            with suppress(LockError):
                lock.release()
