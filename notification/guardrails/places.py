"""Where and when a message may go: the country allow-list and quiet hours.

The country allow-list (``SMS_ALLOWED_COUNTRIES``).

SMS pumping ("artificially inflated traffic") makes a sender pay for messages to
number ranges an attacker profits from, usually in a few countries far from the
business's own; Twilio's Geo Permissions stop it per account, invisibly to the
app (https://www.twilio.com/docs/messaging/guides/sms-geo-permissions). The app's
own list refuses such numbers where the client can see why: at create time as a
field error, and at send time (for rows made with the ORM or before the setting
changed) as a failure without any request to Twilio.

The country is libphonenumber's region of the number (ISO 3166 alpha-2), so
``+1 416`` is ``CA``, not ``US``: a North American business that texts Canada
lists both.

Quiet hours (was ``notification.guardrails.quiet_hours``):

Quiet hours: no marketing message while it is night where the recipient is.

The TCPA rule, 47 CFR 64.1200(c)(1), forbids telephone solicitations (texts
included) before 8:00 or after 21:00 at the called party's location; several US
states are stricter (Florida, Oklahoma, Maryland, Mississippi and New Jersey:
8:00-20:00). The rule is about solicitations, so only ``MARKETING`` notifications
are held; receipts, codes and alerts (``TRANSACTIONAL``) never are.

Where the recipient is comes from the number (``phonenumbers.timezone``, the area
code as the location proxy) unless the creator gave ``recipient_time_zone``. A
number can map to several zones (a whole country, a non-geographic range); a time
is allowed only when it is allowed in **every** one of them, so no recipient
behind the number is texted in their night. A number with no known zone
(``Etc/Unknown``) is held until a zone is given: guessing could text at 3 a.m.

The window is checked at send time (``screen``), so a message created in the
afternoon and published at night is held too, whoever created it.
"""

import functools
import re
import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import phonenumbers
from django.core.exceptions import ValidationError
from phonenumbers import geocoder
from phonenumbers import timezone as phone_timezone

from notification.conf import app_settings
from notification.values import ALL_COUNTRIES, allowed_countries, country_of
from notification.values import COUNTRY_CODE as CODE
from notification.values import check_allowed_country as check_allowed
from notification.values import country_refusal as refusal

# -------- countries ---------------------------------------------------------------------

# The rule itself lives in ``notification.values`` (the model's validators need it and
# sit below the guardrails); these are its names for the send-time guardrails.

__all__ = ["ALL_COUNTRIES", "CODE", "allowed_countries", "check_allowed", "country_of", "refusal"]


# -------- quiet_hours -------------------------------------------------------------------

_WINDOW = re.compile(r"^\s*([01]?\d|2[0-3]):([0-5]\d)\s*-\s*([01]?\d|2[0-3]):([0-5]\d)\s*$")
UNKNOWN_ZONE = "Etc/Unknown"
#: Every quiet-hours hold's status message starts with it (``sms_held_messages`` counts by it).
HELD_TEXT = "Held: quiet hours"
#: How often a message with no allowed time at all is looked at again.
NEVER_RECHECK = timedelta(hours=24)

#: US state names as libphonenumber's geocoder writes them, for "US-XX" region rules.
US_STATES = {
    "Alabama": "AL", "Alaska": "AK", "Arizona": "AZ", "Arkansas": "AR", "California": "CA",
    "Colorado": "CO", "Connecticut": "CT", "Delaware": "DE", "Florida": "FL", "Georgia": "GA",
    "Hawaii": "HI", "Idaho": "ID", "Illinois": "IL", "Indiana": "IN", "Iowa": "IA",
    "Kansas": "KS", "Kentucky": "KY", "Louisiana": "LA", "Maine": "ME", "Maryland": "MD",
    "Massachusetts": "MA", "Michigan": "MI", "Minnesota": "MN", "Mississippi": "MS",
    "Missouri": "MO", "Montana": "MT", "Nebraska": "NE", "Nevada": "NV", "New Hampshire": "NH",
    "New Jersey": "NJ", "New Mexico": "NM", "New York": "NY", "North Carolina": "NC",
    "North Dakota": "ND", "Ohio": "OH", "Oklahoma": "OK", "Oregon": "OR", "Pennsylvania": "PA",
    "Rhode Island": "RI", "South Carolina": "SC", "South Dakota": "SD", "Tennessee": "TN",
    "Texas": "TX", "Utah": "UT", "Vermont": "VT", "Virginia": "VA", "Washington": "WA",
    "West Virginia": "WV", "Wisconsin": "WI", "Wyoming": "WY", "Washington D.C.": "DC",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Window:
    """Quiet from ``start`` to ``end`` local time; wraps midnight when start > end."""

    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def end_after(self, local: datetime) -> datetime:
        """The window's end following ``local`` (which is inside it), in the same zone."""
        day: date = local.date()
        if self.start > self.end and local.time() >= self.start:
            day += timedelta(days=1)
        return datetime.combine(day, self.end, tzinfo=local.tzinfo)


def parse_window(raw: str) -> Window | None:
    """``"21:00-08:00"`` as a ``Window``; empty text is ``None`` (quiet hours off)."""
    if not (raw or "").strip():
        return None
    match = _WINDOW.match(raw)
    if match is None:
        raise ValueError(f"{raw!r} is not a quiet-hours window like 21:00-08:00")
    h1, m1, h2, m2 = (int(part) for part in match.groups())
    if (h1, m1) == (h2, m2):
        raise ValueError(f"{raw!r} is an empty window: start and end are the same")
    return Window(time(h1, m1), time(h2, m2))


def default_window() -> Window | None:
    return parse_window(app_settings.SMS_QUIET_HOURS)


def region_windows() -> dict[str, Window]:
    """``SMS_QUIET_HOURS_BY_REGION`` (``"US-FL=08:00-20:00,FR=20:00-08:00"`` or a dict)."""
    raw = app_settings.SMS_QUIET_HOURS_BY_REGION
    pairs = raw.items() if isinstance(raw, dict) else _split_pairs(str(raw or ""))
    windows = {}
    for key, value in pairs:
        window = parse_window(value)
        if window is not None:
            windows[key.strip().upper()] = window
    return windows


def _split_pairs(raw: str) -> list[tuple[str, str]]:
    pairs = []
    for item in raw.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"SMS_QUIET_HOURS_BY_REGION item {item!r} is not REGION=HH:MM-HH:MM")
        pairs.append((key, value))
    return pairs


def validate_time_zone(name: str) -> str:
    """The IANA zone name, or ``ValidationError`` (code ``invalid_time_zone``)."""
    name = (name or "").strip()
    if name not in _available_zones():
        raise ValidationError(
            "%(name)r is not an IANA time zone name (like America/New_York).",
            code="invalid_time_zone",
            params={"name": name[:64]},
        )
    return name


@functools.cache
def _available_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def zones_for(e164: str, override: str = "") -> tuple[str, ...]:
    """The recipient's IANA zones: the override, else every zone of the number."""
    if override:
        return (override,)
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    return tuple(z for z in phone_timezone.time_zones_for_number(number) if z != UNKNOWN_ZONE)


def regions_for(e164: str) -> tuple[str, ...]:
    """Region keys a per-region rule may name: the country, and for US numbers "US-XX"."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return ()
    country = phonenumbers.region_code_for_number(number) or ""
    keys = [country] if country else []
    if country == "US":
        where = geocoder.description_for_number(number, "en")
        state = where.rsplit(", ", 1)[1] if ", " in where else US_STATES.get(where, "")
        if state:
            keys.append(f"US-{state}")
    return tuple(keys)


def windows_for(e164: str) -> list[Window]:
    """The default window plus any stricter per-region one (all of them apply)."""
    windows = [w for w in [default_window()] if w is not None]
    by_region = region_windows()
    if by_region:
        windows += [by_region[key] for key in regions_for(e164) if key in by_region]
    return windows


@dataclass(frozen=True, slots=True)
class QuietHold:
    """The message waits until ``until`` (UTC); ``reason`` is its status message."""

    until: datetime
    reason: str


def hold_for(now: datetime, e164: str, override: str = "") -> QuietHold | None:
    """``None`` when a marketing message to ``e164`` may go at ``now``, else until when.

    Moves forward to the latest window end among the zones that are quiet, and
    checks again (another zone may be quiet by then), until a moment is allowed
    everywhere; when none is (zones further apart than the allowed hours), the
    message waits ``NEVER_RECHECK`` and says why.
    """
    windows = windows_for(e164)
    if not windows:
        return None
    zones = zones_for(e164, override)
    if not zones:
        return QuietHold(
            now + NEVER_RECHECK,
            f"{HELD_TEXT} apply but the time zone of {e164} is unknown; "
            "give recipientTimeZone to send it.",
        )
    names = ", ".join(str(w) for w in windows)
    moment = now
    for _ in range(4 * len(zones) + 4):
        ends = [
            window.end_after(local).astimezone(UTC)
            for zone in zones
            for local in [moment.astimezone(zoneinfo.ZoneInfo(zone))]
            for window in windows
            if window.contains(local.time())
        ]
        if not ends:
            if moment == now:
                return None
            return QuietHold(
                moment,
                f"{HELD_TEXT} ({names}) in the recipient's time zone "
                f"({_zone_text(zones)}); sent after {moment:%Y-%m-%d %H:%M} UTC.",
            )
        moment = max(ends)
    return QuietHold(
        now + NEVER_RECHECK,
        f"{HELD_TEXT} ({names}) leave no hour allowed in all of the number's "
        f"{len(zones)} time zones; give recipientTimeZone to send it.",
    )


def _zone_text(zones: tuple[str, ...]) -> str:
    return zones[0] if len(zones) == 1 else f"{len(zones)} zones: {zones[0]}, ..."
