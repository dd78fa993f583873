"""Registering the SMS batch with rq-scheduler: every 5 minutes, under one fixed id.

Idempotent: an existing schedule with our id is cancelled and replaced, so
running ``schedule_sms`` on every deploy or ``make run`` never makes two.
"""

from datetime import UTC, datetime

import django_rq
from rq.job import Job
from rq_scheduler import Scheduler

from notification.conf import app_settings
from notification.sending.lock import sms_job_timeout

SMS_BATCH_JOB_ID = "sms-send-batch"
SMS_BATCH_FUNC = "notification.jobs.sms.send_sms_batch"
SMS_BATCH_INTERVAL_SECONDS = 300


def get_scheduler() -> Scheduler:
    queue = django_rq.get_queue(app_settings.SMS_QUEUE_NAME)
    return Scheduler(queue=queue, connection=queue.connection)


def schedule_sms_batch(scheduler: Scheduler | None = None) -> Job:
    """(Re)register the periodic batch job; returns the scheduled job."""
    scheduler = scheduler or get_scheduler()
    if SMS_BATCH_JOB_ID in scheduler:
        scheduler.cancel(SMS_BATCH_JOB_ID)
    return scheduler.schedule(
        scheduled_time=datetime.now(UTC),
        func=SMS_BATCH_FUNC,
        interval=SMS_BATCH_INTERVAL_SECONDS,
        repeat=None,
        id=SMS_BATCH_JOB_ID,
        description="Send due SMS (one batch)",
        timeout=sms_job_timeout(),
    )


def scheduled_sms_jobs(scheduler: Scheduler | None = None) -> list[Job]:
    """Scheduled jobs that run the SMS batch (exactly one after ``schedule_sms_batch``)."""
    scheduler = scheduler or get_scheduler()
    return [job for job in scheduler.get_jobs() if job.func_name == SMS_BATCH_FUNC]
