"""Writing a batch's outcomes back: a constant number of queries per batch.

All rows are written with one ``UPDATE ... FROM (VALUES ...)`` per table (see
``bulk_write``). Both updates are guarded by our claim token, so a row that is
no longer ours (recovered after an implausibly long stall) is never
overwritten. After commit, status callbacks that raced the write are settled
(``announce_written``), then the status-change events fire once. How a failure
is retried and worded is the delivery rules' (``notification.delivery.retry``).
A lost database connection during the write is retried with the answers kept
in memory (``result_retry``).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction

from notification.backends.base import FailureKind, SendFailure
from notification.conf import app_settings
from notification.delivery import retry
from notification.delivery.error_codes import describe_error
from notification.delivery.optouts import opt_out_reason, record_twilio_opt_outs
from notification.events import notify_status_changed
from notification.models import Notification, NotificationStatusChoices, SmsNotification
from notification.sending.bulk_write import update_rows
from notification.sending.claiming import ClaimedBatch
from notification.sending.dispatch import SendOutcome
from notification.sending.result_retry import write_with_retry
from notification.tracking.status import settle_early_callbacks, settle_unknown_callbacks

SMS_FIELDS = [
    "twilio_sid",
    "delivery_status",
    "segments",
    "encoding",
    "error_code",
    "error_message",
    "attempts",
    "next_attempt_datetime",
    "claimed_datetime",
    "claim_token",
    "send_started_datetime",
    "sent_datetime",
    "status_updated_datetime",
]
NOTIFICATION_FIELDS = ["status", "status_message", "sent_datetime", "updated_datetime"]

Status = NotificationStatusChoices


@dataclass
class ResultCounts:
    """How a batch's claimed rows ended.

    Every claimed row lands in exactly one of sent, failed, retried, unknown and
    skipped_opt_out; ``segments`` counts those of the sent messages.
    """

    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0
    skipped_opt_out: int = 0
    segments: int = 0


def _describe(failure: SendFailure) -> str:
    return describe_error(failure.code, failure.message)


def _release_claim(sms: SmsNotification) -> None:
    sms.claimed_datetime = None
    sms.claim_token = ""


def _apply_success(sms: SmsNotification, outcome: SendOutcome, counts: ResultCounts) -> None:
    note = sms.notification
    sms.twilio_sid = outcome.sid
    # The first status only comes in this answer (a callback that raced our
    # write and already moved it on is kept: see ``write_results``).
    sms.delivery_status = outcome.status
    sms.segments = outcome.segments
    sms.error_code, sms.error_message = None, ""
    sms.attempts += 1
    sms.next_attempt_datetime = None
    sms.sent_datetime = outcome.finished_at
    sms.status_updated_datetime = outcome.finished_at
    note.status, note.status_message = Status.SENT, ""
    note.sent_datetime = outcome.finished_at
    counts.sent += 1
    counts.segments += outcome.segments


def _apply_failure(
    sms: SmsNotification,
    failure: SendFailure,
    now: datetime,
    max_attempts: int,
    counts: ResultCounts,
) -> None:
    note = sms.notification
    sms.error_code, sms.error_message = failure.code, failure.message
    sms.attempts += 1
    if failure.kind is FailureKind.AMBIGUOUS:
        # At most once: it may be at Twilio, so it is never resent by itself.
        note.status = Status.UNKNOWN
        note.status_message = retry.ambiguous_message(_describe(failure))
        counts.unknown += 1
        return
    sms.send_started_datetime = None  # answered: certainly not queued at Twilio
    if failure.kind is FailureKind.RETRYABLE and retry.may_retry(sms.attempts, max_attempts):
        sms.next_attempt_datetime = retry.next_attempt_datetime(now, sms.attempts)
        note.status = Status.PENDING
        note.status_message = retry.retry_message(sms.attempts, _describe(failure))
        counts.retried += 1
        return
    note.status = Status.FAILED
    note.status_message = _describe(failure)
    if failure.kind is FailureKind.RETRYABLE:
        note.status_message = retry.gave_up_message(sms.attempts, _describe(failure))
    sms.next_attempt_datetime = None
    counts.failed += 1


def _apply_opt_out(sms: SmsNotification, counts: ResultCounts) -> None:
    reason = opt_out_reason(sms.to_phone_number)
    sms.error_code, sms.error_message = None, reason
    sms.notification.status = Status.FAILED
    sms.notification.status_message = reason
    counts.skipped_opt_out += 1


def _values(instance, fields: list[str]) -> list:
    return [getattr(instance, name) for name in fields]


def write_results(
    batch: ClaimedBatch, outcomes: list[SendOutcome], *, now: datetime, max_attempts: int
) -> ResultCounts:
    """Apply outcomes (and opt-out skips) to the claimed rows and save them.

    The outcomes are applied in memory once; only the save is retried through a
    lost database connection (``result_retry``), so a retry never counts an
    attempt twice. Raises ``ResultsNotWritten`` when the database stayed away
    for ``SMS_RESULT_WRITE_TIMEOUT`` seconds.
    """
    counts = ResultCounts(claimed=batch.claimed)
    by_id = {sms.pk: sms for sms in batch.to_send}
    rows: list[SmsNotification] = []
    opted_out_by_twilio: list[str] = []
    for outcome in outcomes:
        sms = by_id[outcome.request.sms_id]
        if outcome.failure is None:
            _apply_success(sms, outcome, counts)
        else:
            _apply_failure(sms, outcome.failure, now, max_attempts, counts)
            if outcome.failure.is_opt_out:
                opted_out_by_twilio.append(sms.to_phone_number)
        rows.append(sms)
    for sms in batch.opted_out:
        _apply_opt_out(sms, counts)
        rows.append(sms)
    if not rows:
        return counts

    for sms in rows:
        _release_claim(sms)
        sms.notification.updated_datetime = now
    write_with_retry(
        lambda: _save(batch.token, rows, opted_out_by_twilio),
        timeout=float(app_settings.SMS_RESULT_WRITE_TIMEOUT),
    )
    return counts


def _save(token: str, rows: list[SmsNotification], opted_out_by_twilio: list[str]) -> None:
    """One transaction: both tables, the opt-outs, and the announcement after commit."""
    sms_table = connection.ops.quote_name(SmsNotification._meta.db_table)
    with transaction.atomic():
        # Notifications first: their guard looks at the token we clear next.
        update_rows(
            Notification,
            [(sms.notification_id, _values(sms.notification, NOTIFICATION_FIELDS)) for sms in rows],
            NOTIFICATION_FIELDS,
            where_sql=f"t.id IN (SELECT notification_id FROM {sms_table} WHERE claim_token = %s)",
            where_params=[token],
        )
        update_rows(
            SmsNotification,
            [(sms.pk, _values(sms, SMS_FIELDS)) for sms in rows],
            SMS_FIELDS,
            # A status callback may have raced our write: never move it back.
            keep_if_set=["delivery_status"],
            where_sql="t.claim_token = %s",
            where_params=[token],
        )
        record_twilio_opt_outs(opted_out_by_twilio)
        ids = [sms.notification_id for sms in rows]
        sids = [sms.twilio_sid for sms in rows if sms.twilio_sid]
        unknown = [sms.pk for sms in rows if sms.notification.status == Status.UNKNOWN]
        transaction.on_commit(lambda: announce_written(ids, sids, unknown))


def announce_written(
    notification_ids: list[int], stored_sids: list[str], unknown_sms_ids: Sequence[int] = ()
) -> None:
    """After commit: settle callbacks that raced our write, then publish the rest.

    A status callback can reach us before this batch stored the sid it is for;
    it was kept (``tracking.early``) and is applied now that the sid is
    committed. Callbacks naming a row that became ``unknown`` (its answer was
    lost) adopt their sid now. Notifications they moved were published with
    their newer status already, so they are not published again with this
    batch's older one.
    """
    settled = settle_early_callbacks(stored_sids) if stored_sids else set()
    if unknown_sms_ids:
        settled |= settle_unknown_callbacks(list(unknown_sms_ids))
    notify_status_changed(id_ for id_ in notification_ids if id_ not in settled)
