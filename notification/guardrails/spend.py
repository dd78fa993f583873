"""Daily and monthly spend limits (``SMS_DAILY_SPEND_LIMIT``, ``SMS_MONTHLY_SPEND_LIMIT``).

The spend of a period is counted **in the database**: the sum of
``estimated_price`` over SMS rows priced in that period (``priced_datetime``, set
when a worker claims the row) that are in flight or reached the provider. Rows
that went back to pending or failed without a provider sid never left, so they
do not count (they are priced again if they are claimed again).

The claim step reads the sum and prices its rows inside one transaction under a
lock that serialises every claim while a limit is on (``lock_spend``:
``pg_advisory_xact_lock`` on PostgreSQL; SQLite's ``BEGIN IMMEDIATE`` serialises
writers anyway), and in-flight rows are already counted, so with any number of
workers the **estimated** spend of a period never exceeds its limit. The billed
spend can differ from the estimate only by what Twilio bills above it: a price
raised within ``SMS_PRICE_REFRESH_SECONDS`` of our last lookup, or a message Twilio
splits into more segments than we counted. The estimate uses the highest
carrier's price, so it is normally above the bill. Periods are UTC days and
months.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.db import connection
from django.db.models import Q, Sum

from notification.conf import app_settings
from notification.models import NotificationStatusChoices, SmsNotification

DAILY = "daily"
MONTHLY = "monthly"


@dataclass(frozen=True, slots=True)
class Period:
    """One limit's current period and how much of it is left."""

    name: str  # DAILY or MONTHLY
    limit: Decimal
    start: datetime
    end: datetime
    spent: Decimal

    @property
    def left(self) -> Decimal:
        return self.limit - self.spent

    @property
    def setting(self) -> str:
        return f"SMS_{self.name.upper()}_SPEND_LIMIT"


def _limit(name: str) -> Decimal:
    value = Decimal(str(getattr(app_settings, f"SMS_{name.upper()}_SPEND_LIMIT") or 0))
    return value if value > 0 else Decimal(0)


def day_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return start, start + timedelta(days=1)


def month_bounds(now: datetime) -> tuple[datetime, datetime]:
    start = now.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


def limits_on() -> bool:
    return bool(_limit(DAILY) or _limit(MONTHLY))


def counted_spend() -> Q:
    """Rows whose estimated price is spent: in flight, unknown, or accepted by the provider."""
    return Q(twilio_sid__isnull=False) | Q(
        notification__status__in=[
            NotificationStatusChoices.PROCESSING,
            NotificationStatusChoices.UNKNOWN,
        ]
    )


def lock_spend() -> None:
    """Serialise spend checks across workers for the rest of the transaction."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", ["sms-spend"])


PERIODS = ((DAILY, day_bounds), (MONTHLY, month_bounds))


def period_spend(now: datetime, names: tuple[str, ...] = (DAILY, MONTHLY)) -> dict[str, Decimal]:
    """The estimated spend of ``now``'s period for each name, as the limits count it: one query.

    The one rule for "spent" (``counted_spend`` rows priced since the period's
    start): the claim's limit check and the ``sms_spend`` gauge both read it.
    """
    starts = {name: bounds(now)[0] for name, bounds in PERIODS if name in names}
    if not starts:
        return {}
    sums = SmsNotification.objects.filter(
        counted_spend(), priced_datetime__gte=min(starts.values()), estimated_price__isnull=False
    ).aggregate(
        **{
            name: Sum("estimated_price", filter=Q(priced_datetime__gte=start))
            for name, start in starts.items()
        }
    )
    return {name: Decimal(sums[name] or 0) for name in starts}


def current_periods(now: datetime) -> list[Period]:
    """The periods whose limit is on, with their spend so far: one query for both."""
    wanted = [(name, _limit(name), bounds(now)) for name, bounds in PERIODS if _limit(name)]
    if not wanted:
        return []
    spent = period_spend(now, tuple(name for name, _, _ in wanted))
    return [Period(name, limit, start, end, spent[name]) for name, limit, (start, end) in wanted]


def limit_of(name: str) -> Decimal:
    """A period's limit (0: off)."""
    return _limit(name)
