"""The schedule is code, not state: what runs when, and making Redis match it.

rq-scheduler keeps its schedule only in Redis. A Redis that comes back empty
(no persistence, a failover, a flush) used to lose the heartbeat run until a
person ran ``schedule_sms`` again, so NORMAL and LOW notifications waited
forever. Here the schedule is a list of ``Periodic`` entries declared in code:
the project's ``jobs`` package (``SMS_SCHEDULE`` names it, a dotted path), or
``DEFAULT_SCHEDULE`` below for a host project that declares none. The scheduler
process (``notification.processes``) calls ``sync_schedule`` when it
starts (``replace=True``: a changed interval applies) and on every poll (only
missing entries are added, so a healthy schedule keeps its timing); an emptied
Redis therefore heals within one scheduler poll plus one interval.

Each entry's job lives under a fixed id, so syncing any number of times, from
any number of scheduler processes, never makes two.

Scheduling (was ``notification.jobs.scheduling``):

The SMS run's place in the schedule: its fixed id, interval and next run time.

The run is one entry of the declared schedule (``notification.jobs.schedule``);
``schedule_sms`` (re)registers every entry, idempotently: an existing schedule
with an entry's id is cancelled and replaced, so running it on every deploy or
``make run`` never makes two. A declared schedule must keep the run under
``SMS_BATCH_JOB_ID``: a run reads its own next time from it (``next_scheduled_run``).
"""

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import django_rq
from django.conf import settings
from django.utils.module_loading import import_string
from rq.job import Job
from rq_scheduler import Scheduler

from notification.conf import DEFAULTS, app_settings
from notification.jobs.reconcile import RECONCILE_FUNC, RECONCILE_JOB_ID
from notification.send.wake import RUN_JOB_FUNC, sms_job_timeout

# -------- schedule ----------------------------------------------------------------------

#: A number of seconds, the name of a setting holding it, or a function returning it.
Seconds = int | str | Callable[[], int]


def _seconds(value: Seconds | None) -> int | None:
    """Resolve ``value`` now: settings are read lazily, so overrides apply at once."""
    if value is None or isinstance(value, int):
        return value
    if callable(value):
        return int(value())
    if value in DEFAULTS:
        return int(getattr(app_settings, value))
    return int(getattr(settings, value))


@dataclass(frozen=True)
class Periodic:
    """Run the job function ``func`` (a dotted path) every ``every`` seconds, under ``id``.

    ``every`` and ``timeout`` may name a setting (``"TWILIO_SMS_INTERVAL"``), so
    the declaration stays one line and follows the setting. The first run is due
    at once when the entry is (re)registered.
    """

    id: str
    func: str
    every: Seconds
    description: str = ""
    timeout: Seconds | None = field(default=None)

    def interval(self) -> int:
        seconds = _seconds(self.every)
        assert seconds is not None and seconds > 0, f"{self.id}: interval must be > 0"
        return seconds

    def job_timeout(self) -> int | None:
        return _seconds(self.timeout)


SEND_RUN_ID = "sms-send-batch"
FORGET_KEYS_ID = "sms-forget-idempotency-keys"
FORGET_KEYS_FUNC = "notification.jobs.idempotency.forget_expired_idempotency_keys"
#: Hourly: expired keys already count as unknown when read, the sweep only keeps the
#: table small; more often would only make the worker run it between send runs.
SWEEP_SECONDS = 3600

#: Each job the app ships, with its cadence, defined once: a project's schedule
#: lists the ones it runs (``jobs/schedule.py`` in this repository), or adds its own.
SEND_RUN = Periodic(
    SEND_RUN_ID,
    RUN_JOB_FUNC,
    every="TWILIO_SMS_INTERVAL",
    description="Send due SMS (a paced run)",
    timeout=sms_job_timeout,
)
FORGET_KEYS = Periodic(
    FORGET_KEYS_ID,
    FORGET_KEYS_FUNC,
    every=SWEEP_SECONDS,
    description="Forget expired idempotency keys",
)
RECONCILE = Periodic(
    RECONCILE_JOB_ID,
    RECONCILE_FUNC,
    every="SMS_RECONCILE_INTERVAL",
    description="Settle unknown and unfinished SMS with Twilio's records",
)

#: The app's schedule for a project that declares none (``SMS_SCHEDULE`` unset).
DEFAULT_SCHEDULE: tuple[Periodic, ...] = (SEND_RUN, FORGET_KEYS, RECONCILE)


def declared_schedule() -> Sequence[Periodic]:
    """The entries ``SMS_SCHEDULE`` names (a dotted path), or the app's default."""
    path = app_settings.SMS_SCHEDULE
    entries = import_string(path) if path else DEFAULT_SCHEDULE
    ids = [entry.id for entry in entries]
    if len(ids) != len(set(ids)):
        raise ValueError(f"SMS_SCHEDULE {path!r} declares an id twice: {ids}")
    return tuple(entries)


def get_scheduler() -> Scheduler:
    queue = django_rq.get_queue(app_settings.SMS_QUEUE_NAME)
    return Scheduler(queue=queue, connection=queue.connection)


def schedule_entry(scheduler: Scheduler, entry: Periodic) -> Job:
    """(Re)register one entry under its fixed id: cancel, then schedule (due now)."""
    if entry.id in scheduler:
        scheduler.cancel(entry.id)
    return scheduler.schedule(
        scheduled_time=datetime.now(UTC),
        func=entry.func,
        interval=entry.interval(),
        repeat=None,
        id=entry.id,
        description=entry.description or entry.func,
        timeout=entry.job_timeout(),
    )


def _matches(scheduler: Scheduler, entry: Periodic) -> bool:
    """The entry is scheduled in Redis with the declared function and interval."""
    if scheduler.connection.zscore(scheduler.scheduled_jobs_key, entry.id) is None:
        return False
    try:
        job = Job.fetch(entry.id, connection=scheduler.connection)
    except Exception:  # NoSuchJobError, or a job hash rq can no longer read
        return False
    return job.func_name == entry.func and job.meta.get("interval") == entry.interval()


def sync_schedule(
    scheduler: Scheduler | None = None,
    *,
    replace: bool = False,
    entries: Iterable[Periodic] | None = None,
) -> list[Periodic]:
    """Make Redis hold every declared entry; return the entries (re)registered.

    ``replace=False`` (every scheduler poll) adds only entries that are missing
    or differ, so a healthy schedule keeps its timing; ``replace=True``
    (``schedule_sms``) re-registers all, each due at once.
    """
    scheduler = scheduler or get_scheduler()
    changed = []
    for entry in declared_schedule() if entries is None else entries:
        if replace or not _matches(scheduler, entry):
            schedule_entry(scheduler, entry)
            changed.append(entry)
    return changed


# -------- scheduling --------------------------------------------------------------------

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
