"""Apply a normalized status callback to the database, forward only.

Twilio's callbacks arrive late, twice, or out of order. Each status has a rank
and a callback only moves an SMS to a strictly higher rank. The rule is enforced
by the UPDATE's own WHERE clause (not by a read followed by a write), so two
callbacks handled at the same moment by two processes cannot move a status
backwards: the database evaluates the condition against the row it locks.
"""

import enum
import logging
from dataclasses import dataclass

from django.db import transaction
from django.db.models import Value
from django.db.models.functions import Coalesce

from notification.events import notify_status_changed
from notification.models import (
    DeliveryStatusChoices as Delivery,
)
from notification.models import (
    Notification,
    NotificationStatusChoices,
    SmsNotification,
)
from notification.sending.errors import OPT_OUT_CODE
from notification.sending.optouts import record_twilio_opt_outs
from notification.webhooks import early
from notification.webhooks.errors import error_meaning
from notification.webhooks.events import SmsStatusEvent

logger = logging.getLogger(__name__)

# queued/accepted/scheduled < sending < sent < delivered/undelivered/failed < read
STATUS_RANK: dict[str, int] = {
    Delivery.NOT_SUBMITTED: 0,
    Delivery.QUEUED: 1,
    Delivery.ACCEPTED: 1,
    Delivery.SCHEDULED: 1,
    Delivery.SENDING: 2,
    Delivery.SENT: 3,
    Delivery.DELIVERED: 4,
    Delivery.UNDELIVERED: 4,
    Delivery.FAILED: 4,
    Delivery.PARTIALLY_DELIVERED: 4,
    Delivery.CANCELED: 4,
    Delivery.READ: 5,
}

_N = NotificationStatusChoices
# The notification's own status each delivery status leads to, and the
# notification statuses it may leave (a delivered or canceled one never moves).
_NOTIFICATION_MOVES: dict[str, tuple[str, frozenset[str]]] = {
    Delivery.SENDING: (_N.SENT, frozenset({_N.PROCESSING, _N.UNKNOWN})),
    Delivery.SENT: (_N.SENT, frozenset({_N.PROCESSING, _N.UNKNOWN})),
    Delivery.DELIVERED: (_N.DELIVERED, frozenset({_N.PROCESSING, _N.SENT, _N.UNKNOWN})),
    Delivery.READ: (_N.DELIVERED, frozenset({_N.PROCESSING, _N.SENT, _N.UNKNOWN})),
    Delivery.UNDELIVERED: (_N.FAILED, frozenset({_N.PROCESSING, _N.SENT, _N.UNKNOWN})),
    Delivery.FAILED: (_N.FAILED, frozenset({_N.PROCESSING, _N.SENT, _N.UNKNOWN})),
    Delivery.CANCELED: (_N.CANCELED, frozenset({_N.PROCESSING, _N.SENT, _N.UNKNOWN})),
}
_SENT_OR_LATER = frozenset(status for status, rank in STATUS_RANK.items() if rank >= 3)


class Outcome(enum.StrEnum):
    UPDATED = "updated"
    STALE = "stale"  # late, repeated or out of order: nothing changed
    UNKNOWN_SID = "unknown_sid"
    UNKNOWN_STATUS = "unknown_status"


@dataclass(frozen=True, slots=True)
class ApplyResult:
    outcome: Outcome
    notification_id: int | None = None


def statuses_before(status: str) -> list[str]:
    """Every delivery status an SMS may move to ``status`` from."""
    rank = STATUS_RANK[status]
    return [earlier for earlier, earlier_rank in STATUS_RANK.items() if earlier_rank < rank]


def apply_status_event(event: SmsStatusEvent, *, keep_if_early: bool = True) -> ApplyResult:
    """Record a status callback and publish the change (after commit). For synchronous callers."""
    result = record_status_event(event, keep_if_early=keep_if_early)
    if result.outcome is Outcome.UPDATED and result.notification_id is not None:
        notify_status_changed([result.notification_id])
    return result


def record_status_event(event: SmsStatusEvent, *, keep_if_early: bool = True) -> ApplyResult:
    """Record a status callback in the database; the caller publishes an ``UPDATED`` result.

    A callback for a sid we do not know yet is usually early, not wrong: Twilio
    can report "sent" before the send job has stored the sid its create request
    returned. Such events are kept for a while (``early``) and applied when the
    sid appears; ``keep_if_early=False`` is for applying those kept events.
    """
    if event.status not in STATUS_RANK or event.status == Delivery.NOT_SUBMITTED:
        logger.warning(
            "Ignoring status callback for %s: unknown status %r", event.message_sid, event.status
        )
        return ApplyResult(Outcome.UNKNOWN_STATUS)

    result = _apply(event)
    if result.outcome is Outcome.UNKNOWN_SID and keep_if_early:
        # 200 all the same: Twilio would otherwise retry a callback we cannot use yet.
        logger.warning(
            "Status callback %r for unknown message sid %s (kept in case the sid is being stored)",
            event.status,
            event.message_sid,
        )
        early.keep(event)
        # The send job may have committed the sid between our lookup and keep():
        # it then found nothing kept, so settle it here. Applying twice is harmless.
        if SmsNotification.objects.filter(twilio_sid=event.message_sid).exists():
            apply_early_events([event.message_sid])
    return result


def apply_early_events(message_sids: list[str]) -> set[int]:
    """Apply kept early callbacks for these (now stored) sids; returns the notifications changed.

    Each change is published by ``apply_status_event`` itself.
    """
    changed: set[int] = set()
    for event in early.take(message_sids):
        result = apply_status_event(event, keep_if_early=False)
        if result.outcome is Outcome.UPDATED and result.notification_id is not None:
            changed.add(result.notification_id)
    return changed


def _apply(event: SmsStatusEvent) -> ApplyResult:
    with transaction.atomic():
        row = (
            SmsNotification.objects.filter(twilio_sid=event.message_sid)
            .values("pk", "notification_id", "to_phone_number")
            .first()
        )
        if row is None:
            return ApplyResult(Outcome.UNKNOWN_SID)

        if event.error_code == OPT_OUT_CODE:
            record_twilio_opt_outs([row["to_phone_number"]])

        changed = _advance_sms(row["pk"], event)
        if not changed:
            logger.info(
                "Stale status callback %r for %s: status unchanged",
                event.status,
                event.message_sid,
            )
            return ApplyResult(Outcome.STALE, row["notification_id"])

        _advance_notification(row["notification_id"], event)
    return ApplyResult(Outcome.UPDATED, row["notification_id"])


def _advance_sms(sms_pk: int, event: SmsStatusEvent) -> bool:
    changes: dict[str, object] = {
        "delivery_status": event.status,
        "status_updated_datetime": event.received_at,
    }
    if event.status in _SENT_OR_LATER:
        changes["sent_datetime"] = Coalesce("sent_datetime", Value(event.received_at))
    if event.status == Delivery.DELIVERED:
        changes["delivered_datetime"] = event.received_at
    if event.error_code is not None:
        changes["error_code"] = event.error_code
        changes["error_message"] = error_meaning(event.error_code, event.error_message)
    updated = SmsNotification.objects.filter(
        pk=sms_pk, delivery_status__in=statuses_before(event.status)
    ).update(**changes)
    return updated == 1


def _advance_notification(notification_id: int, event: SmsStatusEvent) -> None:
    move = _NOTIFICATION_MOVES.get(event.status)
    if move is None:
        return
    new_status, leaves = move
    changes: dict[str, object] = {"status": new_status, "updated_datetime": event.received_at}
    if new_status in (_N.SENT, _N.DELIVERED):
        changes["sent_datetime"] = Coalesce("sent_datetime", Value(event.received_at))
    if new_status == _N.FAILED:
        if event.error_code is not None:
            meaning = error_meaning(event.error_code, event.error_message)
            changes["status_message"] = f"Twilio error {event.error_code}: {meaning}"
        else:
            changes["status_message"] = event.error_message or f"Twilio reported {event.status}"
    Notification.objects.filter(pk=notification_id, status__in=leaves).update(**changes)
