"""Which SMS are due, and how many of them fit in one batch.

Due means: the notification is ``pending`` (so not canceled, sent or claimed),
its ``publish_datetime`` has passed, and any retry backoff (``next_attempt_datetime``)
is over. Order: priority (high first), then ``publish_datetime``, then id, which
is the partial index ``notification_due_pending_idx``.

The batch budget is counted in **segments**, because that is what Twilio
paces, queues and bills. Rows are taken strictly in order while they fit (a
small message never overtakes a bigger, more urgent one); a single message
larger than the whole budget goes alone so it is not starved forever.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from django.db.models import Q, QuerySet

from notification.delivery.optouts import opted_out_annotation
from notification.models import NotificationStatusChoices, SmsNotification

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
    behind a whole batch (``notification.sending.pacing``).
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
