"""When a message missing from the provider's list is provably absent, and what happens then.

Twilio's Messages list filters on the *sent* date (``DateSent``), and a message
still waiting in the sender's queue has none: it is not in a filtered listing
until it leaves the queue. So "not in the list" proves "never accepted" only
once every message accepted when ours was sent would have left the queue:
Twilio drains a sender at its rate and never holds more than our queue limit
(``TWILIO_SMS_QUEUE_LIMIT / TWILIO_SMS_RATE`` seconds), and gives up on a
message after its validity period, whichever comes first. Before that moment
the row stays ``unknown`` and the next pass asks again.

A provably absent message goes back to ``pending`` and is sent again, once:
the guarded UPDATE (still ``unknown``, still no sid, the same request start)
lets only one pass do it, and a resend that starts a new request changes the
start, so a later pass cannot resend it a second time on old evidence. The
lost attempt stays counted (a row recovered from a dead worker counts as one
attempt), so ``TWILIO_SMS_MAX_ATTEMPTS`` still bounds the total.
"""

from datetime import datetime, timedelta

from django.db import transaction

from notification.conf import app_settings
from notification.delivery import retry
from notification.events import notify_status_changed
from notification.models import Notification, NotificationStatusChoices, SmsNotification
from notification.reconciliation.rows import UnsentRow
from notification.sending.wake import notify_if_urgent

_N = NotificationStatusChoices

#: Allowance for the clock difference between us and the provider.
CLOCK_SLACK = timedelta(minutes=5)


def absent_after(row: UnsentRow) -> datetime:
    """The moment a message sent at ``row.since`` would be in the provider's sent list."""
    drain = app_settings.TWILIO_SMS_QUEUE_LIMIT / max(app_settings.TWILIO_SMS_RATE, 0.001)
    longest_wait = min(float(app_settings.TWILIO_SMS_VALIDITY_PERIOD), drain)
    return row.since + timedelta(seconds=longest_wait) + CLOCK_SLACK


def send_again(row: UnsentRow, now: datetime, evidence: str) -> str | None:
    """Put a provably absent message back to ``pending`` (or fail it at the attempt cap).

    Returns the new notification status, or ``None`` when the row changed meanwhile.
    """
    attempts = max(row.attempts, 1)
    may_retry = retry.may_retry(attempts, app_settings.TWILIO_SMS_MAX_ATTEMPTS)
    with transaction.atomic():
        moved = SmsNotification.objects.filter(
            pk=row.sms_id,
            twilio_sid__isnull=True,
            send_started_datetime=row.send_started,
            notification__status=_N.UNKNOWN,
        ).update(
            attempts=attempts,
            send_started_datetime=None,
            next_attempt_datetime=None,
            claimed_datetime=None,
            claim_token="",
            status_updated_datetime=now,
        )
        if not moved:
            return None
        if may_retry:
            status = _N.PENDING
            message = f"{evidence}: it never reached Twilio, so it is sent again (once)."
        else:
            status = _N.FAILED
            message = retry.gave_up_message(attempts, f"{evidence}: it never reached Twilio")
        Notification.objects.filter(pk=row.notification_id, status=_N.UNKNOWN).update(
            status=status, status_message=message, sent_datetime=None, updated_datetime=now
        )
        notify_status_changed([row.notification_id])
        if status == _N.PENDING:
            notify_if_urgent(list(Notification.objects.filter(pk=row.notification_id)))
    return status


def note(row: UnsentRow, message: str) -> None:
    """Say on the still ``unknown`` notification what the last pass found (no status change)."""
    Notification.objects.filter(pk=row.notification_id, status=_N.UNKNOWN).update(
        status_message=message
    )
