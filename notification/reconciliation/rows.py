"""Which rows a reconciliation pass asks about: a few bounded queries, oldest first.

``SMS_RECONCILE_AFTER`` keeps a pass off rows whose callbacks are probably on
their way (a message is usually final within seconds to minutes). A message
Twilio reports ``sent`` may never get a delivery receipt (some carriers send
none), so rows handed over are asked about only for ``LOOKBACK`` past the
validity period (after it Twilio itself has given up on delivering), and a
pass takes at most ``MAX_ROWS`` of each kind: a backlog is worked off over
several passes instead of one pass taking an hour of API calls.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Q

from notification.conf import app_settings
from notification.models import DeliveryStatusChoices as Delivery
from notification.models import NotificationStatusChoices, SmsNotification

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
