"""The scheduled sweep of expired idempotency keys (its own job since the schedule
became code: before, every send run ended with it).

Correctness does not depend on it: a key past ``SMS_IDEMPOTENCY_TTL`` already
counts as unknown when read (``notification.create.idempotency``). The sweep
only keeps the table small, with one DELETE however many keys expired.
"""

import logging

from notification.create.idempotency import forget_expired_keys

logger = logging.getLogger("notification.send")


def forget_expired_idempotency_keys() -> dict[str, int]:
    """Delete expired keys; returns ``{"forgotten_idempotency_keys": count}``."""
    forgotten = forget_expired_keys()
    if forgotten:
        logger.info("idempotency_keys forgotten=%d", forgotten)
    return {"forgotten_idempotency_keys": forgotten}
