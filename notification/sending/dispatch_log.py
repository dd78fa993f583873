"""Which requests of a batch actually started: one Redis set per claim, for exact recovery.

The database marks a whole batch "send started" in one UPDATE before dispatch
(``claiming.mark_send_started``): one query whatever the batch size, but on its
own it cannot tell, after a SIGKILL, the rows whose request left from those
still waiting in the pool. This log can, without a SQL query per message:

* ``open()`` creates ``sms:dispatch:<claim_token>`` (a sentinel member, a TTL
  far beyond the claim timeout) **before** any request of the batch leaves;
* ``record_start(sms_id)`` adds the id, from the dispatching thread, right
  before that request leaves. If the write fails (Redis down, the set gone, or
  recovery has already closed it) the message is **not** sent: it is retried
  later, which cannot duplicate it;
* ``mark_unwritten()``: the worker gave up writing the results (the database
  stayed unreachable for ``SMS_RESULT_WRITE_TIMEOUT``), so recovery's
  ``unknown`` says the database was unreachable, not that the worker stopped;
* ``settle(tokens)`` (recovery) closes each set atomically and returns its ids.
  For a stale row whose batch was marked started: set present without its id →
  the request never left → back to pending; id present, or set missing (Redis
  lost it) → ``unknown``, because at most once beats avoiding ``unknown``.

Adding an id and closing a set are Lua scripts, so they are atomic with respect
to each other: once recovery has closed a set (and may have requeued its rows),
a stalled worker that wakes up can no longer record, hence never sends, any of
them. Keys expire on their own; a finished batch deletes its key.
"""

from collections.abc import Iterable
from contextlib import suppress

import django_rq
from redis import Redis
from redis.exceptions import RedisError

from notification.conf import app_settings
from notification.exceptions import SmsNotificationError

KEY_PREFIX = "sms:dispatch:"
OPEN_MEMBER = "#open"
CLOSED_MEMBER = "#closed"
#: The worker gave up writing the batch's results: the database was unreachable.
UNWRITTEN_MEMBER = "#unwritten"
#: Long enough that recovery (claim timeout, at the next scheduled batch) finds it.
MIN_TTL_SECONDS = 24 * 3600

# KEYS[1] = the batch's set, ARGV[1] = sms id. 1 = recorded (send it), 0 = refused.
_RECORD_START = """
if redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 0 then return 0 end
if redis.call('SISMEMBER', KEYS[1], ARGV[3]) == 1 then return 0 end
redis.call('SADD', KEYS[1], ARGV[1])
return 1
"""
# KEYS[1] = the batch's set. nil = missing, else its members after closing it.
_SETTLE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
redis.call('SADD', KEYS[1], ARGV[1])
return redis.call('SMEMBERS', KEYS[1])
"""


class DispatchLogError(SmsNotificationError, RuntimeError):
    """The start of a request could not be recorded: the request must not leave."""


def dispatch_connection() -> Redis:
    """The Redis the sms queue uses (the same server as the batch lock)."""
    return django_rq.get_connection(app_settings.SMS_QUEUE_NAME)


def dispatch_key(claim_token: str) -> str:
    return KEY_PREFIX + claim_token


def ttl_seconds() -> int:
    return max(MIN_TTL_SECONDS, 10 * int(app_settings.TWILIO_SMS_CLAIM_TIMEOUT))


class DispatchLog:
    """The started-requests set of one claimed batch."""

    def __init__(self, claim_token: str, connection: Redis | None = None) -> None:
        self.key = dispatch_key(claim_token)
        self.connection = connection or dispatch_connection()
        self._record = self.connection.register_script(_RECORD_START)

    def open(self) -> None:
        """Create the set before any request leaves; raises ``RedisError`` on failure."""
        pipe = self.connection.pipeline(transaction=True)
        pipe.sadd(self.key, OPEN_MEMBER)
        pipe.expire(self.key, ttl_seconds())
        pipe.execute()

    def record_start(self, sms_id: int) -> None:
        """Record that ``sms_id``'s request is leaving now; raise if it must not."""
        try:
            recorded = self._record(keys=[self.key], args=[sms_id, OPEN_MEMBER, CLOSED_MEMBER])
        except RedisError as exc:
            raise DispatchLogError(f"Could not record the send start in Redis: {exc}") from exc
        if not recorded:
            raise DispatchLogError(
                "The batch's send log is missing or was closed by recovery (this worker "
                "stalled past TWILIO_SMS_CLAIM_TIMEOUT)."
            )

    def mark_unwritten(self) -> None:
        """Note that the results could not be written (the database stayed away), so
        recovery says so in the rows' status message (best effort)."""
        with suppress(RedisError):
            self.connection.sadd(self.key, UNWRITTEN_MEMBER)

    def discard(self) -> None:
        """Delete the set once the batch's results are written (best effort: it expires)."""
        with suppress(RedisError):
            self.connection.delete(self.key)


class StartedIds(set[int]):
    """The ids whose request left; ``unwritten``: the worker could not write the results."""

    unwritten: bool = False


def settle(claim_tokens: Iterable[str], connection: Redis | None = None) -> dict[str, StartedIds]:
    """Close the sets of ``claim_tokens`` and return the started ids of each present one.

    Tokens whose set is missing are absent from the result. One round trip (a
    pipeline). Raises ``RedisError`` when Redis is unreachable: the caller then
    treats every started row as ``unknown``.
    """
    tokens = list(dict.fromkeys(claim_tokens))
    if not tokens:
        return {}
    connection = connection or dispatch_connection()
    script = connection.register_script(_SETTLE)
    pipe = connection.pipeline(transaction=False)
    for token in tokens:
        script(keys=[dispatch_key(token)], args=[CLOSED_MEMBER], client=pipe)
    started: dict[str, StartedIds] = {}
    for token, members in zip(tokens, pipe.execute(), strict=True):
        if members is None:
            continue
        ids = StartedIds()
        for member in members:
            text = member.decode() if isinstance(member, bytes) else str(member)
            if text.isdigit():
                ids.add(int(text))
            elif text == UNWRITTEN_MEMBER:
                ids.unwritten = True
        started[token] = ids
    return started
