"""``manage.py schedule_sms``: register the declared schedule with rq-scheduler now
(the SMS run every ``TWILIO_SMS_INTERVAL`` seconds, 5 minutes by default, and the
other entries of ``SMS_SCHEDULE``).

Safe to run any number of times: each entry lives under one fixed job id and is
replaced, never duplicated. Not needed for healing: the scheduler process
(``sms_scheduler``) registers missing entries by itself on every poll.
"""

from django.core.management.base import BaseCommand

from notification.jobs.schedule import (
    SMS_BATCH_FUNC,
    SMS_BATCH_JOB_ID,
    scheduled_sms_jobs,
    sms_interval,
    sync_schedule,
)


class Command(BaseCommand):
    help = "Register the declared schedule (the SMS run every TWILIO_SMS_INTERVAL s) (idempotent)."

    def handle(self, *args, **options) -> None:
        entries = sync_schedule(replace=True)
        count = len(scheduled_sms_jobs())
        self.stdout.write(
            f"Scheduled {SMS_BATCH_FUNC} every {sms_interval()} s "
            f"as job {SMS_BATCH_JOB_ID!r} ({count} schedule(s) for it)."
        )
        for entry in entries:
            if entry.id != SMS_BATCH_JOB_ID:
                every = entry.interval()
                self.stdout.write(f"Scheduled {entry.func} every {every} s as {entry.id!r}.")
