"""``manage.py schedule_sms``: register the SMS batch with rq-scheduler (every 5 minutes).

Safe to run any number of times: the schedule lives under one fixed job id and
is replaced, never duplicated.
"""

from django.core.management.base import BaseCommand

from notification.jobs.scheduling import (
    SMS_BATCH_INTERVAL_SECONDS,
    schedule_sms_batch,
    scheduled_sms_jobs,
)


class Command(BaseCommand):
    help = "Register the SMS batch job with rq-scheduler every 5 minutes (idempotent)."

    def handle(self, *args, **options) -> None:
        job = schedule_sms_batch()
        count = len(scheduled_sms_jobs())
        self.stdout.write(
            f"Scheduled {job.func_name} every {SMS_BATCH_INTERVAL_SECONDS} s "
            f"as job {job.id!r} ({count} schedule(s) for it)."
        )
