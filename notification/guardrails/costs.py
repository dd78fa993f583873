"""What sending costs and its limits: prices, spend limits, the per-recipient cap.

The per-recipient cap (``SMS_RECIPIENT_DAILY_LIMIT``): messages one number may be
sent in any 24 hours, counted when they are created.

One number flooded is a harassment complaint, a carrier filtering our sender, and,
when the number is an attacker's premium range, money; the cap is checked where a
client can be told (a field error, code ``recipient_limit_reached``), over the
rows created in the last 24 hours plus the request's own items. Canceled
notifications never went out and do not count.

Concurrent creates for the same number are serialised on PostgreSQL
(``pg_advisory_xact_lock`` per number, taken in sorted order so two bulk requests
cannot deadlock), so the cap holds with any number of web processes; SQLite
serialises writers anyway.

Pricing (was ``notification.guardrails.pricing``):

The price of one SMS segment per country, cached, and a message's estimated price.

Sources, first match wins:

1. ``SMS_PRICE_TABLE`` (``"US=0.0083,CA=0.0083,*=0.05"`` or a dict; ``*`` is every
   other country), in ``SMS_PRICE_UNIT``: for backends that publish no prices, or
   to pin a negotiated price.
2. The backend's ``segment_price`` (Twilio: its Pricing API, see
   ``notification.backends.twilio_payloads``).

Prices change rarely, and a lookup must not cost a request per message: each
country's answer is kept for ``SMS_PRICE_REFRESH_SECONDS`` per process. When a
refresh fails (the Pricing API is down), the last known price is kept; with none,
the failure itself is remembered for ``FAILURE_RETRY_SECONDS`` so a batch of a
thousand messages does not make a thousand failing requests.

Spend (was ``notification.guardrails.spend``):

Daily and monthly spend limits (``SMS_DAILY_SPEND_LIMIT``, ``SMS_MONTHLY_SPEND_LIMIT``).

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

Reported (was ``notification.guardrails.reported``):

Recording the price Twilio reports for each sent message, beside our estimate.

Twilio fills a message's ``price`` once the message is final, and its status
callbacks do not carry it, so the price is fetched (``messages(sid).fetch()``
through the backend, ``reported_price``) for final messages that have none yet,
a few per heartbeat run (``notification.jobs.sms``), newest first. The estimate
is what the spend limits count (it is known before sending); the reported price
shows how close the estimate is, per message, in the admin and the API.
"""

import logging
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import Count, Q, Sum

from notification.backends import get_backend
from notification.backends.base import SegmentPrice
from notification.conf import app_settings
from notification.guardrails.places import country_of
from notification.models import DeliveryStatusChoices, NotificationStatusChoices, SmsNotification

# -------- recipients --------------------------------------------------------------------

CODE = "recipient_limit_reached"
WINDOW = timedelta(hours=24)


def cap_errors(numbers: Sequence[tuple[int, str]], now: datetime) -> dict[int, ValidationError]:
    """``{index: error}`` for the items (index, E.164) that would pass the cap.

    Call inside the creating transaction: on PostgreSQL it locks the numbers until
    the transaction ends, so the count cannot be raced.
    """
    limit = int(app_settings.SMS_RECIPIENT_DAILY_LIMIT or 0)
    if not limit or not numbers:
        return {}
    distinct = sorted({number for _, number in numbers})
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(hashtext('sms-recipient:' || n)) "
                "FROM unnest(%s::text[]) AS n ORDER BY n",
                [distinct],
            )
    sent = Counter(
        dict(
            SmsNotification.objects.filter(
                to_phone_number__in=distinct, notification__created_datetime__gte=now - WINDOW
            )
            .exclude(notification__status=NotificationStatusChoices.CANCELED)
            .values_list("to_phone_number")
            .annotate(n=Count("id"))
            .values_list("to_phone_number", "n")
        )
    )
    errors = {}
    for index, number in numbers:
        sent[number] += 1
        if sent[number] > limit:
            errors[index] = ValidationError(
                "%(number)s has been sent %(limit)d messages in the last 24 hours "
                "(SMS_RECIPIENT_DAILY_LIMIT); try again later.",
                code=CODE,
                params={"number": number, "limit": limit},
            )
    return errors


# -------- pricing -----------------------------------------------------------------------

logger = logging.getLogger("notification.guardrails")

FAILURE_RETRY_SECONDS = 60.0
#: Prices are stored with five decimals (Twilio's own precision is at most five).
QUANTUM = Decimal("0.00001")

_lock = threading.Lock()
#: country -> (fetched at, price or None, no request before) in monotonic seconds;
#: "no request before" is set by a failure only.
_cache: dict[str, tuple[float, SegmentPrice | None, float]] = {}


def clear_cache() -> None:
    """Forget every cached price (tests; a changed sender)."""
    with _lock:
        _cache.clear()


def price_table() -> dict[str, Decimal]:
    """``SMS_PRICE_TABLE`` parsed (the system check calls it; ``ValueError`` when malformed)."""
    return _table()


def _table() -> dict[str, Decimal]:
    raw = app_settings.SMS_PRICE_TABLE
    items = raw.items() if isinstance(raw, dict) else _pairs(str(raw or ""))
    table = {}
    for key, value in items:
        try:
            table[str(key).strip().upper()] = abs(Decimal(str(value).strip()))
        except InvalidOperation:
            raise ValueError(f"SMS_PRICE_TABLE: {value!r} is not a price") from None
    return table


def _pairs(raw: str) -> list[tuple[str, str]]:
    pairs = []
    for item in raw.split(","):
        key, sep, value = item.partition("=")
        if sep:
            pairs.append((key, value))
        elif item.strip():
            raise ValueError(f"SMS_PRICE_TABLE item {item!r} is not COUNTRY=PRICE")
    return pairs


def segment_price(country: str) -> SegmentPrice | None:
    """One segment's price to ``country`` (ISO alpha-2), or ``None`` when unknown."""
    country = (country or "").upper()
    table = _table()
    if country in table or "*" in table:
        amount = table[country] if country in table else table["*"]
        return SegmentPrice(amount=amount, unit=str(app_settings.SMS_PRICE_UNIT).upper())
    if not country:
        return None
    now = time.monotonic()
    with _lock:
        cached = _cache.get(country)
    refresh = float(app_settings.SMS_PRICE_REFRESH_SECONDS)
    if cached is not None:
        fetched_at, price, retry_after = cached
        if price is not None and now - fetched_at < refresh:
            return price
        if now < retry_after:
            return price
    try:
        fresh = get_backend().segment_price(country)
    except Exception as exc:  # the Pricing API is down or refused: keep what we know
        stale = cached[1] if cached is not None else None
        logger.warning(
            "sms_price_lookup_failed country=%s error=%r kept=%s",
            country,
            f"{type(exc).__name__}: {exc}",
            stale.amount if stale else "none",
        )
        with _lock:
            _cache[country] = (
                cached[0] if cached else 0.0,
                stale,
                now + FAILURE_RETRY_SECONDS,
            )
        return stale
    with _lock:
        # A country with no price is asked again after a while, not at every message.
        _cache[country] = (now, fresh, 0.0 if fresh else now + FAILURE_RETRY_SECONDS)
    return fresh


def estimate(price: SegmentPrice | None, segments: int) -> Decimal | None:
    """What ``segments`` segments cost at ``price`` (``None`` when the price is unknown)."""
    if price is None:
        return None
    return (price.amount * max(1, segments)).quantize(QUANTUM, rounding=ROUND_HALF_UP)


def price_estimate(e164: str, segments: int) -> tuple[Decimal, str] | None:
    """(estimated price, unit) of a message of ``segments`` to ``e164``; None if unknown."""
    price = segment_price(country_of(e164))
    amount = estimate(price, segments)
    return None if price is None or amount is None else (amount, price.unit)


# -------- spend -------------------------------------------------------------------------

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


# -------- reported ----------------------------------------------------------------------

#: Statuses after which Twilio's price is final.
FINAL_STATUSES = (
    DeliveryStatusChoices.DELIVERED,
    DeliveryStatusChoices.UNDELIVERED,
    DeliveryStatusChoices.FAILED,
)
#: Messages older than this are not asked about any more.
LOOK_BACK = timedelta(days=7)


def record_reported_prices(now: datetime, *, limit: int = 50, seconds: float = 10.0) -> int:
    """Fetch and store up to ``limit`` reported prices within ``seconds``; returns how many.

    Stops at the first failed request (the API is down: the next run tries again).
    """
    rows = list(
        SmsNotification.objects.filter(
            twilio_sid__isnull=False,
            price__isnull=True,
            delivery_status__in=FINAL_STATUSES,
            sent_datetime__gte=now - LOOK_BACK,
        )
        .order_by("-sent_datetime")
        .only("pk", "twilio_sid")[:limit]
    )
    if not rows:
        return 0
    backend = get_backend()
    deadline = time.monotonic() + seconds
    stored = 0
    for sms in rows:
        if time.monotonic() > deadline:
            break
        if not sms.twilio_sid:
            continue
        try:
            reported = backend.reported_price(sms.twilio_sid)
        except Exception as exc:  # the provider is unreachable: try next run
            logger.warning("sms_price_fetch_failed sid=%s error=%r", sms.twilio_sid, str(exc))
            break
        if reported is None:
            continue
        amount, unit = reported
        stored += SmsNotification.objects.filter(pk=sms.pk, price__isnull=True).update(
            price=amount, price_unit=unit[:8]
        )
    return stored
