"""The per-recipient cap (``SMS_RECIPIENT_DAILY_LIMIT``): messages one number may be
sent in any 24 hours, counted when they are created.

One number flooded is a harassment complaint, a carrier filtering our sender, and,
when the number is an attacker's premium range, money; the cap is checked where a
client can be told (a field error, code ``recipient_limit_reached``), over the
rows created in the last 24 hours plus the request's own items. Canceled
notifications never went out and do not count.

Concurrent creates for the same number are serialised on PostgreSQL
(``pg_advisory_xact_lock`` per number, taken in sorted order so two bulk requests
cannot deadlock), so the cap holds with any number of web processes; SQLite
serialises writers anyway.
"""

from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count

from notification.conf import app_settings
from notification.models import NotificationStatusChoices, SmsNotification

CODE = "recipient_limit_reached"
WINDOW = timedelta(hours=24)


def cap_errors(numbers: Sequence[tuple[int, str]], now: datetime) -> dict[int, ValidationError]:
    """``{index: error}`` for the items (index, E.164) that would pass the cap.

    Call inside the creating transaction: on PostgreSQL it locks the numbers until
    the transaction ends, so the count cannot be raced.
    """
    limit = int(app_settings.SMS_RECIPIENT_DAILY_LIMIT or 0)
    if not limit or not numbers:
        return {}
    distinct = sorted({number for _, number in numbers})
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext('sms-recipient:' || n)) "
                "FROM unnest(%s::text[]) AS n ORDER BY n",
                [distinct],
            )
    sent = Counter(
        dict(
            SmsNotification.objects.filter(
                to_phone_number__in=distinct, notification__created_datetime__gte=now - WINDOW
            )
            .exclude(notification__status=NotificationStatusChoices.CANCELED)
            .values_list("to_phone_number")
            .annotate(n=Count("id"))
            .values_list("to_phone_number", "n")
        )
    )
    errors = {}
    for index, number in numbers:
        sent[number] += 1
        if sent[number] > limit:
            errors[index] = ValidationError(
                "%(number)s has been sent %(limit)d messages in the last 24 hours "
                "(SMS_RECIPIENT_DAILY_LIMIT); try again later.",
                code=CODE,
                params={"number": number, "limit": limit},
            )
    return errors
