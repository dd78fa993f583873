"""Twilio's Messaging Pricing API: ``GET /v1/Messaging/Countries/{IsoCountry}``.

Served on the emulator's one port: the SDK calls ``pricing.twilio.com`` and the
project's ``BaseUrlHttpClient`` re-bases it like every other request. The body
follows https://www.twilio.com/docs/sms/api/pricing (Country resource):
``outbound_sms_prices`` per carrier (``mcc``/``mnc``) with ``prices`` per
``number_type`` (``base_price``, ``current_price``, decimal strings),
``inbound_sms_prices`` and ``price_unit``. A country with no table is a 404
(code 20404), as Twilio answers for an unknown ISO code.

The default table holds a few countries with two carriers each (different
prices, so "which carrier" matters); tests replace it with
``POST /_emulator/prices`` (``{"US": {"local": "0.01", "toll free": "0.02"}}``,
each price applied to two carriers, the second 10 % dearer).
"""

from decimal import Decimal
from typing import Any

#: ISO country -> (name, {number_type: price of the cheaper carrier}).
DEFAULT_PRICES: dict[str, tuple[str, dict[str, str]]] = {
    "US": ("United States", {"local": "0.0079", "toll free": "0.0079", "shortcode": "0.0070"}),
    "CA": ("Canada", {"local": "0.0079", "toll free": "0.0079", "shortcode": "0.0070"}),
    "GB": ("United Kingdom", {"mobile": "0.0400", "shortcode": "0.0350"}),
    "FR": ("France", {"mobile": "0.0800"}),
    "DE": ("Germany", {"mobile": "0.0900"}),
}
#: The second carrier of each country charges this much more.
SECOND_CARRIER_FACTOR = Decimal("1.1")


def carrier_prices(by_type: dict[str, str]) -> list[dict[str, Any]]:
    """Two carriers' ``outbound_sms_prices`` entries for one table row."""
    carriers = []
    for index, factor in enumerate((Decimal(1), SECOND_CARRIER_FACTOR)):
        prices = []
        for number_type, raw in by_type.items():
            price = (Decimal(raw) * factor).quantize(Decimal("0.00001"))
            prices.append(
                {"number_type": number_type, "base_price": str(price), "current_price": str(price)}
            )
        carriers.append(
            {"carrier": f"Carrier {index + 1}", "mcc": "310", "mnc": f"{index + 1:03d}",
             "prices": prices}
        )  # fmt: skip
    return carriers


def highest_price(by_type: dict[str, str], number_type: str) -> Decimal:
    """What a message of one segment is billed: the dearer carrier, for ``number_type``
    (or for any type when the country lists none of that type)."""
    raw = by_type.get(number_type) or max(by_type.values(), key=Decimal)
    return (Decimal(raw) * SECOND_CARRIER_FACTOR).quantize(Decimal("0.00001"))


def country_resource(iso: str, name: str, by_type: dict[str, str]) -> dict[str, Any]:
    return {
        "country": name,
        "iso_country": iso,
        "outbound_sms_prices": carrier_prices(by_type),
        "inbound_sms_prices": [
            {"number_type": t, "base_price": "0.0079", "current_price": "0.0079"} for t in by_type
        ],
        "price_unit": "USD",
        "url": f"https://pricing.twilio.com/v1/Messaging/Countries/{iso}",
    }
