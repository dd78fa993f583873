"""``manage.py schedule_sms``: register the SMS run with rq-scheduler (every
``TWILIO_SMS_INTERVAL`` seconds, 5 minutes by default).

Safe to run any number of times: the schedule lives under one fixed job id and
is replaced, never duplicated.
"""

from django.core.management.base import BaseCommand

from notification.jobs.scheduling import schedule_sms_batch, scheduled_sms_jobs, sms_interval


class Command(BaseCommand):
    help = "Register the SMS run job with rq-scheduler every TWILIO_SMS_INTERVAL s (idempotent)."

    def handle(self, *args, **options) -> None:
        job = schedule_sms_batch()
        count = len(scheduled_sms_jobs())
        self.stdout.write(
            f"Scheduled {job.func_name} every {sms_interval()} s "
            f"as job {job.id!r} ({count} schedule(s) for it)."
        )
