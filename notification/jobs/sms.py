"""The RQ job rq-scheduler enqueues every five minutes: one locked SMS batch, then the
sweep of expired idempotency keys (one DELETE, so it costs the batch next to nothing).

The lock keeps two scheduled runs from overlapping (a slow batch and the next
tick); an overlapping run returns at once and logs it. Exactly-once sending
does not depend on this lock: it comes from the row claims.
"""

import logging
from typing import Any

import django_rq

from notification.conf import app_settings
from notification.idempotency.expiry import forget_expired_keys
from notification.sending.batch import run_batch
from notification.sending.lock import batch_lock

logger = logging.getLogger("notification.sending")


def send_sms_batch() -> dict[str, Any]:
    """Run one batch unless another run holds the lock; returns what happened."""
    connection = django_rq.get_connection(app_settings.SMS_QUEUE_NAME)
    with batch_lock(connection) as acquired:
        if not acquired:
            logger.info('sms_batch skipped=overlap reason="another batch run holds the lock"')
            return {"skipped": "another batch run holds the lock"}
        report = run_batch().as_dict()
    forgotten = forget_expired_keys()
    if forgotten:
        logger.info("idempotency_keys forgotten=%d", forgotten)
    report["forgotten_idempotency_keys"] = forgotten
    return report
