"""Exponential backoff with jitter for retryable failures.

Delay after attempt *n* is ``base × 2^(n-1)``, capped, then scaled by a random
factor in [0.5, 1]: "equal jitter", so a burst of 429s does not come back as one
synchronised burst, yet every retry still waits at least half the nominal delay.
"""

import random
from datetime import datetime, timedelta

RETRY_BASE_SECONDS = 30.0
RETRY_MAX_SECONDS = 30 * 60.0


def retry_delay(attempts: int) -> timedelta:
    """Delay before the next try, after ``attempts`` failed attempts (1-based)."""
    nominal = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1))
    factor = random.uniform(0.5, 1.0)
    return timedelta(seconds=nominal * factor)


def next_attempt_at(now: datetime, attempts: int) -> datetime:
    return now + retry_delay(attempts)
