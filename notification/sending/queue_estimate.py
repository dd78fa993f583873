"""How many segments a sender has waiting in Twilio's queue, estimated from our rows.

Twilio drains each sender at a fixed rate (``TWILIO_SMS_RATE`` segments per
second) and refuses new messages (21611) once ``TWILIO_SMS_QUEUE_LIMIT`` are
waiting. We cannot ask Twilio how full the queue is, so we model it as a FIFO
queue fed by our own hand-offs.

**Choice: computed from database rows, not kept in Redis.** The rows already
hold everything needed (``sender``, ``segments``, ``sent_datetime``), every
worker sees the same truth without a second store to keep consistent, and the
status webhook corrects the estimate for free: a message whose callback says it
left the queue (sent, delivered, failed...) stops counting, because only rows
whose last known ``delivery_status`` is queued/accepted/sending are fed in.
Messages being dispatched right now (claimed, no answer yet) count too, at
their claim time, so concurrent workers see each other's in-flight segments.

Draining without callbacks (lost, late, or no public URL) uses the fluid-queue
formula: the backlog now is the largest, over every hand-off time ``t``, of
"segments handed off since ``t``" minus "rate × seconds since ``t``" (never
below zero). Rows older than the validity period cannot still be queued (Twilio
expires them with 30036), so the query only looks that far back.
"""

from datetime import datetime, timedelta

from django.db.models import Q
from django.db.models.functions import Coalesce

from notification.conf import app_settings
from notification.models import DeliveryStatusChoices, SmsNotification

IN_QUEUE_STATUSES = (
    DeliveryStatusChoices.QUEUED,
    DeliveryStatusChoices.ACCEPTED,
    DeliveryStatusChoices.SENDING,
)


def fluid_backlog(handoffs: list[tuple[datetime, int]], now: datetime, rate: float) -> int:
    """Backlog at ``now`` of a queue drained at ``rate`` per second.

    ``handoffs`` are (time, segments) pairs in any order.
    """
    backlog = 0.0
    arrived_since = 0
    for at, segments in sorted(handoffs, key=lambda item: item[0], reverse=True):
        arrived_since += segments
        elapsed = max(0.0, (now - at).total_seconds())
        backlog = max(backlog, arrived_since - rate * elapsed)
    return int(backlog + 0.999999)  # round up: better to wait than to overflow


def estimate_queue(sender: str, now: datetime) -> int:
    """Estimated segments waiting in Twilio's queue for ``sender`` (one query)."""
    if not sender:
        return 0
    window_start = now - timedelta(seconds=app_settings.TWILIO_SMS_VALIDITY_PERIOD)
    rows = (
        SmsNotification.objects.filter(sender=sender)
        .filter(
            Q(delivery_status__in=IN_QUEUE_STATUSES, sent_datetime__gte=window_start)
            | Q(delivery_status="", claimed_datetime__gte=window_start)  # in flight
        )
        .annotate(handed_off_at=Coalesce("sent_datetime", "claimed_datetime"))
        .values_list("handed_off_at", "segments")
    )
    return fluid_backlog(list(rows), now, app_settings.TWILIO_SMS_RATE)
