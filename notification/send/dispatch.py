"""Concurrent sends through the configured SMS backend (``notification.backends``).

``TWILIO_SMS_CONCURRENCY`` requests stay in flight, so a batch waits for the
slowest of a few round trips at a time instead of one round trip per message
(README, "Benchmarks").

They are coroutines on one event loop per process (``loops.shared_lanes``: a
daemon thread, started on first use, re-made in a forked RQ work horse), at
most that many at a time, first in, first out, with one ``concurrent.futures``
future per batch: ``submit_all`` returns at once, and the next batch's requests start
as the previous batch's last ones finish (``run.run_paced`` overlaps them).
A backend that sends natively async (``TwilioBackend``: the SDK's
``create_async`` on one aiohttp session) is awaited on the loop: a request
costs about a third of the CPU it did through ``requests`` on a thread each,
and the send worker is CPU-bound at 0 ms latency (README, "Benchmarks").
Any other backend keeps the thread path (``shared_pool``): its ``send`` runs on
one of the process's sending threads, one backend instance per thread
(``backends.base``), exactly as before.

Nothing here touches the database: the coroutines and threads return
``SendOutcome`` values and the caller writes them all at once (see
``results``). Right before each request leaves, its start is recorded
(``record_start``, the batch's ``DispatchLog`` in Redis; on the loop through
``redis.asyncio``, so one message's round trip to Redis does not hold up the
others); when that fails, or the backend cannot even be built (bad settings),
the request never leaves and the outcome is a retryable failure: nothing
reached the provider, so sending it later cannot duplicate it. An exception
from the backend's ``send`` is ambiguous: the message may have left.

Dispatch log (was ``notification.sending.dispatch_log``):

Which requests of a batch actually started: one Redis set per claim, for exact recovery.

The database marks a whole batch "send started" in one UPDATE before dispatch
(``claiming.mark_send_started``): one query whatever the batch size, but on its
own it cannot tell, after a SIGKILL, the rows whose request left from those
still waiting in the pool. This log can, without a SQL query per message:

* ``open()`` creates ``sms:dispatch:<claim_token>`` (a sentinel member, a TTL
  far beyond the claim timeout) **before** any request of the batch leaves;
* ``record_start(sms_id)`` (``record_start_async`` on the sending loop) adds the
  id right before that request leaves. If the write fails (Redis down, the set gone, or
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

import asyncio
import functools
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from django.urls import reverse
from django.utils import timezone
from redis import Redis
from redis.exceptions import RedisError

from notification.backends import get_backend
from notification.backends.base import (
    Accepted,
    BaseSmsBackend,
    FailureKind,
    OutgoingSms,
    SendFailure,
)
from notification.conf import app_settings
from notification.connections import queue_redis
from notification.delivery import STATUS_CALLBACK_ROUTE, STATUS_CALLBACK_SMS_PARAM
from notification.exceptions import SmsNotificationError
from notification.loops import Coalesced, async_redis, run_script, shared_lanes, shared_threads

# -------- dispatch_log ------------------------------------------------------------------

KEY_PREFIX = "sms:dispatch:"
OPEN_MEMBER = "#open"
CLOSED_MEMBER = "#closed"
#: The worker gave up writing the batch's results: the database was unreachable.
UNWRITTEN_MEMBER = "#unwritten"
#: Long enough that recovery (claim timeout, at the next scheduled batch) finds it.
MIN_TTL_SECONDS = 24 * 3600

# KEYS[1] = the batch's set, ARGV = open and closed members, then sms ids.
# 1 = recorded (send them), 0 = refused.
_RECORD_START = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0 then return 0 end
if redis.call('SISMEMBER', KEYS[1], ARGV[2]) == 1 then return 0 end
redis.call('SADD', KEYS[1], unpack(ARGV, 3))
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
    """The Redis the sms queue uses (the same server as the batch lock), one client per
    process (``connections.queue_redis``)."""
    return queue_redis()


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
        self._coalesced: Coalesced[int] | None = None  # made on the sending loop

    def open(self) -> None:
        """Create the set before any request leaves; raises ``RedisError`` on failure."""
        pipe = self.connection.pipeline(transaction=True)
        pipe.sadd(self.key, OPEN_MEMBER)
        pipe.expire(self.key, ttl_seconds())
        pipe.execute()

    def record_start(self, *sms_ids: int) -> None:
        """Record that these requests are leaving now; raise if they must not."""
        try:
            recorded = self._record(keys=[self.key], args=[OPEN_MEMBER, CLOSED_MEMBER, *sms_ids])
        except RedisError as exc:
            raise DispatchLogError(f"Could not record the send start in Redis: {exc}") from exc
        _check_recorded(recorded)

    async def record_start_async(self, sms_id: int) -> None:
        """``record_start`` from a coroutine on the sending loop. The ids of requests
        about to leave together (one loop iteration, or one round trip of the previous
        write) go in one script call (``Coalesced``), each still waiting for its own record."""
        if self._coalesced is None:
            self._coalesced = Coalesced(self._record_many)
        await self._coalesced(sms_id)

    async def _record_many(self, sms_ids: list[int]) -> None:
        client = async_redis(self.connection)
        if client is None:  # no async twin of this connection: the sync client, in a thread
            await asyncio.to_thread(self.record_start, *sms_ids)
            return
        try:
            recorded = await run_script(
                client, _RECORD_START, [self.key], [OPEN_MEMBER, CLOSED_MEMBER, *sms_ids]
            )
        except RedisError as exc:
            raise DispatchLogError(f"Could not record the send start in Redis: {exc}") from exc
        _check_recorded(recorded)

    def mark_unwritten(self) -> None:
        """Note that the results could not be written (the database stayed away), so
        recovery says so in the rows' status message (best effort)."""
        with suppress(RedisError):
            self.connection.sadd(self.key, UNWRITTEN_MEMBER)

    def discard(self) -> None:
        """Delete the set once the batch's results are written (best effort: it expires)."""
        with suppress(RedisError):
            self.connection.delete(self.key)


def _check_recorded(recorded: object) -> None:
    if not recorded:
        raise DispatchLogError(
            "The batch's send log is missing or was closed by recovery (this worker "
            "stalled past TWILIO_SMS_CLAIM_TIMEOUT)."
        )


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


# -------- dispatch ----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SendRequest:
    sms_id: int
    to: str
    body: str
    segments: int


@dataclass(frozen=True, slots=True)
class SendOutcome:
    request: SendRequest
    finished_at: datetime
    sid: str = ""
    status: str = ""
    segments: int = 0
    failure: SendFailure | None = None


def status_callback_url() -> str:
    """Where Twilio posts status callbacks: the route of ``notification.urls``, wherever
    the project includes it, on ``PUBLIC_BASE_URL``."""
    return app_settings.PUBLIC_BASE_URL.rstrip("/") + reverse(STATUS_CALLBACK_ROUTE)


def message_status_callback_url(base: str, sms_id: int) -> str:
    """``base`` naming one message (``?sms=<id>``): its callbacks say which row they are
    about even when the create's answer, and so the sid, was lost (``tracking.adopt``)."""
    return f"{base}?{STATUS_CALLBACK_SMS_PARAM}={sms_id}" if base else base


def current_sender() -> str:
    """The sender key: the Messaging Service SID when set, else the From number."""
    return app_settings.TWILIO_MESSAGING_SERVICE_SID or app_settings.TWILIO_FROM_NUMBER


def shared_pool(size: int) -> ThreadPoolExecutor:
    """This process's sending threads (the thread path), ``size`` of them, kept for the
    life of the process so each thread keeps its backend (for Twilio, its SDK client
    and keep-alive connection); they never hold a database connection."""
    return shared_threads("sms-send", size)


#: The sending event loop's name (its thread's name too).
SEND_LOOP = "sms-send-loop"


class Dispatcher:
    """Sends requests with bounded concurrency; never raises for a single message."""

    def __init__(
        self,
        concurrency: int,
        backend_factory: Callable[[], BaseSmsBackend] = get_backend,
        record_start: Callable[[int], None] | None = None,
        record_start_async: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self.concurrency = max(1, concurrency)
        self._backend_factory = backend_factory
        self._record_start = record_start
        self._record_start_async = record_start_async
        self._local = threading.local()
        self._loop_backend: BaseSmsBackend | None = None
        self._status_callback = status_callback_url()
        self._validity_period = int(app_settings.TWILIO_SMS_VALIDITY_PERIOD)

    def _backend(self) -> BaseSmsBackend:
        backend = getattr(self._local, "backend", None)
        if backend is None:
            backend = self._local.backend = self._backend_factory()
        return backend

    def _not_sent(self, request: SendRequest, message: str) -> SendOutcome:
        failure = SendFailure(FailureKind.RETRYABLE, None, message)
        return SendOutcome(request, timezone.now(), failure=failure)

    def _message(self, request: SendRequest) -> OutgoingSms:
        return OutgoingSms(
            to=request.to,
            body=request.body,
            segments=request.segments,
            status_callback=message_status_callback_url(self._status_callback, request.sms_id),
            validity_period=self._validity_period,
        )

    def _outcome(self, request: SendRequest, result: Accepted | SendFailure) -> SendOutcome:
        if isinstance(result, SendFailure):
            return SendOutcome(request, timezone.now(), failure=result)
        assert isinstance(result, Accepted)
        return SendOutcome(
            request, timezone.now(), sid=result.sid, status=result.status, segments=result.segments
        )

    def send_one(self, request: SendRequest) -> SendOutcome:
        """The thread path: this thread's backend instance, its sync ``send``."""
        # Both steps before the request can fail without anything leaving.
        try:
            backend = self._backend()
        except Exception as exc:
            return self._not_sent(
                request, f"Could not set up the SMS backend: {type(exc).__name__}: {exc}"
            )
        if self._record_start is not None:
            try:
                self._record_start(request.sms_id)
            except Exception as exc:
                return self._not_sent(request, f"Not sent: {exc}")
        try:
            result = backend.send(self._message(request))
        except Exception as exc:  # one bad message never stops the batch
            result = _unexpected(exc)
        return self._outcome(request, result)

    async def send_one_async(self, request: SendRequest) -> SendOutcome:
        """On the sending loop: awaited when the backend sends natively async, else
        handed to the thread path."""
        try:
            if self._loop_backend is None:
                self._loop_backend = self._backend_factory()
            backend = self._loop_backend
        except Exception as exc:
            return self._not_sent(
                request, f"Could not set up the SMS backend: {type(exc).__name__}: {exc}"
            )
        if not backend.sends_natively_async():
            pool = shared_pool(self.concurrency)
            return await asyncio.get_running_loop().run_in_executor(pool, self.send_one, request)
        try:
            if self._record_start_async is not None:
                await self._record_start_async(request.sms_id)
            elif self._record_start is not None:
                await asyncio.to_thread(self._record_start, request.sms_id)
        except Exception as exc:
            return self._not_sent(request, f"Not sent: {exc}")
        try:
            result = await backend.send_async(self._message(request))
        except Exception as exc:  # one bad message never stops the batch
            result = _unexpected(exc)
        return self._outcome(request, result)

    def submit_all(self, requests: Sequence[SendRequest]) -> "Future[list[SendOutcome]]":
        """Queue every request on the sending loop's lanes and return at once; the
        future's result is their outcomes, in order.

        The lanes take them first in, first out, so requests of a batch submitted
        while an earlier batch is in flight start as that batch's last ones finish
        (``run.run_paced`` overlaps batches this way).
        """
        lanes = shared_lanes(SEND_LOOP, self.concurrency)
        return lanes.submit_all([functools.partial(self.send_one_async, r) for r in requests])

    def send_all(self, requests: Sequence[SendRequest]) -> list[SendOutcome]:
        return self.submit_all(requests).result()


def _unexpected(exc: Exception) -> SendFailure:
    return SendFailure(
        FailureKind.AMBIGUOUS, None, f"Unexpected error while sending: {type(exc).__name__}: {exc}"
    )
