"""Which rows a reconciliation pass asks about: a few bounded queries, oldest first.

``SMS_RECONCILE_AFTER`` keeps a pass off rows whose callbacks are probably on
their way (a message is usually final within seconds to minutes). A message
Twilio reports ``sent`` may never get a delivery receipt (some carriers send
none), so rows handed over are asked about only for ``LOOKBACK`` past the
validity period (after it Twilio itself has given up on delivering), and a
pass takes at most ``MAX_ROWS`` of each kind: a backlog is worked off over
several passes instead of one pass taking an hour of API calls.

Absence (was ``notification.reconciliation.absence``):

When a message missing from the provider's list is provably absent, and what happens then.

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

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q

from notification import delivery as retry
from notification.conf import app_settings
from notification.models import DeliveryStatusChoices as Delivery
from notification.models import Notification, NotificationStatusChoices, SmsNotification
from notification.send.wake import notify_if_urgent
from notification.status.events import notify_status_changed

# -------- rows --------------------------------------------------------------------------

_N = NotificationStatusChoices

MAX_ROWS = 500
LOOKBACK = timedelta(days=1)
#: Delivery statuses that may still change (Twilio's non-final ones, and "sent").
NOT_FINAL = (
    Delivery.NOT_SUBMITTED,
    Delivery.QUEUED,
    Delivery.ACCEPTED,
    Delivery.SCHEDULED,
    Delivery.SENDING,
    Delivery.SENT,
)


@dataclass(frozen=True, slots=True)
class TrackedRow:
    """A row with a sid: fetch it."""

    sms_id: int
    notification_id: int
    sid: str
    notification_status: str
    delivery_status: str


@dataclass(frozen=True, slots=True)
class UnsentRow:
    """An ``unknown`` row without a sid: look for it in the provider's list."""

    sms_id: int
    notification_id: int
    to: str
    sender: str
    body: str
    attempts: int
    send_started: datetime | None
    since: datetime


def _cutoff(now: datetime) -> datetime:
    return now - timedelta(seconds=int(app_settings.SMS_RECONCILE_AFTER))


def tracked_rows(now: datetime) -> list[TrackedRow]:
    """Rows with a sid that are ``unknown``, or handed over with no final status yet."""
    cutoff = _cutoff(now)
    oldest = now - timedelta(seconds=int(app_settings.TWILIO_SMS_VALIDITY_PERIOD)) - LOOKBACK
    handed_over = Q(
        notification__status=_N.SENT,
        delivery_status__in=NOT_FINAL,
        sent_datetime__gte=oldest,
    )
    quiet = Q(status_updated_datetime__lt=cutoff) | Q(
        status_updated_datetime__isnull=True, notification__updated_datetime__lt=cutoff
    )
    rows = (
        SmsNotification.objects.filter(twilio_sid__isnull=False)
        .filter(Q(notification__status=_N.UNKNOWN) | handed_over)
        .filter(quiet)
        .order_by("status_updated_datetime", "pk")
        .values_list(
            "pk", "notification_id", "twilio_sid", "notification__status", "delivery_status"
        )[:MAX_ROWS]
    )
    return [
        TrackedRow(sms_id, notification_id, sid or "", notification_status, delivery_status)
        for sms_id, notification_id, sid, notification_status, delivery_status in rows
    ]


def unsent_rows(now: datetime) -> list[UnsentRow]:
    """``unknown`` rows whose sid we never learned, untouched for ``SMS_RECONCILE_AFTER``."""
    rows = (
        SmsNotification.objects.filter(
            twilio_sid__isnull=True,
            notification__status=_N.UNKNOWN,
            notification__updated_datetime__lt=_cutoff(now),
        )
        .order_by("notification__updated_datetime", "pk")
        .values_list(
            "pk",
            "notification_id",
            "to_phone_number",
            "sender",
            "notification__body",
            "attempts",
            "send_started_datetime",
            "notification__updated_datetime",
        )[:MAX_ROWS]
    )
    return [
        UnsentRow(pk, nid, to, sender, body, attempts, started, started or updated)
        for pk, nid, to, sender, body, attempts, started, updated in rows
    ]


# -------- absence -----------------------------------------------------------------------

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
