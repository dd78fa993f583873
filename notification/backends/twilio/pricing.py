"""Twilio's price of one outbound SMS segment, from the Pricing API through the SDK.

``client.pricing.v1.messaging.countries(iso).fetch()`` returns, per carrier
(MCC/MNC), a price for each sender number type (``local``, ``mobile``,
``national``, ``toll free``, ``shortcode``), and the currency in ``price_unit``
(https://www.twilio.com/docs/sms/api/pricing). We take the **highest** current
price among the carriers for our sender's number type (among all types when the
sender is a Messaging Service, whose pool may mix types): the carrier a message
takes is unknown before it is sent, and a spend limit must not be passed because
the estimate picked the cheapest one.
"""

from decimal import Decimal, InvalidOperation
from typing import Any

import phonenumbers

from notification.backends.base import SegmentPrice

#: Twilio's number types that a long code (a normal phone number) is billed as.
LONG_CODE_TYPES = ("local", "mobile", "national")


def sender_number_types(from_number: str, messaging_service_sid: str) -> tuple[str, ...]:
    """Which of Twilio's ``number_type`` values our sender's messages are billed as
    (empty: any of them, for a Messaging Service)."""
    if messaging_service_sid or not from_number:
        return ()
    if not from_number.startswith("+"):
        return ("shortcode",)
    try:
        number = phonenumbers.parse(from_number, None)
    except phonenumbers.NumberParseException:
        return ()
    if phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.TOLL_FREE:
        return ("toll free",)
    return LONG_CODE_TYPES


def _decimal(raw: Any) -> Decimal | None:
    try:
        value = Decimal(str(raw))
    except (InvalidOperation, ValueError):
        return None
    return abs(value) if value.is_finite() else None


def highest_price(
    outbound_sms_prices: list[dict[str, Any]] | None, number_types: tuple[str, ...]
) -> Decimal | None:
    """The highest ``current_price`` (else ``base_price``) for ``number_types``
    (all types when empty, or when the country lists none of them)."""
    by_type: list[tuple[str, Decimal]] = []
    for carrier in outbound_sms_prices or []:
        for price in carrier.get("prices") or []:
            value = _decimal(price.get("current_price") or price.get("base_price"))
            if value is not None:
                by_type.append((str(price.get("number_type") or "").lower(), value))
    matching = [value for kind, value in by_type if kind in number_types] if number_types else []
    pool = matching or [value for _, value in by_type]
    return max(pool) if pool else None


def fetch_segment_price(client: Any, country: str, number_types: tuple[str, ...]):
    """One Pricing API call: the price for ``country``, or ``None`` when it lists none."""
    record = client.pricing.v1.messaging.countries(country).fetch()
    amount = highest_price(record.outbound_sms_prices, number_types)
    if amount is None:
        return None
    return SegmentPrice(amount=amount, unit=str(record.price_unit or "USD").upper())


def message_price(message: Any) -> tuple[Decimal, str] | None:
    """A fetched Message's billed price, positive, with its unit (``None`` while empty)."""
    amount = _decimal(message.price) if message.price not in (None, "") else None
    if amount is None:
        return None
    return amount, str(message.price_unit or "USD").upper()
