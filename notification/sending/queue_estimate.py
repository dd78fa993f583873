"""How many segments a sender has waiting in Twilio's queue, estimated from our rows.

Twilio drains each sender at a fixed rate (``TWILIO_SMS_RATE`` segments per
second) and refuses new messages (21611) once ``TWILIO_SMS_QUEUE_LIMIT`` are
waiting. We cannot ask Twilio how full the queue is, so we model it as a FIFO
queue fed by our own hand-offs.

**Choice: computed from database rows, not kept in Redis.** The rows already
hold everything needed (``sender``, ``segments``, ``sent_datetime``: the
hand-off time, which callbacks never move), every worker sees the same truth
without a second store to keep consistent. Messages being dispatched right now
(claimed, no answer yet) count too, at their claim time, so concurrent workers
see each other's in-flight segments.

Two upper bounds, and the estimate is the smaller:

* **The fluid formula** over *every* hand-off in the window, including rows
  whose callbacks say they have left: the backlog now is the largest, over
  every hand-off time ``t``, of "segments handed off since ``t``" minus "rate ×
  seconds since ``t``" (never below zero). The rows that left must stay in:
  in a FIFO queue they used the drain that the formula credits, so feeding it
  only the rows still queued let them drain a second time (40 handed off at
  t0, 20 gone at t0+1 s at 20/s: the queue holds 20, the formula without the
  gone ones said 0, and a paced run topped up again, so HIGH waited 2.5× the
  target with callbacks on; issue 21).
* **What callbacks say is still queued**: segments of rows whose last known
  status is queued/accepted/sending, plus the in-flight ones. Without
  callbacks every row stays "queued", so this bound is loose and the fluid
  one decides; with callbacks it is the truth up to their delay.

The estimate never goes below what is known to be waiting: the in-flight
segments (answered or not, they are entering the queue now). Rows older than
the validity period cannot still be queued (Twilio expires them with 30036),
so the query only looks that far back.
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


def combine(handoffs: list[tuple[datetime, int, str]], now: datetime, rate: float) -> int:
    """The estimate from (hand-off time, segments, delivery status) rows (see the module).

    A delivery status of ``""`` is a claim in flight (no answer from Twilio yet).
    """
    fluid = fluid_backlog([(at, segments) for at, segments, _status in handoffs], now, rate)
    in_flight = sum(segments for _at, segments, status in handoffs if not status)
    reported = in_flight + sum(
        segments for _at, segments, status in handoffs if status in IN_QUEUE_STATUSES
    )
    return max(in_flight, min(fluid, reported))


def estimate_queue(sender: str, now: datetime) -> int:
    """Estimated segments waiting in Twilio's queue for ``sender`` (one query)."""
    if not sender:
        return 0
    window_start = now - timedelta(seconds=app_settings.TWILIO_SMS_VALIDITY_PERIOD)
    rows = (
        SmsNotification.objects.filter(sender=sender)
        .filter(
            # Every hand-off in the window, whatever its status now (see ``combine``).
            Q(sent_datetime__gte=window_start)
            | Q(delivery_status="", claimed_datetime__gte=window_start)  # in flight
        )
        .annotate(handed_off_at=Coalesce("sent_datetime", "claimed_datetime"))
        .values_list("handed_off_at", "segments", "delivery_status")
    )
    return combine(list(rows), now, app_settings.TWILIO_SMS_RATE)
