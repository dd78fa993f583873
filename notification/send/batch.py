"""One send batch, start to finish, and its structured log line.

recover stale claims → claim (budget + queue limit + opt-outs) → open the
batch's dispatch log (Redis) → mark started (one UPDATE) → dispatch
concurrently, recording each request's start in the log right before it leaves
→ write all results → drop the log → one log line. The number of SQL queries is
the same whatever the batch size (the per-request record is a Redis call).

Recovery (was ``notification.sending.recovery``):

Claims left behind by a worker that died (SIGKILL, OOM, lost machine).

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
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone
from redis.exceptions import RedisError

from notification.backends import get_backend
from notification.backends.base import BaseSmsBackend
from notification.conf import app_settings
from notification.connections import ResultsNotWritten
from notification.models import Notification, NotificationStatusChoices, SmsNotification
from notification.send.claim import (
    WAIT_BUDGET,
    WAIT_TARGET,
    ClaimedBatch,
    claim_batch,
    effective_segments,
    mark_send_started,
)
from notification.send.dispatch import (
    Dispatcher,
    DispatchLog,
    SendOutcome,
    SendRequest,
    StartedIds,
    current_sender,
)
from notification.send.dispatch import settle as settle_dispatch_logs
from notification.send.results import ResultCounts, write_results
from notification.status.apply import settle_unknown_callbacks
from notification.status.events import notify_status_changed

# -------- recovery ----------------------------------------------------------------------

logger = logging.getLogger("notification.send")

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


# -------- batch -------------------------------------------------------------------------


@dataclass
class BatchReport(ResultCounts):
    """The result counts plus what shaped the batch; ``claimed`` leads the log line."""

    queue_estimate: int = 0
    #: Segments a paced run keeps queued at the provider (0: an unpaced batch).
    queue_target: int = 0
    #: How much of the target the queue holds after this batch (estimate + segments).
    target_filled_pct: int = 0
    recovered_pending: int = 0
    recovered_unknown: int = 0
    wait_reason: str = ""
    #: Rows the guardrails held back (still pending) or refused (failed, never sent).
    held: int = 0
    refused: int = 0
    #: Claimed rows released by recovery before we started them (a stalled worker).
    lost_claims: int = 0
    duration_ms: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def log_line(self) -> str:
        """logfmt, so log search can filter on any field."""
        parts = []
        for key, value in self.as_dict().items():
            text = str(value)
            parts.append(f'{key}="{text}"' if (" " in text or not text) else f"{key}={text}")
        return "sms_batch " + " ".join(parts)


def _filled_pct(queued: int, target: int | None) -> int:
    return round(100 * queued / target) if target else 0


def _claim(now: datetime, batch_segments: int | None, queue_target: int | None) -> ClaimedBatch:
    """Claim the batch, logging why it came out smaller than a full one (unless paced)."""
    batch = claim_batch(
        now=now,
        sender=current_sender(),
        batch_segments=batch_segments or app_settings.TWILIO_SMS_BATCH_SIZE,
        queue_limit=app_settings.TWILIO_SMS_QUEUE_LIMIT,
        queue_target=queue_target,
    )
    if batch.wait_reason and batch.wait_reason != WAIT_TARGET:
        logger.info(
            "sms_batch_shrunk reason=%r queue_estimate=%d queue_limit=%d",
            batch.wait_reason,
            batch.queue_estimate,
            app_settings.TWILIO_SMS_QUEUE_LIMIT,
        )
    return batch


def _dispatch(
    batch: ClaimedBatch,
    clock: Callable[[], datetime],
    concurrency: int | None,
    backend_factory: Callable[[], BaseSmsBackend] | None,
) -> tuple["Future[list[SendOutcome]]", DispatchLog | None]:
    """Queue the claimed rows on the sending threads, each recorded in the batch's
    dispatch log as it leaves; returns without waiting for the answers."""
    if not batch.to_send:
        nothing: Future[list[SendOutcome]] = Future()
        nothing.set_result([])
        return nothing, None
    dispatch_log = DispatchLog(batch.token)
    try:
        dispatch_log.open()
    except RedisError as exc:
        # Nothing will leave: each request's record_start is refused, so every
        # row comes back as a retryable "not sent" outcome.
        logger.warning("sms_batch dispatch log unavailable, sending nothing: %s", exc)
    mark_send_started(batch, clock())
    dispatcher = Dispatcher(
        concurrency or app_settings.TWILIO_SMS_CONCURRENCY,
        backend_factory or get_backend,
        record_start=dispatch_log.record_start,
        record_start_async=dispatch_log.record_start_async,
    )
    answers = dispatcher.submit_all(
        [
            SendRequest(sms.pk, sms.to_phone_number, sms.notification.body, sms.segments)
            for sms in batch.to_send
        ]
    )
    return answers, dispatch_log


def _write_and_close_log(
    batch: ClaimedBatch,
    outcomes: list[SendOutcome],
    dispatch_log: DispatchLog | None,
    now: datetime,
) -> ResultCounts:
    """Write the results, then drop the dispatch log (or mark it unwritten for recovery)."""
    try:
        counts = write_results(
            batch, outcomes, now=now, max_attempts=app_settings.TWILIO_SMS_MAX_ATTEMPTS
        )
    except ResultsNotWritten:
        # The rows stay claimed: recovery settles them (unknown, "database unreachable").
        if dispatch_log is not None:
            dispatch_log.mark_unwritten()
        raise
    if dispatch_log is not None:
        dispatch_log.discard()  # results are written: recovery will not need it
    return counts


@dataclass
class InFlightBatch:
    """A claimed batch whose requests are queued on the sending threads, not yet written.

    ``start_batch`` makes one, ``finish_batch`` waits for its answers and writes
    them. Between the two the worker may start the next batch (``run_paced``):
    each batch has its own claim token, dispatch log and send-started mark, all
    in place before its first request can leave, so two batches in flight are,
    for exactly-once and for recovery, two independent batches.
    """

    batch: ClaimedBatch
    recovered: RecoveryCounts
    #: Every request's outcome, in order, once the last one is answered.
    answers: "Future[list[SendOutcome]]"
    dispatch_log: DispatchLog | None
    clock: Callable[[], datetime]
    queue_target: int | None
    started: float
    #: The claim was cut, or filled, by the batch size (not the target, not the
    #: end of the due rows): more is probably due right now.
    more_due: bool = False


def start_batch(
    *,
    now: datetime | None = None,
    batch_segments: int | None = None,
    concurrency: int | None = None,
    backend_factory: Callable[[], BaseSmsBackend] | None = None,
    queue_target: int | None = None,
) -> InFlightBatch:
    """Recover, claim, mark started and queue the requests; return without waiting."""
    started = time.monotonic()
    fixed_now = now  # tests may pin the clock; otherwise each step reads it afresh

    def clock() -> datetime:
        return fixed_now or timezone.now()

    now = clock()
    recovered = recover_stale_claims(now, app_settings.TWILIO_SMS_CLAIM_TIMEOUT)
    batch = _claim(now, batch_segments, queue_target)
    answers, dispatch_log = _dispatch(batch, clock, concurrency, backend_factory)
    full_size = batch_segments or app_settings.TWILIO_SMS_BATCH_SIZE
    filled = sum(effective_segments(sms) for sms in batch.to_send) >= full_size
    more_due = batch.wait_reason == WAIT_BUDGET or (filled and batch.budget >= full_size)
    return InFlightBatch(
        batch, recovered, answers, dispatch_log, clock, queue_target, started, more_due
    )


def finish_batch(flight: InFlightBatch) -> BatchReport:
    """Wait for the batch's answers, write them, drop its dispatch log, log one line."""
    batch, recovered, queue_target = flight.batch, flight.recovered, flight.queue_target
    outcomes = flight.answers.result()
    counts = _write_and_close_log(batch, outcomes, flight.dispatch_log, flight.clock())
    report = BatchReport(
        **asdict(counts),
        queue_estimate=batch.queue_estimate,
        queue_target=queue_target or 0,
        target_filled_pct=_filled_pct(batch.queue_estimate + counts.segments, queue_target),
        recovered_pending=recovered.requeued,
        recovered_unknown=recovered.unknown,
        wait_reason=batch.wait_reason or "",
        held=batch.held,
        refused=batch.refused,
        lost_claims=len(batch.lost),
        duration_ms=round((time.monotonic() - flight.started) * 1000),
    )
    # A paced run polls every second or so: its empty polls are not worth a line each.
    busy = report.claimed or recovered.requeued or recovered.unknown or batch.held or batch.refused
    quiet = queue_target is not None and not busy
    logger.log(logging.DEBUG if quiet else logging.INFO, report.log_line())
    return report


def run_batch(
    *,
    now: datetime | None = None,
    batch_segments: int | None = None,
    concurrency: int | None = None,
    backend_factory: Callable[[], BaseSmsBackend] | None = None,
    queue_target: int | None = None,
) -> BatchReport:
    """Run one batch now (no overlap lock: see ``notification.jobs.sms`` for the scheduled run).

    ``queue_target`` (segments) caps the claim at the room left below it: a paced
    run (``notification.send.run``) passes it; ``None`` takes a full batch.
    """
    return finish_batch(
        start_batch(
            now=now,
            batch_segments=batch_segments,
            concurrency=concurrency,
            backend_factory=backend_factory,
            queue_target=queue_target,
        )
    )
