"""``manage.py sms_scheduler``: rq-scheduler for the SMS queue, keeping the declared
schedule (``SMS_SCHEDULE``) in Redis and riding out Redis outages.

Use it instead of django-rq's ``rqscheduler`` (which still works, but neither
heals an emptied Redis nor survives a Redis restart). It exits non-zero only on
what cannot be survived in-process; run it under a supervisor (README,
"Deploying on several machines").
"""

import django_rq
from django.core.management.base import BaseCommand

from notification.conf import app_settings
from notification.processes import SmsScheduler


class Command(BaseCommand):
    help = "Run rq-scheduler for the SMS queue: keeps SMS_SCHEDULE in Redis, survives outages."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--interval",
            type=float,
            default=10,
            help="Seconds between polls (keep it well under TWILIO_SMS_INTERVAL).",
        )
        parser.add_argument("--burst", action="store_true", help="Poll once, then exit.")

    def handle(self, *args, interval: float, burst: bool, **options) -> None:
        # Logs go through Django's LOGGING (rq-scheduler's own handler would print each twice).
        queue = django_rq.get_queue(app_settings.SMS_QUEUE_NAME)
        scheduler = SmsScheduler(queue=queue, connection=queue.connection, interval=interval)
        scheduler.run(burst=burst)
