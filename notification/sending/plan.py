"""What a paced run would take now, and why the rest waits (``send_sms_batch --dry-run``).

Read-only: the same selection, pacing budget and queue estimate as a run's next
top-up (``pacing``), but nothing is claimed or locked.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, Q

from notification.conf import app_settings
from notification.guardrails import screen
from notification.models import NotificationStatusChoices, SmsNotification
from notification.sending.dispatch import current_sender
from notification.sending.pacing import queue_target_segments
from notification.sending.queue_estimate import estimate_queue
from notification.sending.selection import (
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
