"""Apply a normalized status callback to the database, forward only.

Twilio's callbacks arrive late, twice, or out of order. Each status has a rank
(``delivery.statuses``) and a callback only moves an SMS to a strictly higher
rank. The rule is enforced by the UPDATE's own WHERE clause (not by a read
followed by a write), so two callbacks handled at the same moment by two
processes cannot move a status backwards: the database evaluates the condition
against the row it locks.

A failure Twilio reports later (``failed``/``undelivered``) with a *retryable*
code (``delivery.error_codes.RETRYABLE_CODES``: 30001, 30003, 30008,
30036...) gets the send job's rule (``delivery.retry``): back to ``pending``
with backoff until ``TWILIO_SMS_MAX_ATTEMPTS``, then failed
with the last error. The send already counted the attempt (``attempts`` goes up
with each create request), so the callback does not count it twice. The SMS
keeps the error as its last error and gives up its sid (see ``_requeue``).
Permanent codes, 21610 and codes Twilio does not document as transient fail at
once: a message that reached the carrier and failed for an unknown reason is
not worth risking a duplicate for.
"""

import enum
import logging
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from notification import delivery as retry
from notification.conf import app_settings
from notification.delivery import (
    FAILURES,
    NOTIFICATION_MOVES,
    OPT_OUT_CODE,
    REQUEUE_FROM,
    RETRYABLE_CODES,
    SENT_OR_LATER,
    SmsStatusEvent,
    describe_error,
    error_meaning,
    is_known,
    record_twilio_opt_outs,
    status_payload,
    statuses_before,
)
from notification.models import DeliveryStatusChoices as Delivery
from notification.models import Notification, NotificationStatusChoices, SmsNotification
from notification.status import early
from notification.status.early import adopt_sid
from notification.status.events import notify_status_changed
from notification.status.forward import NotificationChange, SmsChange, move_forward

logger = logging.getLogger(__name__)

_N = NotificationStatusChoices


class Outcome(enum.StrEnum):
    UPDATED = "updated"
    STALE = "stale"  # late, repeated or out of order: nothing changed
    UNKNOWN_SID = "unknown_sid"
    UNKNOWN_STATUS = "unknown_status"


@dataclass(frozen=True, slots=True)
class ApplyResult:
    outcome: Outcome
    notification_id: int | None = None
    # What subscribers are sent for an UPDATED result, when the write returned it.
    payload: dict[str, Any] | None = None


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
    if not is_known(event.status):
        logger.warning(
            "Ignoring status callback for %s: unknown status %r", event.message_sid, event.status
        )
        return ApplyResult(Outcome.UNKNOWN_STATUS)

    result = _apply(event)
    if result.outcome is Outcome.UNKNOWN_SID and early.is_retired(event.message_sid):
        logger.info(
            "Late status callback %r for %s, the sid of an attempt that failed and was "
            "re-queued: ignored",
            event.status,
            event.message_sid,
        )
        return ApplyResult(Outcome.STALE)
    if result.outcome is Outcome.UNKNOWN_SID and event.sms_id is not None:
        adopted = apply_adopted(event, source="a status callback")
        if adopted is not None:
            return adopted
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


def apply_adopted(event: SmsStatusEvent, *, source: str) -> ApplyResult | None:
    """Adopt ``event``'s sid for the unknown SMS ``event.sms_id``, then apply the event.

    ``None`` when the row may not adopt it (not unknown, another sid, another
    recipient): the caller goes on as for any unknown sid. Otherwise the result
    is ``UPDATED`` (the notification left ``unknown``), with the payload of the
    status move when the event moved the row further.
    """
    assert event.sms_id is not None
    notification_id = adopt_sid(event.sms_id, event, source=source)
    if notification_id is None:
        return None
    moved = _apply(event)
    payload = moved.payload if moved.outcome is Outcome.UPDATED else None
    return ApplyResult(Outcome.UPDATED, notification_id, payload)


def settle_unknown_callbacks(sms_ids: list[int]) -> set[int]:
    """Apply kept callbacks that name these SMS rows (``?sms=<id>``) now that they are unknown.

    A create whose answer was lost (a timeout after the request left) often has
    its first callbacks arrive while the batch still waits for that answer: the
    row is being sent then, so they are kept as early (``early``), under a sid
    the batch never learns. Once the batch has written the row ``unknown``, the
    first of them adopts its sid (``apply_adopted``) and the rest follow in the
    order they came. Returns the notifications changed (each already published).
    """
    changed: set[int] = set()
    for sids in early.sids_for(sms_ids).values():
        for event in early.take(sids):
            if event.sms_id is None:
                continue
            if SmsNotification.objects.filter(twilio_sid=event.message_sid).exists():
                result = apply_status_event(event, keep_if_early=False)  # publishes
            else:
                adopted = apply_adopted(event, source="a status callback")
                if adopted is None:  # not ours to adopt (any more): keep it as it was
                    early.keep(event)
                    continue
                result = adopted
                if adopted.notification_id is not None:
                    notify_status_changed([adopted.notification_id])
            if result.outcome is Outcome.UPDATED and result.notification_id is not None:
                changed.add(result.notification_id)
    return changed


def settle_early_callbacks(message_sids: list[str]) -> set[int]:
    """Apply status callbacks that came before these sids were stored (usually none).

    The send job's result writer calls this right after it commits the sids its
    create requests returned: that is where a callback that raced the write
    catches up. Returns the notifications it changed (each already published
    with its newer status).
    """
    waiting = early.waiting(sid for sid in message_sids if sid)
    return apply_early_events(waiting) if waiting else set()


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


class _Raced(Exception):
    """The notification moved between our read and our write: roll the change back."""


def _apply(event: SmsStatusEvent) -> ApplyResult:
    if event.error_code == OPT_OUT_CODE:
        numbers = SmsNotification.objects.filter(twilio_sid=event.message_sid).values_list(
            "to_phone_number", flat=True
        )
        record_twilio_opt_outs(list(numbers))
    if event.status in FAILURES and event.error_code in RETRYABLE_CODES:
        try:
            with transaction.atomic():
                return _apply_retryable_failure(event)
        except _Raced:
            logger.info(
                "Status callback %r for %s raced another change", event.status, event.message_sid
            )
            return ApplyResult(Outcome.STALE)
    return _move(event)


#: A missed UPDATE whose row turns out movable is tried again (see ``_move``), this often.
_MOVE_ATTEMPTS = 3


def _move(event: SmsStatusEvent, *, gave_up_after: int | None = None) -> ApplyResult:
    """Move the SMS (and its notification) forward; the common case, two statements.

    An UPDATE that moved nothing is not proof of a stale callback. On PostgreSQL
    (READ COMMITTED) the UPDATE looks for the sid in its statement's snapshot: while
    the send job's result write that stores the sid is still uncommitted, the row
    is not found (and not waited for); if that write commits before the read that
    follows, the sid is there and the callback looked stale. A "delivered" arriving
    milliseconds after its sid was stored was dropped that way, and the message
    stayed "sent" for ever (the subscriber stress test caught it under load). So a
    miss is stale only when the row, read afresh, is at or past this status;
    otherwise the move is tried again against the committed row.
    """
    sms_change = SmsChange(
        delivery_status=event.status,
        at=event.received_at,
        movable_from=statuses_before(event.status),
        set_sent_datetime=event.status in SENT_OR_LATER,
        set_delivered_datetime=event.status == Delivery.DELIVERED,
        error_code=event.error_code,
        error_message=error_meaning(event.error_code, event.error_message)
        if event.error_code is not None
        else "",
    )
    notification_change = _notification_change(event, gave_up_after)
    for _attempt in range(_MOVE_ATTEMPTS):
        moved = move_forward(event.message_sid, sms_change, notification_change)
        if moved is not None:
            break
        row = (
            SmsNotification.objects.filter(twilio_sid=event.message_sid)
            .values_list("notification_id", "delivery_status")
            .first()
        )
        if row is None:
            return ApplyResult(Outcome.UNKNOWN_SID)
        notification_id, delivery_status = row
        if delivery_status not in sms_change.movable_from:
            break  # stale for real: the row is already at or past this status
    if moved is None:
        logger.info(
            "Stale status callback %r for %s: status unchanged", event.status, event.message_sid
        )
        return ApplyResult(Outcome.STALE, notification_id)
    return ApplyResult(Outcome.UPDATED, moved.notification_id, status_payload(moved.payload_row))


def _notification_change(
    event: SmsStatusEvent, gave_up_after: int | None
) -> NotificationChange | None:
    move = NOTIFICATION_MOVES.get(event.status)
    if move is None:
        return None
    new_status, leaves = move
    message = None
    if new_status == _N.FAILED:
        message = _describe_error(event)
        if gave_up_after is not None:
            message = retry.gave_up_message(gave_up_after, message)
    return NotificationChange(
        status=new_status,
        at=event.received_at,
        leaves=leaves,
        set_sent_datetime=new_status in (_N.SENT, _N.DELIVERED),
        status_message=message,
    )


def _apply_retryable_failure(event: SmsStatusEvent) -> ApplyResult:
    """A failure worth another attempt: re-queue it, or fail it at the attempt cap."""
    row = (
        SmsNotification.objects.filter(twilio_sid=event.message_sid)
        .values("pk", "notification_id", "attempts", "notification__status")
        .first()
    )
    if row is None:
        return ApplyResult(Outcome.UNKNOWN_SID)
    if row["notification__status"] not in REQUEUE_FROM:  # canceled, delivered...
        return _move(event)
    if not retry.may_retry(row["attempts"], app_settings.TWILIO_SMS_MAX_ATTEMPTS):
        return _move(event, gave_up_after=row["attempts"])
    if not _requeue(row["pk"], row["notification_id"], row["attempts"], event):
        logger.info(
            "Stale status callback %r for %s: status unchanged", event.status, event.message_sid
        )
        return ApplyResult(Outcome.STALE, row["notification_id"])
    return ApplyResult(Outcome.UPDATED, row["notification_id"])


def _describe_error(event: SmsStatusEvent) -> str:
    return describe_error(event.error_code, event.error_message, status=event.status)


def _requeue(sms_pk: int, notification_id: int, attempts: int, event: SmsStatusEvent) -> bool:
    """Send the message again later, as the send job does with a retryable create error.

    The SMS goes back to "not submitted" without a sid: the next create stores
    its own sid and first status (the send job only fills a blank delivery
    status), the unique sid column never sees the old value twice, and the
    sender's queue estimate stops counting the message (it counts only queued
    or in-flight rows). The old sid is remembered in Redis (``early.retire``)
    so its late callbacks are answered as stale; they could not reach the new
    attempt anyway, since they look the row up by that sid.
    """
    moved = SmsNotification.objects.filter(
        pk=sms_pk,
        twilio_sid=event.message_sid,
        delivery_status__in=statuses_before(event.status),
    ).update(
        twilio_sid=None,
        delivery_status=Delivery.NOT_SUBMITTED,
        error_code=event.error_code,
        error_message=error_meaning(event.error_code, event.error_message),
        next_attempt_datetime=retry.next_attempt_datetime(event.received_at, max(attempts, 1)),
        send_started_datetime=None,
        sent_datetime=None,
        delivered_datetime=None,
        status_updated_datetime=event.received_at,
    )
    if not moved:
        return False
    requeued = Notification.objects.filter(pk=notification_id, status__in=REQUEUE_FROM).update(
        status=_N.PENDING,
        status_message=retry.retry_message(
            attempts, _describe_error(event), message_sid=event.message_sid
        ),
        sent_datetime=None,
        updated_datetime=event.received_at,
    )
    if not requeued:
        raise _Raced
    sid = event.message_sid
    transaction.on_commit(lambda: early.retire(sid, notification_id), robust=True)
    return True
