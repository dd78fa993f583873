"""One reconciliation pass: ask the provider about each row, apply its evidence, log one line.

Every decision is a ``Decision`` (what a dry run prints) and is logged; the
pass ends with one ``sms_reconcile …`` line of counts. A provider that cannot
answer ends the pass at once (its remaining rows count as ``unavailable`` and
wait for the next pass): each further call would only wait for its own timeout.
"""

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime

from django.utils import timezone

from notification import instruments
from notification.backends import get_backend
from notification.backends.base import BaseSmsBackend, LookupUnavailable, ProviderMessage
from notification.delivery import SmsStatusEvent, is_behind, is_known
from notification.models import Notification, NotificationStatusChoices, SmsNotification
from notification.reconciliation import rows as absence
from notification.reconciliation.rows import TrackedRow, UnsentRow, tracked_rows, unsent_rows
from notification.send.dispatch import current_sender
from notification.status import early
from notification.status.apply import (
    Outcome,
    apply_adopted,
    record_status_event,
    settle_unknown_callbacks,
)
from notification.status.events import notify_status_changed

logger = logging.getLogger("notification.reconciliation")

_N = NotificationStatusChoices
SOURCE = "reconciliation with Twilio's Messages API"


@dataclass(frozen=True, slots=True)
class Decision:
    sms_id: int
    notification_id: int
    action: str
    detail: str

    def line(self) -> str:
        return (
            f"sms_reconcile_decision sms={self.sms_id} notification={self.notification_id} "
            f'action={self.action} detail="{self.detail}"'
        )


@dataclass
class ReconcileReport:
    """Counts of one pass; every row asked about lands in exactly one of the action counts."""

    checked: int = 0
    updated: int = 0
    unchanged: int = 0
    adopted: int = 0
    resent: int = 0
    failed: int = 0
    waiting: int = 0
    not_found: int = 0
    unavailable: int = 0
    dry_run: bool = False
    skipped: str = ""
    duration_ms: int = 0
    decisions: list[Decision] = field(default_factory=list)

    def add(self, decision: Decision) -> None:
        self.decisions.append(decision)
        setattr(self, decision.action, getattr(self, decision.action) + 1)
        if not self.dry_run:
            instruments.reconcile_decision(decision.action)
        logger.info(("[dry run] " if self.dry_run else "") + decision.line())

    def as_dict(self) -> dict:
        data = asdict(self)
        data["decisions"] = [asdict(decision) for decision in self.decisions]
        return data

    def log_line(self) -> str:
        counts = {k: v for k, v in asdict(self).items() if k != "decisions"}
        parts = [f'{k}="{v}"' if isinstance(v, str) else f"{k}={v}" for k, v in counts.items()]
        return "sms_reconcile " + " ".join(parts)


def _event(record: ProviderMessage, now: datetime, sms_id: int | None = None) -> SmsStatusEvent:
    """The provider's record as the status callback it would have sent."""
    return SmsStatusEvent(
        message_sid=record.sid,
        status=record.status.lower(),
        error_code=record.error_code,
        error_message=record.error_message,
        account_sid="",
        from_number=record.from_number,
        to_number=record.to,
        received_at=now,
        sms_id=sms_id,
        raw={"Source": "reconciliation", "MessageSid": record.sid, "MessageStatus": record.status},
    )


class _Pass:
    def __init__(self, backend: BaseSmsBackend, now: datetime, dry_run: bool) -> None:
        self.backend = backend
        self.now = now
        self.dry_run = dry_run
        self.report = ReconcileReport(dry_run=dry_run)
        # Published together when the pass ends: one read of what to publish and one
        # trip to the channel layer, not one per row (it dominated a pass's own cost).
        self.changed: set[int] = set()

    def decide(self, row: TrackedRow | UnsentRow, action: str, detail: str) -> None:
        self.report.add(Decision(row.sms_id, row.notification_id, action, detail))

    # --- rows with a sid ---------------------------------------------------------
    def tracked(self, row: TrackedRow) -> None:
        record = self.backend.fetch(row.sid)
        if record is None:
            detail = f"Twilio has no message {row.sid} (deleted?); left as it is"
            if row.notification_status == _N.UNKNOWN and not self.dry_run:
                Notification.objects.filter(pk=row.notification_id, status=_N.UNKNOWN).update(
                    status_message=f"Reconciliation: {detail}, for staff to decide."
                )
            self.decide(row, "not_found", detail)
            return
        status = record.status.lower()
        if not is_known(status):
            self.decide(row, "unchanged", f"{row.sid} is {status!r}, not a status we track")
            return
        if self.dry_run:
            if row.notification_status == _N.UNKNOWN:
                action = "adopted"
            else:
                action = "updated" if is_behind(row.delivery_status, status) else "unchanged"
            self.decide(row, action, f"would apply {status!r} from {row.sid}")
            return
        event = _event(record, self.now, row.sms_id)
        if row.notification_status == _N.UNKNOWN:
            adopted = apply_adopted(event, source=SOURCE)
            if adopted is not None:
                self.changed.add(row.notification_id)
                self.decide(row, "adopted", f"Twilio has {row.sid} ({status})")
                return
        result = record_status_event(event, keep_if_early=False)
        if result.outcome is Outcome.UPDATED:
            self.changed.add(row.notification_id)
            self.decide(row, "updated", f"{row.sid} is {status} at Twilio")
        else:
            self.decide(row, "unchanged", f"{row.sid} is {status} at Twilio ({result.outcome})")

    # --- unknown rows without a sid ----------------------------------------------
    def unsent(self, row: UnsentRow) -> None:
        # Its own callbacks first: kept while the row was being sent (``tracking.early``).
        kept = early.sids_for([row.sms_id]).get(row.sms_id)
        if kept:
            detail = f"its status callbacks were kept ({', '.join(kept)})"
            if self.dry_run:
                self.decide(row, "adopted", f"would adopt: {detail}")
                return
            if settle_unknown_callbacks([row.sms_id]):
                self.decide(row, "adopted", detail)
                return
        sender = row.sender or current_sender()
        since = row.since - absence.CLOCK_SLACK
        found = self.backend.find(to=row.to, sender=sender, sent_after=since)
        ours = set(
            SmsNotification.objects.filter(twilio_sid__in=[m.sid for m in found]).values_list(
                "twilio_sid", flat=True
            )
        )
        matches = [
            m
            for m in found
            if m.body == row.body
            and m.sid not in ours
            and (m.date_created is None or m.date_created >= since)
        ]
        if len(matches) > 1:
            sids = ", ".join(m.sid for m in matches)
            detail = f"several of Twilio's messages match ({sids}); left unknown for staff"
            self._note(row, "waiting", detail)
            return
        if matches:
            self._adopt(row, matches[0])
            return
        evidence = (
            f"Reconciliation on {self.now:%Y-%m-%d %H:%M} UTC: Twilio's list has no message "
            f"to {row.to} from {sender} since {since:%Y-%m-%d %H:%M} UTC"
        )
        ready = absence.absent_after(row)
        if self.now < ready:
            detail = (
                f"{evidence} yet; a message still in Twilio's queue is not listed until it "
                f"leaves it, so this is asked again until {ready:%Y-%m-%d %H:%M} UTC"
            )
            self._note(row, "waiting", detail)
            return
        if self.dry_run:
            self.decide(row, "resent", f"would send again: {evidence}")
            return
        status = absence.send_again(row, self.now, evidence)
        if status is None:
            self.decide(row, "unchanged", "the row changed during the pass")
        else:
            self.decide(row, "resent" if status == _N.PENDING else "failed", evidence)

    def _adopt(self, row: UnsentRow, record: ProviderMessage) -> None:
        detail = f"Twilio has it as {record.sid} ({record.status})"
        if self.dry_run:
            self.decide(row, "adopted", f"would adopt: {detail}")
            return
        result = apply_adopted(_event(record, self.now, row.sms_id), source=SOURCE)
        if result is None:
            self.decide(row, "unchanged", "the row changed during the pass")
            return
        self.changed.add(row.notification_id)
        self.decide(row, "adopted", detail)

    def _note(self, row: UnsentRow, action: str, detail: str) -> None:
        if not self.dry_run:
            absence.note(row, detail)
        self.decide(row, action, detail)

    # --- the pass -------------------------------------------------------------
    def _work_through(self, work: list[tuple[Callable, TrackedRow | UnsentRow]]) -> None:
        for index, (handle, row) in enumerate(work):
            self.report.checked += 1
            try:
                handle(row)
            except LookupUnavailable as exc:
                left = len(work) - index
                self.report.unavailable += left
                self.report.checked += left - 1
                if not self.dry_run:
                    instruments.reconcile_decision("unavailable", left)
                logger.warning(
                    "sms_reconcile provider unavailable, %d rows left for the next pass: %s",
                    left,
                    exc,
                )
                return

    def run(self) -> ReconcileReport:
        work: list[tuple[Callable, TrackedRow | UnsentRow]] = [
            *((self.tracked, row) for row in tracked_rows(self.now)),
            *((self.unsent, row) for row in unsent_rows(self.now)),
        ]
        try:
            self._work_through(work)
        finally:  # what changed is published even when a row's write failed
            notify_status_changed(self.changed)  # publishes and sends the signals
        return self.report


def reconcile(
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    backend: BaseSmsBackend | None = None,
) -> ReconcileReport:
    """One pass now; ``dry_run`` decides and logs without changing anything."""
    started = time.monotonic()
    backend = backend or get_backend()
    if not backend.supports_lookup:
        report = ReconcileReport(dry_run=dry_run, skipped="the SMS backend has no lookups")
    else:
        report = _Pass(backend, now or timezone.now(), dry_run).run()
    report.duration_ms = round((time.monotonic() - started) * 1000)
    logger.info(report.log_line())
    return report
