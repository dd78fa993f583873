"""The send-time guardrails, applied to a claim's candidates (and to its dry run).

``claiming.claim_batch`` calls, inside its transaction, with the candidate rows
locked:

1. ``screen`` before the segment budget: rows outside ``SMS_ALLOWED_COUNTRIES``
   are refused, ``MARKETING`` rows inside the recipient's quiet hours are held;
   the rest may be taken.
2. ``limit_spend`` on the rows the budget took, in sending order: a row whose
   estimated price would take a period's spend over its limit is held until the
   period ends (smaller rows behind it may still fit).
3. ``write`` records it all in a constant number of queries: refusals fail the
   notification without any request to the provider; holds keep it ``pending``
   with ``next_attempt_datetime`` at the hold's end and a status message saying
   why, and cost no attempt; the taken rows get their estimated price, which is
   what the spend limits count.

Everything but ``write`` is read-only, so ``send_sms_batch --dry-run`` shows
exactly what a batch would hold back and why.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from django.db import transaction
from django.db.models import Case, DateTimeField, DecimalField, F, Q, TextField, Value, When

from notification.guardrails import costs as pricing
from notification.guardrails import costs as spend
from notification.guardrails import places as countries
from notification.guardrails import places as quiet_hours
from notification.models import (
    Notification,
    NotificationCategoryChoices,
    NotificationStatusChoices,
    SmsNotification,
)
from notification.signals import send_limit_reached
from notification.status.events import notify_status_changed

logger = logging.getLogger("notification.guardrails")

#: How long a message waits when a spend limit is on and its price is unknown.
UNKNOWN_PRICE_RECHECK = timedelta(minutes=5)

#: Every hold's status message starts with it (the dry run finds held rows by it).
HELD_PREFIX = "Held: "
QUIET = "quiet hours"
COUNTRY = "country not allowed"
PRICE_UNKNOWN = "price unknown"
#: How a spend hold's and an unknown-price hold's status messages start.
SPEND_HELD_TEXT = f"{HELD_PREFIX}sending it"
PRICE_UNKNOWN_TEXT = f"{HELD_PREFIX}a spend limit is on and the price"


def held_reason(status_message: str = "notification__status_message") -> Case:
    """Which guardrail holds a row, from its status message, as a SQL expression.

    ``sms_held_messages{reason}`` groups by it (``quiet_hours``, ``daily_spend_limit``,
    ``monthly_spend_limit``, ``price_unknown``; ``None``: not held by a guardrail, e.g.
    a retry backoff). The texts are the ones ``screen``/``limit_spend`` write; a hold
    over both spend limits names the monthly one last and is counted as monthly, as
    its ``Held.rule`` is.
    """

    def text(prefix: str, contains: str = "") -> Q:
        q = Q(**{f"{status_message}__startswith": prefix})
        return q & Q(**{f"{status_message}__contains": contains}) if contains else q

    return Case(
        When(text(quiet_hours.HELD_TEXT), then=Value("quiet_hours")),
        When(text(PRICE_UNKNOWN_TEXT), then=Value("price_unknown")),
        When(
            text(SPEND_HELD_TEXT, f"{spend.MONTHLY} spend limit ("),
            then=Value("monthly_spend_limit"),
        ),
        When(
            text(SPEND_HELD_TEXT, f"{spend.DAILY} spend limit ("), then=Value("daily_spend_limit")
        ),
        When(text(HELD_PREFIX), then=Value("other")),
        default=None,
        output_field=TextField(),
    )


def prepare() -> None:
    """Before the claim's transaction: refresh the prices of the allowed countries.

    A price lookup is a request to the provider's Pricing API when the cache is
    cold or stale (once a day per country and process); made inside the claim's
    transaction, a slow or hanging Pricing API would hold the claim locks of every
    worker for up to the request timeout. With ``SMS_ALLOWED_COUNTRIES=*`` the
    countries are not known beforehand and a cold lookup still happens inside.
    """
    for country in sorted(countries.allowed_countries() or ()):
        pricing.segment_price(country)


@dataclass(frozen=True, slots=True)
class Held:
    sms: SmsNotification
    until: datetime
    reason: str
    #: Which guardrail: QUIET, PRICE_UNKNOWN, spend.DAILY or spend.MONTHLY.
    rule: str


@dataclass(frozen=True, slots=True)
class Refused:
    sms: SmsNotification
    reason: str


@dataclass
class Screening:
    allowed: list[SmsNotification] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


def screen(candidates: Sequence[SmsNotification], now: datetime) -> Screening:
    """Country and quiet hours, row by row (pure Python: no query)."""
    result = Screening()
    for sms in candidates:
        if getattr(sms, "opted_out", False):
            result.allowed.append(sms)  # fails on our side anyway: nothing to guard
            continue
        if (reason := countries.refusal(sms.to_phone_number)) is not None:
            result.refused.append(Refused(sms, reason))
            continue
        if sms.notification.category == NotificationCategoryChoices.MARKETING:
            hold = quiet_hours.hold_for(now, sms.to_phone_number, sms.recipient_time_zone)
            if hold is not None:
                result.held.append(Held(sms, hold.until, hold.reason, QUIET))
                continue
        result.allowed.append(sms)
    return result


@dataclass
class SpendDecision:
    kept: list[SmsNotification] = field(default_factory=list)
    held: list[Held] = field(default_factory=list)
    #: Estimated price of each kept row (None: unknown), by row id.
    estimates: dict[int, Decimal | None] = field(default_factory=dict)
    periods: list[spend.Period] = field(default_factory=list)


def price_of(sms: SmsNotification) -> Decimal | None:
    estimate = pricing.price_estimate(sms.to_phone_number, sms.segments)
    return None if estimate is None else estimate[0]


def limit_spend(taken: Sequence[SmsNotification], now: datetime) -> SpendDecision:
    """Price the taken rows and hold those the spend limits do not allow.

    Call inside the claim's transaction after ``spend.lock_spend()`` so the spend
    read here cannot be raced by another worker's claim.
    """
    decision = SpendDecision(periods=spend.current_periods(now) if spend.limits_on() else [])
    running = {period.name: period.spent for period in decision.periods}
    for sms in taken:
        if getattr(sms, "opted_out", False):
            decision.kept.append(sms)  # never reaches the provider: costs nothing
            continue
        estimate = price_of(sms)
        if decision.periods and estimate is None:
            decision.held.append(
                Held(
                    sms,
                    now + UNKNOWN_PRICE_RECHECK,
                    f"{PRICE_UNKNOWN_TEXT} of SMS to "
                    f"{countries.country_of(sms.to_phone_number) or sms.to_phone_number} "
                    "is unknown (Pricing API unavailable, or add it to SMS_PRICE_TABLE).",
                    PRICE_UNKNOWN,
                )
            )
            continue
        over = [p for p in decision.periods if running[p.name] + (estimate or 0) > p.limit]
        if over:
            until = max(p.end for p in over)
            names = " and ".join(
                f"{p.name} spend limit ({p.setting}={p.limit}; spent {running[p.name]})"
                for p in over
            )
            decision.held.append(
                Held(
                    sms,
                    until,
                    f"{SPEND_HELD_TEXT} (estimated {estimate}) would pass the {names}; "
                    f"sent from {until:%Y-%m-%d %H:%M} UTC.",
                    over[-1].name,
                )
            )
            continue
        for period in decision.periods:
            running[period.name] += estimate or 0
        decision.kept.append(sms)
        decision.estimates[sms.pk] = estimate
    return decision


def write(
    *,
    now: datetime,
    held: Sequence[Held],
    refused: Sequence[Refused],
    periods: Sequence[spend.Period] = (),
) -> None:
    """Record holds and refusals (inside the claim's transaction)."""
    if held:
        _announce_limits(held, periods, now)
        ids = [h.sms.pk for h in held]
        SmsNotification.objects.filter(pk__in=ids).update(
            next_attempt_datetime=Case(
                *[When(pk=h.sms.pk, then=Value(h.until)) for h in held],
                output_field=DateTimeField(),
            )
        )
        Notification.objects.filter(pk__in=[h.sms.notification_id for h in held]).update(
            status_message=Case(
                *[When(pk=h.sms.notification_id, then=Value(h.reason)) for h in held],
                output_field=TextField(),
            ),
            updated_datetime=now,
        )
        notify_status_changed(h.sms.notification_id for h in held)
    if refused:
        ids = [r.sms.pk for r in refused]
        reasons = [When(pk=r.sms.notification_id, then=Value(r.reason)) for r in refused]
        SmsNotification.objects.filter(pk__in=ids).update(
            error_message=Case(
                *[When(pk=r.sms.pk, then=Value(r.reason)) for r in refused],
                output_field=TextField(),
            ),
            next_attempt_datetime=None,
        )
        Notification.objects.filter(
            pk__in=[r.sms.notification_id for r in refused],
            status=NotificationStatusChoices.PENDING,
        ).update(
            status=NotificationStatusChoices.FAILED,
            status_message=Case(*reasons, output_field=TextField()),
            updated_datetime=now,
        )
        notify_status_changed(r.sms.notification_id for r in refused)


def estimate_fields(
    estimates: dict[int, Decimal | None], now: datetime, claimed: Sequence[int] = ()
) -> dict:
    """Fields for the claim's own UPDATE (of the rows ``claimed``): each row's estimated
    price, counted in ``now``'s periods (no query of its own)."""
    # One WHEN per distinct price, not per row: a batch holds a few prices (country ×
    # segments), and a WHEN per row made this UPDATE's compilation most of a claim's
    # CPU (README, "Benchmarks").
    by_value: dict[Decimal, list[int]] = {}
    for pk, value in estimates.items():
        if value is not None:
            by_value.setdefault(value, []).append(pk)
    if not by_value:
        return {}
    priced = [pk for pks in by_value.values() for pk in pks]
    if len(by_value) == 1 and set(priced) == set(claimed):
        # Every row the UPDATE touches has the same price: no CASE at all.
        return {"estimated_price": next(iter(by_value)), "priced_datetime": now}
    return {
        "estimated_price": Case(
            *[When(pk__in=pks, then=Value(value)) for value, pks in by_value.items()],
            default=F("estimated_price"),
            output_field=DecimalField(max_digits=12, decimal_places=5),
        ),
        "priced_datetime": Case(
            When(pk__in=priced, then=Value(now)),
            default=F("priced_datetime"),
            output_field=DateTimeField(),
        ),
    }


def _announce_limits(held: Sequence[Held], periods: Sequence[spend.Period], now: datetime) -> None:
    """One log line and one ``sms_limit_reached`` per limit that *starts* holding.

    "Starts" is read from the database (no message already held by that limit
    for this period), so it holds across workers: claims are serialised while a
    limit is on.
    """
    for period in periods:
        if not any(h.rule == period.name for h in held):
            continue
        already = SmsNotification.objects.filter(
            notification__status=NotificationStatusChoices.PENDING,
            next_attempt_datetime=period.end,
            notification__status_message__contains=f"{period.name} spend limit",
        ).exists()
        if already:
            continue
        logger.warning(
            "sms_limit_reached limit=%s setting=%s value=%s spent=%s period_start=%s "
            "period_end=%s held=%d",
            period.name,
            period.setting,
            period.limit,
            period.spent,
            period.start.isoformat(),
            period.end.isoformat(),
            sum(1 for h in held if h.rule == period.name),
        )
        transaction.on_commit(
            partial(
                send_limit_reached,
                limit=period.name,
                value=period.limit,
                spent=period.spent,
                period_start=period.start,
                period_end=period.end,
            ),
            robust=True,
        )
