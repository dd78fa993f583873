"""Fixed-window counters in Redis: the one mechanism every throttle here uses.

A window starts with its first event and lasts ``window`` seconds; the count and
the window's remaining time come back from one atomic script, so concurrent web
processes never lose an increment or leave a counter without its expiry (a key
without one would lock a user out for ever).

Redis trouble makes ``count`` return ``None``: callers let the request through and
the failure is logged once per call. Refusing every login and every SMS while Redis is
away would turn a Redis outage into a full outage, and sending needs Redis anyway.

User limits (was ``notification.throttle.user_limits``):

Per-user limits on what costs money or CPU: request rates, and SMS segments per hour.

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

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import redis

from notification.conf import app_settings
from notification.connections import get_redis
from notification.exceptions import SmsNotificationError

# -------- counters ----------------------------------------------------------------------

logger = logging.getLogger(__name__)

KEY_PREFIX = "throttle:"

# INCRBY, then give the key its expiry if it has none (a new window); returns the new
# count and the milliseconds left in the window.
_COUNT_SCRIPT = """
local total = redis.call('INCRBY', KEYS[1], ARGV[1])
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  ttl = tonumber(ARGV[2])
end
return {total, ttl}
"""

# Only within the window it was counted in: a key that expired meanwhile stays gone
# (a bare DECRBY would recreate it, negative and without an expiry).
_GIVE_BACK_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('DECRBY', KEYS[1], ARGV[1]) end
"""


@dataclass(frozen=True, slots=True)
class Window:
    """A counter's value and the whole seconds until its window ends (at least 1)."""

    total: int
    retry_after: int


def _key(name: str) -> str:
    return KEY_PREFIX + name


def _window(total: int, ttl_ms: int) -> Window:
    return Window(total=int(total), retry_after=max(1, math.ceil(int(ttl_ms) / 1000)))


def count(name: str, amount: int, window: int) -> Window | None:
    """Add ``amount`` to counter ``name`` (a new window lasts ``window`` seconds)."""
    try:
        total, ttl = get_redis().eval(_COUNT_SCRIPT, 1, _key(name), amount, window * 1000)
    except redis.RedisError as exc:
        logger.warning("Throttle counter %s unavailable (%s): not limiting", name, exc)
        return None
    return _window(total, ttl)


def peek(name: str) -> Window | None:
    """The counter's current window, or None when it has none (or Redis is away)."""
    try:
        pipe = get_redis().pipeline(transaction=True)
        pipe.get(_key(name))
        pipe.pttl(_key(name))
        total, ttl = pipe.execute()
    except redis.RedisError as exc:
        logger.warning("Throttle counter %s unavailable (%s): not limiting", name, exc)
        return None
    if total is None or ttl < 0:
        return None
    return _window(int(total), ttl)


def give_back(name: str, amount: int) -> None:
    """Undo ``amount`` of a ``count`` whose request was refused or created nothing."""
    try:
        get_redis().eval(_GIVE_BACK_SCRIPT, 1, _key(name), amount)
    except redis.RedisError as exc:
        logger.warning("Throttle counter %s unavailable (%s)", name, exc)


def clear(name: str) -> None:
    try:
        get_redis().delete(_key(name))
    except redis.RedisError as exc:
        logger.warning("Throttle counter %s unavailable (%s)", name, exc)


# -------- user_limits -------------------------------------------------------------------

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
    window = count(f"rate:{operation}:{user_id}", 1, RATE_WINDOW_SECONDS)
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
    window = count(name, segments, SEGMENT_WINDOW_SECONDS)
    if window is not None and window.total > cap:
        give_back(name, segments)
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
            give_back(name, segments)
        raise
    if reserved and unused:
        give_back(name, unused)
    return result
