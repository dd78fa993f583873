"""One send batch, start to finish, and its structured log line.

recover stale claims → claim (budget + queue limit + opt-outs) → mark started
→ dispatch concurrently → write all results → one log line. The number of SQL
queries is the same whatever the batch size.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from django.conf import settings
from django.utils import timezone

from notification.sending.claiming import claim_batch, mark_send_started
from notification.sending.dispatch import Dispatcher, SendRequest, current_sender
from notification.sending.recovery import recover_stale_claims
from notification.sending.results import write_results
from notification.twilio_client import get_twilio_client

logger = logging.getLogger("notification.sending")


@dataclass
class BatchReport:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    retried: int = 0
    unknown: int = 0
    skipped_opt_out: int = 0
    segments: int = 0
    queue_estimate: int = 0
    recovered_pending: int = 0
    recovered_unknown: int = 0
    wait_reason: str = ""
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


def run_batch(
    *,
    now: datetime | None = None,
    batch_segments: int | None = None,
    concurrency: int | None = None,
    client_factory: Callable[[], Any] | None = None,
) -> BatchReport:
    """Run one batch now (no overlap lock: see ``jobs.sms`` for the scheduled run)."""
    started = time.monotonic()
    fixed_now = now  # tests may pin the clock; otherwise each step reads it afresh

    def clock() -> datetime:
        return fixed_now or timezone.now()

    now = clock()
    report = BatchReport()

    recovered = recover_stale_claims(now, settings.TWILIO_SMS_CLAIM_TIMEOUT)
    report.recovered_pending, report.recovered_unknown = recovered.requeued, recovered.unknown

    batch = claim_batch(
        now=now,
        sender=current_sender(),
        batch_segments=batch_segments or settings.TWILIO_SMS_BATCH_SIZE,
        queue_limit=settings.TWILIO_SMS_QUEUE_LIMIT,
    )
    report.claimed, report.queue_estimate = batch.claimed, batch.queue_estimate
    report.wait_reason = batch.wait_reason or ""
    if batch.wait_reason:
        logger.info(
            "sms_batch_shrunk reason=%r queue_estimate=%d queue_limit=%d",
            batch.wait_reason,
            batch.queue_estimate,
            settings.TWILIO_SMS_QUEUE_LIMIT,
        )

    outcomes = []
    if batch.to_send:
        mark_send_started(batch, clock())
        dispatcher = Dispatcher(
            concurrency or settings.TWILIO_SMS_CONCURRENCY,
            client_factory or get_twilio_client,
        )
        outcomes = dispatcher.send_all(
            [
                SendRequest(sms.pk, sms.to_phone_number, sms.notification.body, sms.segments)
                for sms in batch.to_send
            ]
        )
    counts = write_results(
        batch, outcomes, now=clock(), max_attempts=settings.TWILIO_SMS_MAX_ATTEMPTS
    )
    report.sent, report.failed, report.retried = counts.sent, counts.failed, counts.retried
    report.unknown, report.skipped_opt_out = counts.unknown, counts.skipped_opt_out
    report.segments = counts.segments
    report.duration_ms = round((time.monotonic() - started) * 1000)
    logger.info(report.log_line())
    return report
