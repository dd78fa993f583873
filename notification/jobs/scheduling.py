"""Registering the SMS run with rq-scheduler: every ``TWILIO_SMS_INTERVAL`` seconds
(default 300), under one fixed id.

Idempotent: an existing schedule with our id is cancelled and replaced, so
running ``schedule_sms`` on every deploy or ``make run`` never makes two.
"""

from datetime import UTC, datetime

import django_rq
from rq.job import Job
from rq_scheduler import Scheduler

from notification.conf import app_settings
from notification.sending.lock import sms_job_timeout
from notification.sending.wake import RUN_JOB_FUNC

SMS_BATCH_JOB_ID = "sms-send-batch"
SMS_BATCH_FUNC = RUN_JOB_FUNC


def get_scheduler() -> Scheduler:
    queue = django_rq.get_queue(app_settings.SMS_QUEUE_NAME)
    return Scheduler(queue=queue, connection=queue.connection)


def sms_interval() -> int:
    """Seconds between scheduled runs (``TWILIO_SMS_INTERVAL``)."""
    return int(app_settings.TWILIO_SMS_INTERVAL)


def schedule_sms_batch(scheduler: Scheduler | None = None) -> Job:
    """(Re)register the periodic run job; returns the scheduled job."""
    scheduler = scheduler or get_scheduler()
    if SMS_BATCH_JOB_ID in scheduler:
        scheduler.cancel(SMS_BATCH_JOB_ID)
    return scheduler.schedule(
        scheduled_time=datetime.now(UTC),
        func=SMS_BATCH_FUNC,
        interval=sms_interval(),
        repeat=None,
        id=SMS_BATCH_JOB_ID,
        description="Send due SMS (a paced run)",
        timeout=sms_job_timeout(),
    )


def scheduled_sms_jobs(scheduler: Scheduler | None = None) -> list[Job]:
    """Scheduled jobs that run the SMS batch (exactly one after ``schedule_sms_batch``)."""
    scheduler = scheduler or get_scheduler()
    return [job for job in scheduler.get_jobs() if job.func_name == SMS_BATCH_FUNC]


def next_scheduled_run(scheduler: Scheduler | None = None) -> float | None:
    """Unix time rq-scheduler will next enqueue the run (``None``: not scheduled).

    rq-scheduler reschedules an interval job when it enqueues it, so inside the
    scheduled run this is already the *next* run's time.
    """
    scheduler = scheduler or get_scheduler()
    score = scheduler.connection.zscore(scheduler.scheduled_jobs_key, SMS_BATCH_JOB_ID)
    return None if score is None else float(score)
