"""Per-user limits on what costs money or CPU: request rates, and SMS segments per hour.

* ``GRAPHQL_USER_RATE``: requests per minute one user may make to one limited
  operation (the SMS-sending mutations, ``smsSegments``); each operation has its own
  budget, so a live segment counter cannot starve the user's own sends.
* ``SMS_USER_SEGMENTS_PER_HOUR``: segments one user may queue per hour, so a
  compromised account cannot queue 1,000 × 11 segments in a fraction of a second.
  A request is counted whole before it is created and given back when it creates
  nothing, so two concurrent requests can never both slip under the cap.

0 turns either limit off. Windows are fixed (``counters``): a window starts with
the first request and ``retry_after`` says when it ends.
"""

from collections.abc import Callable
from typing import TypeVar

from notification.conf import app_settings
from notification.exceptions import SmsNotificationError
from notification.throttle import counters

T = TypeVar("T")

RATE_WINDOW_SECONDS = 60
SEGMENT_WINDOW_SECONDS = 3600


class LimitExceeded(SmsNotificationError):
    """A user limit refused the request; nothing was done. ``code`` is stable for clients."""

    def __init__(self, message: str, *, code: str, retry_after: int):
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after


def check_rate(user_id: int, operation: str) -> None:
    """Count one request of ``operation`` by the user; raise when over the minute's budget."""
    limit = app_settings.GRAPHQL_USER_RATE
    if not limit:
        return
    window = counters.count(f"rate:{operation}:{user_id}", 1, RATE_WINDOW_SECONDS)
    if window is not None and window.total > limit:
        raise LimitExceeded(
            f"Too many {operation} requests: at most {limit} a minute. "
            f"Try again in {window.retry_after} seconds.",
            code="rate_limited",
            retry_after=window.retry_after,
        )


def with_segment_quota(user_id: int, segments: int, create: Callable[[], tuple[T, int]]) -> T:
    """Run ``create`` within the user's hourly segment quota.

    ``segments`` is reserved first (refused whole when it would pass the cap);
    ``create`` returns its result and how many of those segments it did *not* queue
    (refused or replayed items), which are given back; an exception gives back all.
    """
    cap = app_settings.SMS_USER_SEGMENTS_PER_HOUR
    if not cap or segments <= 0:
        return create()[0]
    name = f"segments:{user_id}"
    window = counters.count(name, segments, SEGMENT_WINDOW_SECONDS)
    if window is not None and window.total > cap:
        counters.give_back(name, segments)
        raise LimitExceeded(
            f"This would queue {segments} SMS segments; at most {cap} may be queued per "
            f"hour. Try again in {window.retry_after} seconds.",
            code="sms_quota_exceeded",
            retry_after=window.retry_after,
        )
    reserved = window is not None
    try:
        result, unused = create()
    except BaseException:
        if reserved:
            counters.give_back(name, segments)
        raise
    if reserved and unused:
        counters.give_back(name, unused)
    return result
