"""The retry policy: which failures get another attempt, when, and what staff read.

The send job (a create request that failed) and the status webhook (a failure
Twilio reported later) both follow it, so a message is retried the same way
whichever of the two saw the failure, and the attempt cap counts every attempt
once. Restated in two places, the cap or the wording drifts apart.

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


def next_attempt_datetime(now: datetime, attempts: int) -> datetime:
    return now + retry_delay(attempts)


def may_retry(attempts: int, max_attempts: int) -> bool:
    """Whether a retryable failure after ``attempts`` attempts gets another one."""
    return attempts < max_attempts


def retry_message(attempts: int, description: str, *, message_sid: str = "") -> str:
    """The notification's status message while it waits for its next attempt."""
    which = f" ({message_sid})" if message_sid else ""
    return f"Attempt {attempts} failed{which}, will retry: {description}"


def gave_up_message(attempts: int, description: str) -> str:
    """The notification's status message once the attempt cap ended the retries."""
    return f"Gave up after {attempts} attempts: {description}"


def ambiguous_message(description: str) -> str:
    """The status message of a send that may or may not have reached the provider.

    At most once: such a message is resent by itself only once reconciliation has
    proved that Twilio never had it (``notification.reconciliation.absence``).
    """
    return (
        f"{description}. The message may or may not have reached Twilio; "
        "its status callbacks or reconciliation with Twilio will settle it, and it is "
        "sent again only if Twilio never had it (staff can resend it)."
    )
