"""A paced run: keep each sender's queue at the provider fed at the rate it drains.

The provider (Twilio) drains a sender's queue at ``TWILIO_SMS_RATE`` segments per
second, first in, first out. Handing it one big batch per scheduled run is both
too slow (idle between runs) and unfair (a HIGH message handed over later waits
behind the whole batch in the provider's FIFO queue, where our priority order no
longer applies). A run therefore keeps the estimated queue
(``queue_estimate``) topped up to ``TWILIO_SMS_QUEUE_TARGET`` seconds of drain,
i.e. ``queue_target_segments()``: it claims what fits below the target (most
urgent first, at most ``TWILIO_SMS_BATCH_SIZE`` per claim), waits while the
queue drains, and repeats. Every due message keeps its place in *our* queue,
where priority holds; the provider only ever holds a few seconds of work, so a
HIGH message claimed now waits behind at most the target at the provider.

A run ends when nothing is due (a HIGH row created later starts a new one:
``wake``), or when its deadline (set by the job so the next scheduled run never
overlaps it) would pass during the next pause. Each top-up is an ordinary
batch (``run_batch``): claims, the dispatch log, recovery, the queue limit,
opt-outs and retries apply unchanged, and a run is as backend-independent as
one batch. A message larger than the room left may be taken alone (so it is
never starved), so the queue can exceed the target by less than one message.
A top-up that loses its database connection before sending is retried at once
on a fresh connection (then once per pause while the database stays away), so a
cut connection does not end the run.

**Overlap.** When a top-up filled the batch size (more is due and the target has
room), the next one is claimed and queued on the sending threads *before* the
first one's answers are written, and so on: the threads never run dry at a batch
boundary (recovery, claim, mark, dispatch log, result write, publish: a dozen
round trips), and a batch's last, half-full round of requests is filled by the
next batch's first ones. The invariant this relies on: a batch's claim token,
dispatch log and send-started mark are all written before any of its requests
can leave (``start_batch``), and its results are written under its own token, so
two batches in flight are two independent batches for exactly-once and for
recovery; the next claim's queue estimate counts the first batch's rows as in
flight, so pacing and the queue limit hold as with two workers. At most two
batches are in flight, and every started batch is finished (written) before the
run returns or raises.

Plan (was ``notification.sending.plan``):

What a paced run would take now, and why the rest waits (``send_sms_batch --dry-run``).

Read-only: the same selection, pacing budget and queue estimate as a run's next
top-up (``pacing``), but nothing is claimed or locked.
"""

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from typing import Any, Protocol

from django.db.models import Count, Q

from notification.conf import app_settings
from notification.connections import CONNECTION_LOST, drop_connection
from notification.guardrails import screen
from notification.models import NotificationStatusChoices, SmsNotification
from notification.send.batch import BatchReport, InFlightBatch, finish_batch, start_batch
from notification.send.claim import (
    WAIT_BUDGET,
    WAIT_TARGET,
    batch_candidates,
    budget_cost,
    budget_wait_reason,
    due_sms,
    effective_segments,
    is_opted_out,
    paced_budget,
    recount_segments,
    take_within_budget,
)
from notification.send.dispatch import current_sender
from notification.send.results import ResultCounts
from notification.send.wake import estimate_queue

# -------- pacing ------------------------------------------------------------------------

#: Longest pause between top-ups: how late a run notices rows that became due
#: without a wake-up (scheduled publish times, ended retry backoffs).
MAX_PAUSE_SECONDS = 1.0
#: Shortest pause: below this, polling costs more than it gains.
MIN_PAUSE_SECONDS = 0.05
#: A top-up waits for room of at least this share of the target (fewer, larger claims).
TOP_UP_SHARE = 0.1

ENDED_NOTHING_DUE = "nothing due"
logger = logging.getLogger("notification.send")
ENDED_DEADLINE = "next scheduled run is near"


def queue_target_segments() -> int:
    """``TWILIO_SMS_QUEUE_TARGET`` seconds of drain, in segments (at least one)."""
    return max(1, round(app_settings.TWILIO_SMS_QUEUE_TARGET * app_settings.TWILIO_SMS_RATE))


def pause_after(report: BatchReport, target: int, rate: float) -> float:
    """Seconds to wait after a top-up before the next one is worth claiming.

    The queue holds about ``queue_estimate + segments`` after the batch; the
    next claim should find room for a tenth of the target. Never more than
    ``MAX_PAUSE_SECONDS`` (rows that became due meanwhile), never less than
    ``MIN_PAUSE_SECONDS``. A claim cut short by the batch size, not the target,
    goes on at once: the target still has room.
    """
    if report.wait_reason == WAIT_BUDGET:
        return 0.0
    queued = report.queue_estimate + report.segments
    step = max(1.0, target * TOP_UP_SHARE)
    seconds = (queued - target + step) / rate
    return min(MAX_PAUSE_SECONDS, max(MIN_PAUSE_SECONDS, seconds))


@dataclass
class RunReport(ResultCounts):
    """What a paced run did: the sums of its batches' counts, and why it ended."""

    batches: int = 0
    recovered_pending: int = 0
    recovered_unknown: int = 0
    queue_target: int = 0
    woken: int = 0
    #: Top-ups that lost the database connection before sending (retried next pause).
    db_errors: int = 0
    ended: str = ""
    duration_ms: int = 0

    _FROM_BATCH = (
        *(f.name for f in fields(ResultCounts)),
        "recovered_pending",
        "recovered_unknown",
    )

    def add(self, batch: BatchReport) -> None:
        self.batches += 1
        for name in self._FROM_BATCH:
            setattr(self, name, getattr(self, name) + getattr(batch, name))

    def merge(self, later: "RunReport") -> "RunReport":
        """This run followed by ``later`` (a job that ran again after a late wake-up)."""
        merged = RunReport(**self.as_dict())
        for name in (*self._FROM_BATCH, "batches", "woken", "db_errors", "duration_ms"):
            setattr(merged, name, getattr(self, name) + getattr(later, name))
        merged.ended = later.ended
        return merged

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def log_line(self) -> str:
        return "sms_run " + " ".join(
            f'{key}="{value}"' if " " in str(value) else f"{key}={value}"
            for key, value in asdict(self).items()
        )


class Waiter(Protocol):
    """How a run waits between top-ups (the job passes ``wake.WakeSignal``).

    ``wait`` returns True when woken early (a HIGH row is due). ``clear`` runs
    before every claim, so a wake-up that came before the claim is not waited for.
    """

    def clear(self) -> None: ...

    def wait(self, seconds: float) -> bool: ...


class SleepWaiter:
    """Waits the whole pause: for runs without Redis wake-ups (``send_sms_batch``)."""

    def clear(self) -> None:
        pass

    def wait(self, seconds: float) -> bool:
        time.sleep(seconds)
        return False


def run_paced(
    *,
    deadline: float,
    waiter: Waiter | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> RunReport:
    """Top the queue up to the target until nothing is due or ``deadline`` (``clock`` time).

    The deadline is checked before each pause and before each overlap, so the run
    ends no later than ``deadline`` plus two overlapped batches (see "Overlap" in
    the module docstring, with the invariant it relies on).
    """
    started = clock()
    waiter = waiter or SleepWaiter()
    rate = float(app_settings.TWILIO_SMS_RATE)
    run = RunReport(queue_target=queue_target_segments())
    lost_in_a_row = 0
    ahead: InFlightBatch | None = None  # started, answers not yet written
    while True:
        waiter.clear()
        try:
            flight = start_batch(queue_target=run.queue_target)
        except CONNECTION_LOST as error:
            if ahead is not None:  # its answers are in memory: write them (retried)
                run.add(finish_batch(ahead))
                ahead = None
            _connection_lost(run, error)
            lost_in_a_row += 1
            if clock() + MAX_PAUSE_SECONDS >= deadline:
                run.ended = ENDED_DEADLINE
                break
            if lost_in_a_row > 1:
                waiter.wait(MAX_PAUSE_SECONDS)
            continue
        lost_in_a_row = 0
        if ahead is not None:
            _finish_first(ahead, flight, run)
            ahead = None
        if flight.more_due and clock() < deadline:
            ahead = flight  # claim the next one while this one is in flight
            continue
        batch = finish_batch(flight)
        run.add(batch)
        if batch.claimed == 0 and not batch.wait_reason:
            run.ended = ENDED_NOTHING_DUE
            break
        pause = pause_after(batch, run.queue_target, rate)
        if clock() + pause >= deadline:
            run.ended = ENDED_DEADLINE
            break
        if pause and waiter.wait(pause):
            run.woken += 1
    run.duration_ms = round((clock() - started) * 1000)
    return run


def _connection_lost(run: RunReport, error: Exception) -> None:
    """A top-up lost its connection before anything left (the result write retries by
    itself): a fresh connection at once (a cut connection), then once per pause (a
    database that is down), not a dead run until the next scheduled one."""
    drop_connection()
    run.db_errors += 1
    if run.db_errors == 1:
        logger.warning('sms_run db=lost error="%s" (reconnecting)', error)


def _finish_first(first: InFlightBatch, second: InFlightBatch, run: RunReport) -> None:
    """Write ``first`` while ``second`` is in flight; if that raises (the database
    stayed away past ``SMS_RESULT_WRITE_TIMEOUT``), still write ``second`` before
    the error goes up: no started batch is ever abandoned by the run."""
    try:
        run.add(finish_batch(first))
    except BaseException:
        with contextlib.suppress(Exception):
            run.add(finish_batch(second))
        raise


# -------- plan --------------------------------------------------------------------------


@dataclass
class PlannedMessage:
    notification_id: int
    priority: int
    to: str
    segments: int
    opted_out: bool


@dataclass
class GuardedMessage:
    """A message a guardrail would hold (until ``until``) or refuse (``until`` None)."""

    notification_id: int
    to: str
    rule: str
    reason: str
    until: datetime | None = None


@dataclass
class BatchPlan:
    sender: str
    batch_segments: int
    queue_limit: int
    queue_estimate: int
    #: Segments a run keeps queued (TWILIO_SMS_QUEUE_TARGET x TWILIO_SMS_RATE).
    queue_target: int
    rate: float
    #: What this top-up may take: the room below the target, at most the batch size.
    budget: int = 0
    take: list[PlannedMessage] = field(default_factory=list)
    wait_reason: str | None = None
    due: int = 0
    not_due_yet: int = 0
    in_backoff: int = 0
    #: What the guardrails would hold or refuse among the rows this top-up reads.
    guarded: list[GuardedMessage] = field(default_factory=list)
    #: Rows already held by a guardrail (pending, waiting): (status message, count).
    already_held: list[tuple[str, int]] = field(default_factory=list)

    @property
    def segments(self) -> int:
        return sum(m.segments for m in self.take if not m.opted_out)

    @property
    def left_waiting(self) -> int:
        return self.due - len(self.take)

    @property
    def seconds_until_room(self) -> float:
        """When the drain makes room below the target again (0: there is room now)."""
        return max(0.0, (self.queue_estimate - self.queue_target + 1) / self.rate)


def plan_next_batch(now: datetime, batch_segments: int | None = None) -> BatchPlan:
    sender = current_sender()
    plan = BatchPlan(
        sender=sender,
        batch_segments=batch_segments or app_settings.TWILIO_SMS_BATCH_SIZE,
        queue_limit=app_settings.TWILIO_SMS_QUEUE_LIMIT,
        queue_estimate=estimate_queue(sender, now),
        queue_target=queue_target_segments(),
        rate=float(app_settings.TWILIO_SMS_RATE),
    )
    plan.budget = paced_budget(plan.batch_segments, plan.queue_target, plan.queue_estimate)
    taken: list[SmsNotification] = []
    if plan.budget <= 0:
        plan.wait_reason = WAIT_TARGET
    else:
        candidates = recount_segments(list(batch_candidates(now)[: plan.budget]))
        screening = screen.screen(candidates, now)
        decision = take_within_budget(
            screening.allowed,
            budget_cost,
            batch_segments=plan.budget,
            queue_capacity=plan.queue_limit - plan.queue_estimate,
        )
        plan.wait_reason = budget_wait_reason(
            decision.wait_reason, plan.budget, plan.batch_segments
        )
        priced = screen.limit_spend(decision.taken, now)
        taken = priced.kept
        plan.guarded = [
            GuardedMessage(h.sms.notification_id, h.sms.to_phone_number, h.rule, h.reason, h.until)
            for h in [*screening.held, *priced.held]
        ] + [
            GuardedMessage(r.sms.notification_id, r.sms.to_phone_number, screen.COUNTRY, r.reason)
            for r in screening.refused
        ]
    plan.take = [
        PlannedMessage(
            sms.notification_id,
            sms.notification.priority,
            sms.to_phone_number,
            effective_segments(sms),
            is_opted_out(sms),
        )
        for sms in taken
    ]
    pending = SmsNotification.objects.filter(notification__status=NotificationStatusChoices.PENDING)
    plan.due = due_sms(now).count()
    plan.not_due_yet = pending.filter(notification__publish_datetime__gt=now).count()
    waiting = pending.filter(
        Q(notification__publish_datetime__lte=now), Q(next_attempt_datetime__gt=now)
    )
    plan.in_backoff = waiting.count()
    plan.already_held = [
        (row["notification__status_message"], row["n"])
        for row in waiting.filter(notification__status_message__startswith=screen.HELD_PREFIX)
        .values("notification__status_message")
        .annotate(n=Count("id"))
        .order_by("-n")[:10]
    ]
    return plan
