"""Recording the price Twilio reports for each sent message, beside our estimate.

Twilio fills a message's ``price`` once the message is final, and its status
callbacks do not carry it, so the price is fetched (``messages(sid).fetch()``
through the backend, ``reported_price``) for final messages that have none yet,
a few per heartbeat run (``notification.jobs.sms``), newest first. The estimate
is what the spend limits count (it is known before sending); the reported price
shows how close the estimate is, per message, in the admin and the API.
"""

import logging
import time
from datetime import datetime, timedelta

from notification.backends import get_backend
from notification.models import DeliveryStatusChoices, SmsNotification

logger = logging.getLogger("notification.guardrails")

#: Statuses after which Twilio's price is final.
FINAL_STATUSES = (
    DeliveryStatusChoices.DELIVERED,
    DeliveryStatusChoices.UNDELIVERED,
    DeliveryStatusChoices.FAILED,
)
#: Messages older than this are not asked about any more.
LOOK_BACK = timedelta(days=7)


def record_reported_prices(now: datetime, *, limit: int = 50, seconds: float = 10.0) -> int:
    """Fetch and store up to ``limit`` reported prices within ``seconds``; returns how many.

    Stops at the first failed request (the API is down: the next run tries again).
    """
    rows = list(
        SmsNotification.objects.filter(
            twilio_sid__isnull=False,
            price__isnull=True,
            delivery_status__in=FINAL_STATUSES,
            sent_datetime__gte=now - LOOK_BACK,
        )
        .order_by("-sent_datetime")
        .only("pk", "twilio_sid")[:limit]
    )
    if not rows:
        return 0
    backend = get_backend()
    deadline = time.monotonic() + seconds
    stored = 0
    for sms in rows:
        if time.monotonic() > deadline:
            break
        if not sms.twilio_sid:
            continue
        try:
            reported = backend.reported_price(sms.twilio_sid)
        except Exception as exc:  # the provider is unreachable: try next run
            logger.warning("sms_price_fetch_failed sid=%s error=%r", sms.twilio_sid, str(exc))
            break
        if reported is None:
            continue
        amount, unit = reported
        stored += SmsNotification.objects.filter(pk=sms.pk, price__isnull=True).update(
            price=amount, price_unit=unit[:8]
        )
    return stored
