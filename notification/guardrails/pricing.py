"""The price of one SMS segment per country, cached, and a message's estimated price.

Sources, first match wins:

1. ``SMS_PRICE_TABLE`` (``"US=0.0083,CA=0.0083,*=0.05"`` or a dict; ``*`` is every
   other country), in ``SMS_PRICE_UNIT``: for backends that publish no prices, or
   to pin a negotiated price.
2. The backend's ``segment_price`` (Twilio: its Pricing API, see
   ``notification.backends.twilio.pricing``).

Prices change rarely, and a lookup must not cost a request per message: each
country's answer is kept for ``SMS_PRICE_REFRESH_SECONDS`` per process. When a
refresh fails (the Pricing API is down), the last known price is kept; with none,
the failure itself is remembered for ``FAILURE_RETRY_SECONDS`` so a batch of a
thousand messages does not make a thousand failing requests.
"""

import logging
import threading
import time
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from notification.backends import get_backend
from notification.backends.base import SegmentPrice
from notification.conf import app_settings
from notification.guardrails.countries import country_of

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
