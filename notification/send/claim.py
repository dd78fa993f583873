"""Which SMS are due, and how many of them fit in one batch.

Due means: the notification is ``pending`` (so not canceled, sent or claimed),
its ``publish_datetime`` has passed, and any retry backoff (``next_attempt_datetime``)
is over. Order: priority (high first), then ``publish_datetime``, then id, which
is the partial index ``notification_due_pending_idx``.

The batch budget is counted in **segments**, because that is what Twilio
paces, queues and bills. Rows are taken strictly in order while they fit (a
small message never overtakes a bigger, more urgent one); a single message
larger than the whole budget goes alone so it is not starved forever.

Claiming (was ``notification.sending.claiming``):

Claiming: hand due rows to exactly one worker before any request leaves.

Inside one transaction, per batch (a constant number of queries):

1. Claims for the same sender are serialised (``pg_advisory_xact_lock`` on
   PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` already serialises writers), so the
   queue estimate read in step 2 cannot be raced by another worker's claim and
   the queue limit holds with any number of workers.
2. The queue estimate for the sender gives the capacity left at Twilio.
3. Due rows are read in sending order; on PostgreSQL with
   ``SELECT ... FOR UPDATE SKIP LOCKED`` so rows another transaction holds are
   skipped, not waited for.
4. The compliance and cost guardrails (``notification.guardrails.screen``) refuse
   or hold candidates (country, quiet hours) before the budget is applied, and
   the spend limits hold, in sending order, what the budget took; their writes
   are part of this transaction.
5. The rows that fit the budget are claimed with a **conditional** UPDATE
   (still unclaimed, notification still pending) that stamps our random
   ``claim_token``; the notification goes to ``processing``. Only rows carrying
   our token are ever sent by us, which is what makes sending exactly-once
   independent of any lock.
"""

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from django.db import connection, transaction
from django.db.models import Q, QuerySet

from notification.delivery import opted_out_annotation
from notification.guardrails import costs as spend
from notification.guardrails import screen
from notification.models import Notification, NotificationStatusChoices, SmsNotification
from notification.send.wake import estimate_queue

# -------- selection ---------------------------------------------------------------------

T = TypeVar("T")

WAIT_BUDGET = "segment budget reached"
WAIT_QUEUE = "Twilio queue limit"
WAIT_TARGET = "pacing target reached"


def due_sms(now: datetime) -> QuerySet[SmsNotification]:
    """SMS rows due for sending at ``now``, in sending order."""
    return (
        SmsNotification.objects.filter(
            notification__status=NotificationStatusChoices.PENDING,
            notification__publish_datetime__lte=now,
        )
        .filter(Q(next_attempt_datetime__isnull=True) | Q(next_attempt_datetime__lte=now))
        .order_by("-notification__priority", "notification__publish_datetime", "notification_id")
    )


def batch_candidates(now: datetime) -> QuerySet[SmsNotification]:
    """Due rows as a batch (or its dry run) weighs them: notification loaded, opt-out known."""
    return due_sms(now).select_related("notification").annotate(opted_out=opted_out_annotation())


def recount_segments(candidates: list[SmsNotification]) -> list[SmsNotification]:
    """Set each row's segments and encoding from its body as it is *now*.

    The stored count was made when the row was saved; the body may have been
    edited since (admin, ORM, a bulk import that skipped ``save()``), and the
    budget must weigh what will actually be sent. A batch's worth of rows is
    cheap to count; the batch persists the counts with its results.
    """
    for sms in candidates:
        sms.refresh_segments()
        sms.segments = max(1, sms.segments)
    return candidates


def effective_segments(sms: SmsNotification) -> int:
    """The row's segment count (at least one), as ``recount_segments`` left it."""
    return max(1, sms.segments)


def is_opted_out(candidate: SmsNotification) -> bool:
    """The ``opted_out`` annotation of a ``batch_candidates`` row (not a model field)."""
    return bool(candidate.opted_out)  # type: ignore[attr-defined]


def budget_cost(candidate: SmsNotification) -> int:
    """Segments a ``batch_candidates`` row takes from the budget: none when opted out,
    because it never reaches Twilio."""
    return 0 if is_opted_out(candidate) else effective_segments(candidate)


def paced_budget(batch_segments: int, queue_target: int | None, queue_estimate: int) -> int:
    """Segments one claim may take: ``TWILIO_SMS_BATCH_SIZE``, and, in a paced run, no
    more than the room left below the queue target (zero or less: wait for the drain).

    The target keeps Twilio's FIFO queue shallow, so a HIGH message claimed later
    waits behind at most the target's worth of segments at Twilio instead of
    behind a whole batch (``notification.send.run``).
    """
    if queue_target is None:
        return batch_segments
    return min(batch_segments, queue_target - queue_estimate)


def budget_wait_reason(reason: str | None, budget: int, batch_segments: int) -> str | None:
    """Name the pacing target, not the batch size, when the target was the smaller cap."""
    if reason == WAIT_BUDGET and budget < batch_segments:
        return WAIT_TARGET
    return reason


@dataclass(frozen=True, slots=True)
class BudgetDecision:
    """What fits, and (when something was left behind) why it waits."""

    taken: list
    segments: int
    wait_reason: str | None


def take_within_budget(
    candidates: Sequence[T],
    cost: Callable[[T], int],
    *,
    batch_segments: int,
    queue_capacity: int,
) -> BudgetDecision:
    """Take candidates in order while their segments fit both limits.

    ``batch_segments`` is ``TWILIO_SMS_BATCH_SIZE``; ``queue_capacity`` is how
    many segments Twilio's queue can still take for this sender. A message
    bigger than the whole batch budget is taken alone when it is first in line
    and the queue has room for it. Zero-cost candidates (opted-out numbers,
    which never reach Twilio) are always taken.
    """
    budget = min(batch_segments, max(queue_capacity, 0))
    taken: list[T] = []
    used = 0
    for candidate in candidates:
        segments = cost(candidate)
        if used + segments <= budget:
            taken.append(candidate)
            used += segments
            continue
        if used == 0 and segments > batch_segments:
            if segments <= queue_capacity:  # oversized: goes alone rather than starve
                return BudgetDecision([*taken, candidate], segments, None)
            return BudgetDecision(taken, used, WAIT_QUEUE)
        reason = WAIT_BUDGET if used + segments > batch_segments else WAIT_QUEUE
        return BudgetDecision(taken, used, reason)
    return BudgetDecision(taken, used, None)


# -------- claiming ----------------------------------------------------------------------


@dataclass
class ClaimedBatch:
    token: str
    sender: str
    to_send: list[SmsNotification] = field(default_factory=list)
    opted_out: list[SmsNotification] = field(default_factory=list)
    #: Rows recovery released before we marked them started: never sent by this batch.
    lost: list[SmsNotification] = field(default_factory=list)
    queue_estimate: int = 0
    wait_reason: str | None = None
    #: The segment cap of this claim (``paced_budget``).
    budget: int = 0
    #: Rows the guardrails held back (still pending) or refused (failed, never sent).
    held: int = 0
    refused: int = 0
    #: Estimated price of each row to send, by id (written with the claim).
    estimates: dict = field(default_factory=dict)

    @property
    def claimed(self) -> int:
        return len(self.to_send) + len(self.opted_out)


def _serialise_claims(sender: str) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"sms-claim:{sender}"])


def _candidates(now: datetime, limit: int) -> list[SmsNotification]:
    queryset = batch_candidates(now)
    if connection.features.has_select_for_update_skip_locked:
        queryset = queryset.select_for_update(skip_locked=True, of=("self", "notification"))
    return recount_segments(list(queryset[:limit]))


#: Rounds of candidates one claim screens when the guardrails hold back all it read.
MAX_SCREEN_ROUNDS = 10


def _screened_take(
    batch: ClaimedBatch, now: datetime, queue_limit: int, batch_segments: int
) -> list[SmsNotification]:
    """Candidates that pass the guardrails and fit the budget, in sending order.

    Holds and refusals are written at once (same transaction), which takes those
    rows out of the due set; when they were all the claim read, the next rows are
    read, so held messages never stall the sendable ones behind them until the
    next scheduled run.
    """
    for _ in range(MAX_SCREEN_ROUNDS):
        # Each message is at least one segment, so ``budget`` rows is always
        # enough to fill the budget (opted-out rows cost nothing and simply
        # make this batch smaller).
        candidates = _candidates(now, batch.budget)
        screening = screen.screen(candidates, now)
        decision = take_within_budget(
            screening.allowed,
            budget_cost,
            batch_segments=batch.budget,
            queue_capacity=queue_limit - batch.queue_estimate,
        )
        batch.wait_reason = budget_wait_reason(decision.wait_reason, batch.budget, batch_segments)
        priced = screen.limit_spend(decision.taken, now)
        held = [*screening.held, *priced.held]
        screen.write(now=now, held=held, refused=screening.refused, periods=priced.periods)
        batch.held += len(held)
        batch.refused += len(screening.refused)
        batch.estimates = priced.estimates
        if priced.kept or not (held or screening.refused) or len(candidates) < batch.budget:
            return priced.kept
    return []


def claim_batch(
    *,
    now: datetime,
    sender: str,
    batch_segments: int,
    queue_limit: int,
    queue_target: int | None = None,
) -> ClaimedBatch:
    """Claim the next batch for ``sender``; rows in it are ours alone.

    ``queue_target`` (segments, a paced run) caps the claim at the room left
    below it; ``None`` claims a full ``batch_segments`` (``send_sms_batch``).
    """
    batch = ClaimedBatch(token=uuid.uuid4().hex, sender=sender)
    screen.prepare()  # network (prices) before the locks, never while holding them
    with transaction.atomic():
        if spend.limits_on():
            spend.lock_spend()  # before the sender's lock: one order, no deadlock
        _serialise_claims(sender)
        batch.queue_estimate = estimate_queue(sender, now)
        batch.budget = paced_budget(batch_segments, queue_target, batch.queue_estimate)
        if batch.budget <= 0:
            batch.wait_reason = WAIT_TARGET
            return batch
        taken = _screened_take(batch, now, queue_limit, batch_segments)
        if not taken:
            return batch

        ids = [sms.pk for sms in taken]
        claimed = SmsNotification.objects.filter(
            Q(pk__in=ids),
            Q(claimed_datetime__isnull=True),
            notification__status=NotificationStatusChoices.PENDING,
        ).update(
            claimed_datetime=now,
            claim_token=batch.token,
            sender=sender,
            **screen.estimate_fields(batch.estimates, now, ids),
        )
        if claimed != len(ids):
            # Another worker got some rows between our read and our update
            # (possible only where SKIP LOCKED is unavailable): keep ours.
            ours = set(
                SmsNotification.objects.filter(claim_token=batch.token).values_list("pk", flat=True)
            )
            taken = [sms for sms in taken if sms.pk in ours]
        Notification.objects.filter(sms__claim_token=batch.token).update(
            status=NotificationStatusChoices.PROCESSING, updated_datetime=now
        )
        for sms in taken:
            sms.claimed_datetime, sms.claim_token, sms.sender = now, batch.token, sender
            sms.segments = effective_segments(sms)
            sms.notification.status = NotificationStatusChoices.PROCESSING
            (batch.opted_out if is_opted_out(sms) else batch.to_send).append(sms)
        # No status event for "processing": it lasts one batch (seconds), and
        # the final status of every claimed row is announced once, by
        # ``write_results`` (or by recovery if this worker dies).
    return batch


def mark_send_started(batch: ClaimedBatch, now: datetime) -> None:
    """Record, in one UPDATE, that the batch's requests are about to leave.

    One query whatever the batch size. It is the safe fallback of crash
    recovery: a row marked here whose worker died is never put back to pending
    unless the batch's ``DispatchLog`` (Redis) proves its request never left;
    without that proof it becomes ``unknown`` (at most once).

    The UPDATE only touches rows still carrying our claim token. If the worker
    stalled past ``TWILIO_SMS_CLAIM_TIMEOUT``, recovery may have released some
    rows (and another worker may be sending them): the count comes up short,
    and only then are the rows still ours re-read; the others are dropped from
    this batch and never sent by it.
    """
    ids = [sms.pk for sms in batch.to_send]
    if not ids:
        return
    marked = SmsNotification.objects.filter(pk__in=ids, claim_token=batch.token).update(
        send_started_datetime=now
    )
    if marked != len(ids):
        ours = set(
            SmsNotification.objects.filter(
                pk__in=ids, claim_token=batch.token, send_started_datetime=now
            ).values_list("pk", flat=True)
        )
        batch.lost = [sms for sms in batch.to_send if sms.pk not in ours]
        batch.to_send = [sms for sms in batch.to_send if sms.pk in ours]
    for sms in batch.to_send:
        sms.send_started_datetime = now
