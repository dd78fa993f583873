"""django-spire's own SMS job, run against our Twilio emulator: the peer of ``bench/send.py``.

This file runs **inside the peer's virtualenv** (``.bench/spire-venv``, Python >= 3.12,
``django-spire==1.3.0`` and its pinned Django 6 / twilio 9.12; ``bench/send.py``
builds it), never in the project's: it imports nothing from this repository.

It configures a minimal Django project with django-spire's notification apps,
migrates its own database (``--database-url``: a separate database in the bench's
PostgreSQL cluster, or its own SQLite file), creates ``--messages`` due SMS
notifications (``Notification`` type ``sms`` + ``SmsNotification``, bulk-created as
an import would), prints ``ready``, waits for a line on stdin, then runs the job a
django-spire project schedules (celery beat): ``django_spire.notification.
automations.process_notifications`` → ``NotificationManager().process_ready_
notifications()`` → ``SMSNotificationProcessor.process_list``, which sends each
message with ``client.messages.create`` one after the other through one SDK
client, then ``bulk_update``\\s every row at once. It prints one JSON line:
seconds, messages sent (rows now ``sent``), SQL statements and CPU seconds of this
process.

Two settings shape the peer, both said in the README: django-spire sleeps 60 s
every ``TWILIO_SMS_BATCH_SIZE`` segments (its rate limit), so the setting is set
above the run's size (we measure its sending, not its sleep); and the SDK has no
base-URL setting, so ``TwilioHttpClient.request`` gets the same host rewrite our
``BaseUrlHttpClient`` does (``notification.backends.twilio``) — scheme,
host and port only; every other line of the SDK runs as shipped.
"""

import argparse
import json
import sys
import time
from urllib.parse import urlsplit, urlunsplit

ACCOUNT_SID = "AC" + "be7c4be7" * 4
AUTH_TOKEN = "be7c4be7" * 4
FROM_NUMBER = "+15005550006"


def database_settings(url: str) -> dict:
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parts.path}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parts.path.lstrip("/"),
        "USER": parts.username or "",
        "PASSWORD": parts.password or "",
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
    }


def configure(database_url: str, messages: int) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-peer-only",
        USE_TZ=True,
        DATABASES={"default": database_settings(database_url)},
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sites",
            "django_spire.core",
            "django_spire.history",
            "django_spire.history.viewed",
            "django_spire.notification",
            "django_spire.notification.sms",
        ],
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        TWILIO_PHONE_NUMBER=FROM_NUMBER,
        # Above the run's segments: its 60 s sleep per batch never fires (see docstring).
        TWILIO_SMS_BATCH_SIZE=10 * messages + 1000,
        DJANGO_SPIRE_NOTIFICATION_THROTTLE_RATE_PER_MINUTE=100,
        LOGGING_CONFIG=None,
    )
    django.setup()


def point_sdk_at(base_url: str) -> None:
    """The host rewrite our own client does (no other change to the SDK)."""
    from twilio.http.http_client import TwilioHttpClient

    target = urlsplit(base_url)
    original = TwilioHttpClient.request

    def request(self, method, url, *args, **kwargs):
        parts = urlsplit(url)
        url = urlunsplit((target.scheme, target.netloc, parts.path, parts.query, parts.fragment))
        return original(self, method, url, *args, **kwargs)

    TwilioHttpClient.request = request


def seed(count: int) -> None:
    from django.utils import timezone
    from django_spire.notification.choices import NotificationTypeChoices
    from django_spire.notification.models import Notification
    from django_spire.notification.sms.models import SmsNotification

    publish = timezone.now() - timezone.timedelta(seconds=5)
    Notification.objects.all().delete()
    notifications = Notification.objects.bulk_create(
        Notification(
            type=NotificationTypeChoices.SMS,
            title=f"n{i}",
            body=f"message {i}",
            publish_datetime=publish,
        )
        for i in range(count)
    )
    SmsNotification.objects.bulk_create(
        SmsNotification(notification=n, to_phone_number=f"415555{i % 10000:04d}")
        for i, n in enumerate(notifications)
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--messages", type=int, required=True)
    args = parser.parse_args()

    configure(args.database_url, args.messages)
    point_sdk_at(args.emulator)
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    seed(args.messages)

    from django.db import connection
    from django_spire.notification.automations import process_notifications
    from django_spire.notification.choices import NotificationStatusChoices
    from django_spire.notification.models import Notification

    statements = 0

    def count(execute, sql, params, many, context):
        nonlocal statements
        statements += 1
        return execute(sql, params, many, context)

    connection.ensure_connection()
    print("ready", flush=True)
    sys.stdin.readline()
    cpu, start = time.process_time(), time.monotonic()
    with connection.execute_wrapper(count):
        process_notifications()  # closes the connection when done (its decorator)
    seconds, cpu = time.monotonic() - start, time.process_time() - cpu
    sent = Notification.objects.filter(status=NotificationStatusChoices.SENT).count()
    print(json.dumps({"seconds": seconds, "sent": sent, "sql": statements, "cpu": cpu}))


if __name__ == "__main__":
    main()
