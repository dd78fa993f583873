"""Claims left behind by a worker that died (SIGKILL, OOM, lost machine).

Run at the start of every batch. A claim older than ``TWILIO_SMS_CLAIM_TIMEOUT``
belongs to a worker that is gone (a batch takes seconds, the timeout minutes):

* request never started (``send_started_at`` empty): nothing left our side, so
  the notification safely goes back to ``pending``;
* request started: it may be at Twilio, so the notification becomes
  ``unknown`` and is never resent automatically.
"""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction

from notification.events import notify_status_changed
from notification.models import Notification, NotificationStatusChoices, SmsNotification

UNKNOWN_AFTER_CRASH = (
    "The worker sending this message stopped after its request to Twilio started; "
    "it may or may not have been sent. It will not be resent automatically."
)


@dataclass
class RecoveryCounts:
    requeued: int = 0
    unknown: int = 0


def recover_stale_claims(now: datetime, claim_timeout_seconds: int) -> RecoveryCounts:
    """Release or settle stale claims; a constant number of queries."""
    counts = RecoveryCounts()
    cutoff = now - timedelta(seconds=claim_timeout_seconds)
    stale = SmsNotification.objects.filter(
        claimed_at__lt=cutoff, notification__status=NotificationStatusChoices.PROCESSING
    )
    if not stale.exists():  # the usual case: one cheap read, no transaction
        return counts
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            stale = stale.select_for_update(skip_locked=True)
        rows = list(stale.values_list("pk", "notification_id", "send_started_at"))
        if not rows:
            return counts
        requeue = [(pk, nid) for pk, nid, started in rows if started is None]
        settle = [(pk, nid) for pk, nid, started in rows if started is not None]
        if requeue:
            Notification.objects.filter(pk__in=[nid for _, nid in requeue]).update(
                status=NotificationStatusChoices.PENDING, status_message="", updated_datetime=now
            )
        if settle:
            Notification.objects.filter(pk__in=[nid for _, nid in settle]).update(
                status=NotificationStatusChoices.UNKNOWN,
                status_message=UNKNOWN_AFTER_CRASH,
                updated_datetime=now,
            )
        SmsNotification.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(
            claimed_at=None, claim_token=""
        )
        counts.requeued, counts.unknown = len(requeue), len(settle)
        ids = [nid for _, nid, _ in rows]
        transaction.on_commit(lambda: notify_status_changed(ids))
    return counts
