"""Fixed-window counters in Redis: the one mechanism every throttle here uses.

A window starts with its first event and lasts ``window`` seconds; the count and
the window's remaining time come back from one atomic script, so concurrent web
processes never lose an increment or leave a counter without its expiry (a key
without one would lock a user out for ever).

Redis trouble makes ``count`` return ``None``: callers let the request through and
the failure is logged once per call. Refusing every login and every SMS while Redis is
away would turn a Redis outage into a full outage, and sending needs Redis anyway.
"""

import logging
import math
from dataclasses import dataclass

import redis

from notification.redis_connection import get_redis

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
