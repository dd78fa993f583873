"""``manage.py sms_worker``: check sending settings, then run the RQ worker for SMS.

A worker without Twilio credentials or a sender would take jobs and fail every
one of them; it stops at once instead, naming what is missing. (Malformed
numbers such as a non-integer ``TWILIO_SMS_BATCH_SIZE`` already stop Django's
settings import with a message naming the variable.)

The worker is ``notification.processes.SmsWorker``: it rides out Redis
outages by itself. It exits non-zero when its loop ends any other way than a
stop signal (or an empty queue with ``--burst``), so a supervisor restarts it.
"""

from typing import cast

from django.core.management.base import BaseCommand, CommandError
from django_rq.utils import reset_db_connections
from django_rq.workers import get_worker
from rq.logutils import setup_loghandlers

from notification.backends import get_backend
from notification.conf import app_settings
from notification.processes import SmsWorker
from notification.send.dispatch import current_sender


class Command(BaseCommand):
    help = "Run the RQ worker for the sms queue after checking the Twilio settings."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--burst", action="store_true", help="Stop when the queue is empty.")
        parser.add_argument(
            "--check", action="store_true", help="Only check the settings, then exit."
        )

    def handle(self, *args, burst: bool, check: bool, **options) -> None:
        missing = get_backend().missing_settings()
        if missing:
            raise CommandError(
                "The SMS worker cannot start: missing setting(s) "
                + ", ".join(missing)
                + " (set them in the environment)."
            )
        sender = current_sender()
        self.stdout.write(
            f"SMS worker settings OK: sender {sender}, "
            f"batch {app_settings.TWILIO_SMS_BATCH_SIZE} segments, "
            f"concurrency {app_settings.TWILIO_SMS_CONCURRENCY}."
        )
        if check:
            return
        verbosity = options["verbosity"]
        level = "DEBUG" if verbosity >= 2 else "WARNING" if verbosity == 0 else "INFO"
        setup_loghandlers(level)
        worker = cast(SmsWorker, get_worker(app_settings.SMS_QUEUE_NAME, worker_class=SmsWorker))
        reset_db_connections()  # the work horse is forked: no shared connection
        worker.work(burst=burst, logging_level=level)
        if worker.unexpected_end:
            raise CommandError("The SMS worker stopped unexpectedly (see the log above).")
