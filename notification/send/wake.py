"""Starting a run: its lock, waking it for due HIGH messages, the provider's queue estimate.

HIGH does not wait for the heartbeat: a due HIGH notification starts a run at once.

Scheduled runs come every ``TWILIO_SMS_INTERVAL`` seconds; a login code or an
outage alert created just after one would otherwise wait that long before the
provider even sees it. ``wake_sending`` (called after commit, see
``notify_if_urgent``) does two things:

1. It pushes a wake-up onto ``sms:wake`` (a one-item Redis list). An active run
   waits between top-ups with ``BLPOP`` on that list (``WakeSignal.wait``), so
   it claims the HIGH row at once instead of at its next poll.
2. When no run holds the lock, it enqueues the run job on the SMS queue (at the
   front), so an idle worker starts a run within a moment. ``sms:wake:enqueued``
   (``SET NX`` with a TTL) keeps a burst of HIGH rows from enqueuing one job each;
   the job clears it when it starts.

A HIGH notification published later (``publish_datetime`` in the future) is not
due yet: for it a wake-up is scheduled with rq-scheduler at its publish time
(``schedule_wake``; one job per second of publish time, however many rows share
it), so it too starts a run as it becomes due, within rq-scheduler's polling
interval, instead of at the next heartbeat.

No wake-up can be lost between the two: a run clears the list before each claim
(anything committed before the clear is then claimed) and, after releasing the
lock, runs again when the list holds a push it did not consume
(``notification.jobs.sms``). A Redis failure here is logged and the row simply
waits for the next scheduled run: creating a notification never fails because
of a wake-up.

The job is named by its dotted path (RQ resolves it in the worker), so this
layer does not import the job layer above it.

Lock (was ``notification.sending.lock``):

The Redis lock that keeps two runs from overlapping.

Non-blocking: a run that finds the lock taken exits at once (and says so).
A scheduled run holds it until just before the next scheduled run
(``notification.jobs.sms``); ``send_sms_batch`` holds it for the job timeout.
Either way it expires, so a worker that dies holding it only delays sending,
never blocks it forever.

Overlap protection is about pacing and tidiness only: exactly-once sending
comes from the row claims, so manual concurrent workers may skip the lock.

Queue estimate (was ``notification.sending.queue_estimate``):

How many segments a sender has waiting in Twilio's queue, estimated from our rows.

Twilio drains each sender at a fixed rate (``TWILIO_SMS_RATE`` segments per
second) and refuses new messages (21611) once ``TWILIO_SMS_QUEUE_LIMIT`` are
waiting. We cannot ask Twilio how full the queue is, so we model it as a FIFO
queue fed by our own hand-offs.

**Choice: computed from database rows, not kept in Redis.** The rows already
hold everything needed (``sender``, ``segments``, ``sent_datetime``: the
hand-off time, which callbacks never move), every worker sees the same truth
without a second store to keep consistent. Messages being dispatched right now
(claimed, no answer yet) count too, at their claim time, so concurrent workers
see each other's in-flight segments.

Two upper bounds, and the estimate is the smaller:

* **The fluid formula** over *every* hand-off in the window, including rows
  whose callbacks say they have left: the backlog now is the largest, over
  every hand-off time ``t``, of "segments handed off since ``t``" minus "rate ×
  seconds since ``t``" (never below zero). The rows that left must stay in:
  in a FIFO queue they used the drain that the formula credits, so feeding it
  only the rows still queued let them drain a second time (40 handed off at
  t0, 20 gone at t0+1 s at 20/s: the queue holds 20, the formula without the
  gone ones said 0, and a paced run topped up again, so HIGH waited 2.5× the
  target with callbacks on; issue 21).
* **What callbacks say is still queued**: segments of rows whose last known
  status is queued/accepted/sending, plus the in-flight ones. Without
  callbacks every row stays "queued", so this bound is loose and the fluid
  one decides; with callbacks it is the truth up to their delay.

The estimate never goes below what is known to be waiting: the in-flight
segments (answered or not, they are entering the queue now). Rows older than
the validity period cannot still be queued (Twilio expires them with 30036),
so the query only looks that far back.
"""

import functools
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import Any

import django_rq
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.db.models.signals import post_save
from django.utils import timezone
from redis import Redis
from redis.exceptions import LockError, RedisError
from rq_scheduler import Scheduler

from notification.conf import app_settings
from notification.connections import queue_redis
from notification.models import (
    DeliveryStatusChoices,
    Notification,
    NotificationPriorityChoices,
    NotificationStatusChoices,
    SmsNotification,
)

# -------- lock --------------------------------------------------------------------------

BATCH_LOCK_NAME = "sms:send-batch:lock"


def sms_job_timeout() -> int:
    """Seconds a run job may take: one interval of pacing plus its slowest last batches.

    A run paces for up to ``TWILIO_SMS_INTERVAL`` and may finish two overlapped
    batches past that (``run_paced``): each of their ``ceil(2 × batch /
    concurrency)`` rounds of requests can take ``TWILIO_REQUEST_TIMEOUT``, plus a
    minute for recovery and the result writes. Never less than the sms queue's RQ
    ``DEFAULT_TIMEOUT``. A shorter job timeout would kill runs mid-batch (recovery
    copes, but some rows end ``unknown``).
    """
    queue: dict[str, Any] = settings.RQ_QUEUES.get(app_settings.SMS_QUEUE_NAME, {})
    batches = 2 * app_settings.TWILIO_SMS_BATCH_SIZE
    rounds = math.ceil(batches / app_settings.TWILIO_SMS_CONCURRENCY)
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


# -------- queue_estimate ----------------------------------------------------------------

IN_QUEUE_STATUSES = (
    DeliveryStatusChoices.QUEUED,
    DeliveryStatusChoices.ACCEPTED,
    DeliveryStatusChoices.SENDING,
)


def fluid_backlog(handoffs: list[tuple[datetime, int]], now: datetime, rate: float) -> int:
    """Backlog at ``now`` of a queue drained at ``rate`` per second.

    ``handoffs`` are (time, segments) pairs in any order.
    """
    backlog = 0.0
    arrived_since = 0
    for at, segments in sorted(handoffs, key=lambda item: item[0], reverse=True):
        arrived_since += segments
        elapsed = max(0.0, (now - at).total_seconds())
        backlog = max(backlog, arrived_since - rate * elapsed)
    return _segments(backlog)


def _segments(backlog: float) -> int:
    """A fluid backlog as whole segments, rounded up: better to wait than to overflow."""
    return int(max(0.0, backlog) + 0.999999)


def _bounded(fluid: int, in_flight: int, in_queue: int) -> int:
    """The smaller of the two bounds, never below what is in flight (see the module)."""
    return max(in_flight, min(fluid, in_flight + in_queue))


def combine(handoffs: list[tuple[datetime, int, str]], now: datetime, rate: float) -> int:
    """The estimate from (hand-off time, segments, delivery status) rows (see the module).

    A delivery status of ``""`` is a claim in flight (no answer from Twilio yet).
    """
    fluid = fluid_backlog([(at, segments) for at, segments, _status in handoffs], now, rate)
    in_flight = sum(segments for _at, segments, status in handoffs if not status)
    in_queue = sum(segments for _at, segments, status in handoffs if status in IN_QUEUE_STATUSES)
    return _bounded(fluid, in_flight, in_queue)


def estimate_queue(sender: str, now: datetime) -> int:
    """Estimated segments waiting in Twilio's queue for ``sender`` (one query).

    ``combine`` over the window's hand-offs, computed by the database: one row
    of three sums comes back instead of every hand-off of the validity window
    (up to four hours of a sender's history, each row's datetime parsed and
    converted in Python at every claim: the cost grew with the run; README,
    "Benchmarks"). ``test_sending_batch`` checks it equals ``combine`` exactly.
    """
    if not sender:
        return 0
    window_start = now - timedelta(seconds=app_settings.TWILIO_SMS_VALIDITY_PERIOD)
    rows = (
        SmsNotification.objects.filter(sender=sender)
        .filter(
            # Every hand-off in the window, whatever its status now (see ``combine``).
            Q(sent_datetime__gte=window_start)
            | Q(delivery_status="", claimed_datetime__gte=window_start)  # in flight
        )
        .annotate(handed_off_at=Coalesce("sent_datetime", "claimed_datetime"))
        .values_list("handed_off_at", "segments", "delivery_status")
    )
    inner, params = rows.query.sql_with_params()
    elapsed, moment = _elapsed_seconds(now)
    queued = ", ".join(["%s"] * len(IN_QUEUE_STATUSES))
    sql = (
        "SELECT COALESCE(MAX(backlog), 0), "
        "COALESCE(SUM(CASE WHEN delivery_status = '' THEN segments ELSE 0 END), 0), "
        f"COALESCE(SUM(CASE WHEN delivery_status IN ({queued}) THEN segments ELSE 0 END), 0) "
        "FROM (SELECT delivery_status, segments, "
        "SUM(segments) OVER (ORDER BY handed_off_at DESC ROWS UNBOUNDED PRECEDING) "
        f"- %s * {elapsed} AS backlog FROM ({inner}) AS handoffs) AS running"
    )
    rate = float(app_settings.TWILIO_SMS_RATE)
    with connection.cursor() as cursor:
        cursor.execute(sql, [*(str(s.value) for s in IN_QUEUE_STATUSES), rate, moment, *params])
        fluid, in_flight, in_queue = cursor.fetchone()
    return _bounded(_segments(float(fluid)), int(in_flight), int(in_queue))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _elapsed_seconds(now: datetime) -> tuple[str, Any]:
    """SQL for the seconds from a hand-off to ``now`` (never negative) and its parameter:
    the same double ``timedelta.total_seconds()`` gives (exact microseconds, divided once)."""
    if connection.vendor == "postgresql":
        return "GREATEST(0, EXTRACT(EPOCH FROM (%s - handed_off_at))::float8)", now
    # SQLite stores 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC: whole seconds, then microseconds.
    micros = (
        "(CAST(strftime('%%s', handed_off_at) AS INTEGER) * 1000000 "
        "+ CAST(substr(handed_off_at || '.000000', 21, 6) AS INTEGER))"
    )
    now_micros = (now - _EPOCH) // timedelta(microseconds=1)
    return f"MAX(0, CAST(%s - {micros} AS REAL) / 1000000.0)", now_micros


# -------- wake --------------------------------------------------------------------------

logger = logging.getLogger("notification.send")

RUN_JOB_FUNC = "notification.jobs.sms.send_sms_batch"
WAKE_KEY = "sms:wake"
ENQUEUED_KEY = "sms:wake:enqueued"
#: After this, a wake job that never started (no worker) no longer blocks a new one.
ENQUEUED_TTL_SECONDS = 30
SCHEDULED_WAKE_PREFIX = "sms-wake-at-"
#: Distinct publish seconds one save or bulk create schedules wake-ups for; the rest
#: wait for the heartbeat (a bulk of HIGH rows at 1,000 different seconds is not a
#: login code).
MAX_SCHEDULED_WAKES = 100


def sms_connection() -> Redis:
    return queue_redis()


class WakeSignal:
    """The wake-up list as a run sees it: clear before a claim, wait between top-ups."""

    def __init__(self, connection: Redis) -> None:
        self.connection = connection

    def clear(self) -> None:
        self.connection.delete(WAKE_KEY)

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds``; True when a HIGH notification woke us earlier."""
        return self.connection.blpop([WAKE_KEY], timeout=max(seconds, 0.01)) is not None

    def pending(self) -> bool:
        """A wake-up arrived that no run has consumed (checked after releasing the lock)."""
        return bool(self.connection.exists(WAKE_KEY))

    def job_started(self) -> None:
        """The enqueued run began: a later HIGH row may enqueue another one."""
        self.connection.delete(ENQUEUED_KEY)


def wake_sending() -> None:
    """Have a run pick up due HIGH rows now (see the module docstring); never raises."""
    try:
        connection = sms_connection()
        with connection.pipeline() as pipe:
            pipe.lpush(WAKE_KEY, 1)
            pipe.ltrim(WAKE_KEY, 0, 0)
            pipe.expire(WAKE_KEY, int(app_settings.TWILIO_SMS_INTERVAL))
            pipe.execute()
        if connection.exists(BATCH_LOCK_NAME):
            return  # the active run takes it (and re-checks the list after it ends)
        if not connection.set(ENQUEUED_KEY, 1, nx=True, ex=ENQUEUED_TTL_SECONDS):
            return  # a run job is already on its way
        django_rq.get_queue(app_settings.SMS_QUEUE_NAME).enqueue(
            RUN_JOB_FUNC,
            job_timeout=sms_job_timeout(),
            at_front=True,
            description="Send due SMS now (a HIGH notification is due)",
        )
    except RedisError as exc:
        logger.warning("sms_wake failed, the next scheduled run sends it: %s", exc)


def schedule_wake(moment: datetime) -> None:
    """Enqueue a run at ``moment`` (a HIGH notification's publish time); never raises.

    The job id is the second of ``moment``: rows published in the same second share
    one wake-up, and scheduling it again replaces rather than duplicates it.
    """
    try:
        queue = django_rq.get_queue(app_settings.SMS_QUEUE_NAME)
        Scheduler(queue=queue, connection=queue.connection).enqueue_at(
            moment,
            RUN_JOB_FUNC,
            job_id=f"{SCHEDULED_WAKE_PREFIX}{int(moment.timestamp())}",
            timeout=sms_job_timeout(),
            job_description="Send due SMS now (a scheduled HIGH notification is due)",
        )
    except RedisError as exc:
        logger.warning("sms_wake failed, the next scheduled run sends it: %s", exc)


def _is_high_and_pending(notification: Notification) -> bool:
    return (
        notification.priority == NotificationPriorityChoices.HIGH
        and notification.status == NotificationStatusChoices.PENDING
    )


def is_urgent(notification: Notification, now: datetime | None = None) -> bool:
    """HIGH, pending and due: the rows worth starting a run for."""
    return _is_high_and_pending(notification) and notification.publish_datetime <= (
        now or timezone.now()
    )


def wake_after_commit() -> None:
    """``wake_sending`` once the current transaction commits (at once outside one)."""
    transaction.on_commit(wake_sending, robust=True)


def notify_if_urgent(notifications: list[Notification]) -> None:
    """Wake sending after commit when any of ``notifications`` is urgent; schedule a
    wake-up at the publish time of those HIGH ones that are not due yet."""
    now = timezone.now()
    if any(is_urgent(notification, now) for notification in notifications):
        wake_after_commit()
    later = {
        notification.publish_datetime.replace(microsecond=0)
        for notification in notifications
        if _is_high_and_pending(notification) and notification.publish_datetime > now
    }
    for moment in sorted(later)[:MAX_SCHEDULED_WAKES]:
        # Rounded down: the run may start a moment early and find the row not yet due;
        # a second's grace makes it find it.
        wake_at = moment + timedelta(seconds=1)
        transaction.on_commit(functools.partial(schedule_wake, wake_at), robust=True)


def _sms_saved(sender, instance: SmsNotification, created: bool, raw: bool = False, **kwargs):
    """A new SMS row (the ORM, the admin's inline) for a due HIGH notification."""
    if created and not raw:
        notify_if_urgent([instance.notification])


def _notification_saved(
    sender, instance: Notification, created: bool, raw: bool = False, **kwargs
) -> None:
    """An edited notification that became urgent (priority raised, publish time now).

    A new one has no SMS row yet: ``_sms_saved`` sees it when the row is added.
    """
    if not created and not raw:
        notify_if_urgent([instance])


def connect_receivers() -> None:
    """Wake sending for rows saved one by one (``NotificationConfig.ready``); bulk paths
    (GraphQL creation, resend) call ``notify_if_urgent`` themselves."""
    post_save.connect(_sms_saved, sender=SmsNotification, dispatch_uid="sms-wake-sms")
    post_save.connect(_notification_saved, sender=Notification, dispatch_uid="sms-wake-note")
