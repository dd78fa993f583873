"""The Redis lock that keeps two runs from overlapping.

Non-blocking: a run that finds the lock taken exits at once (and says so).
A scheduled run holds it until just before the next scheduled run
(``notification.jobs.sms``); ``send_sms_batch`` holds it for the job timeout.
Either way it expires, so a worker that dies holding it only delays sending,
never blocks it forever.

Overlap protection is about pacing and tidiness only: exactly-once sending
comes from the row claims, so manual concurrent workers may skip the lock.
"""

import math
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from django.conf import settings
from redis import Redis
from redis.exceptions import LockError

from notification.conf import app_settings

BATCH_LOCK_NAME = "sms:send-batch:lock"


def sms_job_timeout() -> int:
    """Seconds a run job may take: one interval of pacing plus its slowest last batch.

    A run paces for up to ``TWILIO_SMS_INTERVAL`` and may finish one batch past
    that: each of its ``ceil(batch / concurrency)`` rounds of requests can take
    ``TWILIO_REQUEST_TIMEOUT``, plus a minute for recovery and the result writes.
    Never less than the sms queue's RQ ``DEFAULT_TIMEOUT``. A shorter job timeout
    would kill runs mid-batch (recovery copes, but some rows end ``unknown``).
    """
    queue: dict[str, Any] = settings.RQ_QUEUES.get(app_settings.SMS_QUEUE_NAME, {})
    rounds = math.ceil(app_settings.TWILIO_SMS_BATCH_SIZE / app_settings.TWILIO_SMS_CONCURRENCY)
    last_batch = rounds * float(app_settings.TWILIO_REQUEST_TIMEOUT) + 60
    run = float(app_settings.TWILIO_SMS_INTERVAL) + last_batch
    return max(int(queue.get("DEFAULT_TIMEOUT", 900)), math.ceil(run))


@contextmanager
def batch_lock(connection: Redis, timeout: float | None = None) -> Iterator[bool]:
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
