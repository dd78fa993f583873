"""The SMS run's place in the schedule: its fixed id, interval and next run time.

The run is one entry of the declared schedule (``notification.jobs.schedule``);
``schedule_sms`` (re)registers every entry, idempotently: an existing schedule
with an entry's id is cancelled and replaced, so running it on every deploy or
``make run`` never makes two. A declared schedule must keep the run under
``SMS_BATCH_JOB_ID``: a run reads its own next time from it (``next_scheduled_run``).
"""

from rq.job import Job
from rq_scheduler import Scheduler

from notification.conf import app_settings
from notification.jobs.schedule import (
    SEND_RUN_ID,
    declared_schedule,
    get_scheduler,
    schedule_entry,
)
from notification.sending.wake import RUN_JOB_FUNC

SMS_BATCH_JOB_ID = SEND_RUN_ID
SMS_BATCH_FUNC = RUN_JOB_FUNC

__all__ = [
    "SMS_BATCH_FUNC",
    "SMS_BATCH_JOB_ID",
    "get_scheduler",
    "next_scheduled_run",
    "schedule_sms_batch",
    "scheduled_sms_jobs",
    "sms_interval",
]


def sms_interval() -> int:
    """Seconds between scheduled runs (``TWILIO_SMS_INTERVAL``)."""
    return int(app_settings.TWILIO_SMS_INTERVAL)


def schedule_sms_batch(scheduler: Scheduler | None = None) -> Job:
    """(Re)register the periodic run job as declared; returns the scheduled job."""
    entry = next(e for e in declared_schedule() if e.id == SMS_BATCH_JOB_ID)
    return schedule_entry(scheduler or get_scheduler(), entry)


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
