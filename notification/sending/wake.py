"""HIGH does not wait for the heartbeat: a due HIGH notification starts a run at once.

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
"""

import functools
import logging
from datetime import datetime, timedelta

import django_rq
from django.db import transaction
from django.db.models.signals import post_save
from django.utils import timezone
from redis import Redis
from redis.exceptions import RedisError
from rq_scheduler import Scheduler

from notification.conf import app_settings
from notification.models import (
    Notification,
    NotificationPriorityChoices,
    NotificationStatusChoices,
    SmsNotification,
)
from notification.sending.lock import BATCH_LOCK_NAME, sms_job_timeout

logger = logging.getLogger("notification.sending")

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
    return django_rq.get_connection(app_settings.SMS_QUEUE_NAME)


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
