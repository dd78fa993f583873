"""Claims left behind by a worker that died (SIGKILL, OOM, lost machine).

Run at the start of every batch. A claim older than ``TWILIO_SMS_CLAIM_TIMEOUT``
belongs to a worker that is gone (a batch takes seconds, the timeout minutes):

* batch never marked started (``send_started_datetime`` empty): nothing left our
  side, so the notification safely goes back to ``pending``;
* batch marked started: the batch's ``DispatchLog`` (a Redis set of the ids
  whose request was about to leave) decides per row. Recovery first *closes*
  the set, so a stalled worker can no longer send any of its rows. Set present
  and the id absent: the request never left → ``pending``. Id present, or the
  set missing (expired, Redis lost or unreachable): it may be at Twilio →
  ``unknown``, never resent blindly (at most once wins): status callbacks kept
  for it (its ``?sms=`` callback URL names it) settle it at once, and the
  reconciliation pass asks Twilio about the rest (``notification.reconciliation``).
"""

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import connection, transaction
from redis.exceptions import RedisError

from notification.events import notify_status_changed
from notification.models import Notification, NotificationStatusChoices, SmsNotification
from notification.sending.dispatch_log import StartedIds
from notification.sending.dispatch_log import settle as settle_dispatch_logs
from notification.tracking.status import settle_unknown_callbacks

logger = logging.getLogger("notification.sending")

UNKNOWN_AFTER_CRASH = (
    "The worker sending this message stopped after its request to Twilio started; "
    "it may or may not have been sent. It is never resent blindly: Twilio's status "
    "callbacks or the reconciliation pass settle it from Twilio's own record."
)
UNKNOWN_DB_UNREACHABLE = (
    "Twilio was asked to send this message, but the database was unreachable while "
    "the worker wrote Twilio's answer (for longer than SMS_RESULT_WRITE_TIMEOUT); "
    "it may or may not have been sent. It is never resent blindly: Twilio's status "
    "callbacks or the reconciliation pass settle it from Twilio's own record."
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
        claimed_datetime__lt=cutoff, notification__status=NotificationStatusChoices.PROCESSING
    )
    if not stale.exists():  # the usual case: one cheap read, no transaction
        return counts
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            stale = stale.select_for_update(skip_locked=True)
        rows = list(
            stale.values_list("pk", "notification_id", "send_started_datetime", "claim_token")
        )
        if not rows:
            return counts
        started_ids = _started_ids({token for _, _, started, token in rows if started})
        requeue, unknown, unwritten = [], [], []
        for pk, nid, started, token in rows:
            if started is None:
                requeue.append((pk, nid))
            elif token in started_ids and pk not in started_ids[token]:
                requeue.append((pk, nid))  # the batch started, but not this request
            elif token in started_ids and started_ids[token].unwritten:
                unwritten.append((pk, nid))  # answered, but the database was away
            else:
                unknown.append((pk, nid))
        if requeue:
            Notification.objects.filter(pk__in=[nid for _, nid in requeue]).update(
                status=NotificationStatusChoices.PENDING, status_message="", updated_datetime=now
            )
        for group, message in ((unknown, UNKNOWN_AFTER_CRASH), (unwritten, UNKNOWN_DB_UNREACHABLE)):
            if group:
                Notification.objects.filter(pk__in=[nid for _, nid in group]).update(
                    status=NotificationStatusChoices.UNKNOWN,
                    status_message=message,
                    updated_datetime=now,
                )
        if requeue:  # provably never sent: no trace of a start left behind
            SmsNotification.objects.filter(pk__in=[pk for pk, _ in requeue]).update(
                send_started_datetime=None
            )
        SmsNotification.objects.filter(pk__in=[pk for pk, *_ in rows]).update(
            claimed_datetime=None, claim_token=""
        )
        counts.requeued, counts.unknown = len(requeue), len(unknown) + len(unwritten)
        ids = [nid for _, nid, *_ in rows]
        now_unknown = [pk for pk, _ in unknown + unwritten]
        transaction.on_commit(lambda: _announce(ids, now_unknown))
    return counts


def _announce(notification_ids: list[int], unknown_sms_ids: list[int]) -> None:
    """After commit: apply the callbacks kept for rows that became unknown, then publish.

    A crashed batch's callbacks arrive while its rows are still claimed, under
    sids we never stored; they are kept (``tracking.early``) and adopt their
    row here, so a message Twilio accepted leaves ``unknown`` now rather than at
    the next reconciliation pass. Those already published their newer status.
    """
    settled = settle_unknown_callbacks(unknown_sms_ids) if unknown_sms_ids else set()
    notify_status_changed(id_ for id_ in notification_ids if id_ not in settled)


def _started_ids(tokens: set[str]) -> dict[str, StartedIds]:
    """Per claim token whose dispatch log still exists, the ids whose request left."""
    if not tokens:
        return {}
    try:
        return settle_dispatch_logs(tokens)
    except RedisError as exc:
        # Without the log nothing proves a request did not leave: all unknown.
        logger.warning("sms_recovery dispatch log unavailable, started rows -> unknown: %s", exc)
        return {}
