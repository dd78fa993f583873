"""One send batch, start to finish, and its structured log line.

recover stale claims → claim (budget + queue limit + opt-outs) → open the
batch's dispatch log (Redis) → mark started (one UPDATE) → dispatch
concurrently, recording each request's start in the log right before it leaves
→ write all results → drop the log → one log line. The number of SQL queries is
the same whatever the batch size (the per-request record is a Redis call).
"""

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone
from redis.exceptions import RedisError

from notification.backends import get_backend
from notification.backends.base import BaseSmsBackend
from notification.conf import app_settings
from notification.sending.claiming import ClaimedBatch, claim_batch, mark_send_started
from notification.sending.dispatch import Dispatcher, SendOutcome, SendRequest, current_sender
from notification.sending.dispatch_log import DispatchLog
from notification.sending.recovery import recover_stale_claims
from notification.sending.result_retry import ResultsNotWritten
from notification.sending.results import ResultCounts, write_results
from notification.sending.selection import WAIT_TARGET

logger = logging.getLogger("notification.sending")


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
) -> tuple[list[SendOutcome], DispatchLog | None]:
    """Send the claimed rows, each recorded in the batch's dispatch log as it leaves."""
    if not batch.to_send:
        return [], None
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
    )
    outcomes = dispatcher.send_all(
        [
            SendRequest(sms.pk, sms.to_phone_number, sms.notification.body, sms.segments)
            for sms in batch.to_send
        ]
    )
    return outcomes, dispatch_log


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
    run (``notification.sending.pacing``) passes it; ``None`` takes a full batch.
    """
    started = time.monotonic()
    fixed_now = now  # tests may pin the clock; otherwise each step reads it afresh

    def clock() -> datetime:
        return fixed_now or timezone.now()

    now = clock()
    recovered = recover_stale_claims(now, app_settings.TWILIO_SMS_CLAIM_TIMEOUT)
    batch = _claim(now, batch_segments, queue_target)
    outcomes, dispatch_log = _dispatch(batch, clock, concurrency, backend_factory)
    counts = _write_and_close_log(batch, outcomes, dispatch_log, clock())
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
        duration_ms=round((time.monotonic() - started) * 1000),
    )
    # A paced run polls every second or so: its empty polls are not worth a line each.
    busy = report.claimed or recovered.requeued or recovered.unknown or batch.held or batch.refused
    quiet = queue_target is not None and not busy
    logger.log(logging.DEBUG if quiet else logging.INFO, report.log_line())
    return report
