"""Compliance and cost guardrails (issue 18): quiet hours, the country allow-list,
prices from the emulator's Pricing API, spend limits, the per-recipient cap.

Time is pinned with ``run_batch(now=...)`` at chosen UTC instants, and numbers are
chosen for their zones, so every quiet-hours verdict is deterministic. Every hold
is checked against the emulator's request log: a held message never reaches Twilio.
"""

import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.core.management import call_command

from notification.guardrails import costs as pricing
from notification.guardrails import costs as reported
from notification.guardrails import places as quiet_hours
from notification.models import (
    NotificationCategoryChoices,
    NotificationStatusChoices,
    SmsNotification,
)
from notification.send.batch import run_batch
from notification.signals import sms_limit_reached
from tests.support.sending_helpers import gsm_body, make_sms, reload
from tests.support.settings_helpers import set_sms
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_status_callbacks"),
]

Status = NotificationStatusChoices
MARKETING = NotificationCategoryChoices.MARKETING

NEW_YORK = "+12125550100"
#: 23:00 in New York (EDT, UTC-4): inside the default 21:00-08:00 window.
NY_NIGHT = datetime(2030, 6, 15, 3, 0, tzinfo=UTC)
#: 08:00 in New York: the window's end.
NY_MORNING = datetime(2030, 6, 15, 12, 0, tzinfo=UTC)
#: 13:00 in New York.
NY_AFTERNOON = datetime(2030, 6, 14, 17, 0, tzinfo=UTC)


def marketing(to: str = NEW_YORK, *, publish: datetime, body: str = "Sale!", tz: str = ""):
    sms = make_sms(to=to, body=body, publish=publish)
    sms.notification.category = MARKETING
    sms.notification.save(update_fields=["category"])
    if tz:
        sms.recipient_time_zone = tz
        sms.save(update_fields=["recipient_time_zone"])
    return sms


def creates_to(emulator, number: str) -> int:
    return sum(1 for r in emulator.requests() if r.get("to") == number)


# --- quiet hours -------------------------------------------------------------------


def test_marketing_is_held_in_quiet_hours_and_goes_out_when_the_window_ends(twilio_emulator):
    sms = marketing(publish=NY_NIGHT - timedelta(minutes=5))

    report = run_batch(now=NY_NIGHT)

    assert (report.claimed, report.held) == (0, 1)
    held = reload(sms)
    assert held.notification.status == Status.PENDING
    assert held.next_attempt_datetime == NY_MORNING
    assert "quiet hours (21:00-08:00)" in held.notification.status_message
    assert "America/New_York" in held.notification.status_message
    assert held.attempts == 0  # a hold burns no attempt
    assert twilio_emulator.requests() == []

    # Still held a minute before the end; sent at the end.
    assert run_batch(now=NY_MORNING - timedelta(minutes=1)).claimed == 0
    assert run_batch(now=NY_MORNING).sent == 1
    sent = reload(sms)
    assert (sent.notification.status, sent.notification.status_message) == (Status.SENT, "")
    assert creates_to(twilio_emulator, NEW_YORK) == 1


def test_transactional_messages_are_never_held(twilio_emulator):
    sms = make_sms(to=NEW_YORK, publish=NY_NIGHT - timedelta(minutes=5))
    assert sms.notification.category == NotificationCategoryChoices.TRANSACTIONAL
    assert run_batch(now=NY_NIGHT).sent == 1


def test_a_message_published_into_the_window_is_held_at_send_time(twilio_emulator):
    """Created in the afternoon, due at night: the check is at send time, not create."""
    sms = marketing(publish=NY_NIGHT)
    assert run_batch(now=NY_AFTERNOON).claimed == 0  # not due yet
    assert run_batch(now=NY_NIGHT).held == 1
    assert reload(sms).next_attempt_datetime == NY_MORNING
    assert twilio_emulator.requests() == []


def test_a_number_with_several_zones_waits_until_every_zone_allows_it(settings):
    """A Russian mobile maps to 16 zones, Bucharest (UTC+3 in June) to Kamchatka (UTC+12).
    At 12:00 UTC it is midnight in Kamchatka; at 20:00 UTC (08:00 there) it is 23:00 in
    Bucharest; at 05:00 UTC (08:00 in Bucharest) it is 17:00 in Kamchatka: allowed."""
    set_sms(settings, SMS_ALLOWED_COUNTRIES="*")
    number = "+79161234567"
    assert len(quiet_hours.zones_for(number)) == 16
    hold = quiet_hours.hold_for(datetime(2030, 6, 15, 12, 0, tzinfo=UTC), number)
    assert hold is not None and hold.until == datetime(2030, 6, 16, 5, 0, tzinfo=UTC)
    assert quiet_hours.hold_for(hold.until, number) is None


def test_zones_with_no_common_allowed_hour_or_no_known_zone_wait_for_an_override(settings):
    set_sms(settings, SMS_QUIET_HOURS="12:00-11:00")  # 23 quiet hours: no overlap across zones
    now = datetime(2030, 6, 15, 12, 0, tzinfo=UTC)
    hold = quiet_hours.hold_for(now, "+79161234567")
    assert hold is not None and "no hour allowed" in hold.reason
    assert hold.until == now + quiet_hours.NEVER_RECHECK
    unknown = quiet_hours.hold_for(now, "+88216123456")  # non-geographic: Etc/Unknown
    assert unknown is not None and "time zone of +88216123456 is unknown" in unknown.reason


def test_recipient_time_zone_overrides_the_numbers_zone(twilio_emulator):
    tokyo = marketing(publish=NY_NIGHT - timedelta(minutes=5), body="Tokyo", tz="Asia/Tokyo")
    report = run_batch(now=NY_NIGHT)  # 12:00 in Tokyo, 23:00 in New York
    assert (report.sent, report.held) == (1, 0)
    assert reload(tokyo).notification.status == Status.SENT


def test_quiet_hours_can_be_turned_off_and_wrap_or_not(settings, twilio_emulator):
    set_sms(settings, SMS_QUIET_HOURS="")
    marketing(publish=NY_NIGHT - timedelta(minutes=5))
    assert run_batch(now=NY_NIGHT).sent == 1
    window = quiet_hours.parse_window("13:00-14:30")
    assert window is not None and not window.contains(datetime(2030, 1, 1, 14, 30).time())
    with pytest.raises(ValueError):
        quiet_hours.parse_window("9pm-8am")


def test_stricter_region_windows_apply_on_top_of_the_default(settings, twilio_emulator):
    """Florida's 8:00-20:00: a Miami number at 20:30 is held, a New York one is not."""
    set_sms(settings, SMS_QUIET_HOURS_BY_REGION="US-FL=20:00-08:00")
    evening = datetime(2030, 6, 15, 0, 30, tzinfo=UTC)  # 20:30 EDT
    miami = marketing("+13055550100", publish=evening - timedelta(minutes=1))
    marketing(NEW_YORK, publish=evening - timedelta(minutes=1))
    report = run_batch(now=evening)
    assert (report.sent, report.held) == (1, 1)
    assert "20:00-08:00" in reload(miami).notification.status_message
    assert creates_to(twilio_emulator, "+13055550100") == 0


# --- country allow-list ------------------------------------------------------------

CREATE = """
mutation Create($input: CreateSmsNotificationInput!) {
  createSmsNotification(input: $input) {
    notification { id category sms { toPhoneNumber recipientTimeZone } }
    errors { field message code index }
  }
}
"""
CREATE_MANY = """
mutation CreateMany($input: [CreateSmsNotificationInput!]!) {
  createSmsNotifications(input: $input) {
    notifications { id category }
    errors { field message code index }
  }
}
"""


def item(**overrides):
    return {"title": "T", "body": "Hello", "toPhoneNumber": "+14155550100", **overrides}


def test_create_refuses_numbers_outside_the_allow_list(graphql, staff_user, settings):
    gql = graphql(staff_user)
    refused = gql.data(CREATE, {"input": item(toPhoneNumber="+998901234567")})
    (error,) = refused["createSmsNotification"]["errors"]
    assert (error["field"], error["code"]) == ("toPhoneNumber", "country_not_allowed")
    assert "UZ" in error["message"] and "US" in error["message"]
    bulk = gql.data(CREATE_MANY, {"input": [item(), item(toPhoneNumber="+447400123456"), item()]})[
        "createSmsNotifications"
    ]
    assert [(e["index"], e["code"]) for e in bulk["errors"]] == [(1, "country_not_allowed")]
    assert SmsNotification.objects.count() == 0  # all or nothing

    set_sms(settings, SMS_ALLOWED_COUNTRIES="us, gb")
    ok = gql.data(CREATE, {"input": item(toPhoneNumber="+447400123456")})
    assert ok["createSmsNotification"]["errors"] == []
    set_sms(settings, SMS_ALLOWED_COUNTRIES="*")
    ok = gql.data(CREATE, {"input": item(toPhoneNumber="+998901234567")})
    assert ok["createSmsNotification"]["errors"] == []


def test_a_row_outside_the_allow_list_fails_at_send_time_without_a_request(twilio_emulator):
    """Made with the ORM (no create-time check), or allowed when the setting was wider."""
    uk = make_sms(to="+447400123456")
    us = make_sms()
    report = run_batch()
    assert (report.sent, report.refused) == (1, 1)
    failed = reload(uk)
    assert failed.notification.status == Status.FAILED
    assert "SMS_ALLOWED_COUNTRIES allows only US" in failed.notification.status_message
    assert failed.attempts == 0 and failed.twilio_sid is None
    assert creates_to(twilio_emulator, "+447400123456") == 0
    assert reload(us).notification.status == Status.SENT


def test_category_and_time_zone_on_create_and_filter(graphql, staff_user):
    gql = graphql(staff_user)
    created = gql.data(
        CREATE,
        {"input": item(category="MARKETING", recipientTimeZone="America/Chicago")},
    )["createSmsNotification"]
    assert created["errors"] == []
    assert created["notification"]["category"] == "MARKETING"
    assert created["notification"]["sms"]["recipientTimeZone"] == "America/Chicago"
    default = gql.data(CREATE, {"input": item()})["createSmsNotification"]["notification"]
    assert default["category"] == "TRANSACTIONAL"
    bad = gql.data(CREATE, {"input": item(recipientTimeZone="Mars/Olympus")})
    (error,) = bad["createSmsNotification"]["errors"]
    assert (error["field"], error["code"]) == ("recipientTimeZone", "invalid_time_zone")
    listed = gql.data("{ notifications(filters: {category: {exact: MARKETING}}) { totalCount } }")[
        "notifications"
    ]
    assert listed["totalCount"] == 1


# --- prices -------------------------------------------------------------------------

SEGMENTS = """
query Count($body: String!, $to: String) {
  smsSegments(body: $body, toPhoneNumber: $to) { segments estimatedPrice priceUnit }
}
"""


def test_sms_segments_prices_from_the_emulators_pricing_api(graphql, staff_user, twilio_emulator):
    twilio_emulator.set_prices({"US": {"local": "0.0100", "toll free": "0.0300"}})
    gql = graphql(staff_user)
    two = gql.data(SEGMENTS, {"body": gsm_body(2), "to": "+14155550100"})["smsSegments"]
    # The dearer carrier (the emulator's second, +10 %) for a long code, per segment.
    assert two == {"segments": 2, "estimatedPrice": "0.02200", "priceUnit": "USD"}
    gql.data(SEGMENTS, {"body": "again", "to": "+14155550101"})
    assert twilio_emulator.price_requests() == ["US"]  # cached
    bare = gql.data(SEGMENTS, {"body": "no number"})["smsSegments"]
    assert bare["estimatedPrice"] is None and bare["priceUnit"] is None
    bad = gql.execute(SEGMENTS, {"body": "x", "to": "not a number"})
    assert bad["errors"][0]["extensions"]["code"] == "invalid_phone_number"


def test_each_sent_sms_records_its_estimate_and_then_twilios_price(twilio_emulator):
    twilio_emulator.set_prices({"US": {"local": "0.0100"}})
    twilio_emulator.configure(callback_delay_ms=0, drain_rate=1000)
    sms = make_sms(body=gsm_body(3))
    assert run_batch().sent == 1
    sent = reload(sms)
    assert sent.estimated_price == Decimal("0.03300") and sent.priced_datetime is not None

    def final() -> bool:
        return twilio_emulator.messages()[0]["status"] == "delivered"

    wait_until(final, timeout=10, what="the emulator delivering")
    SmsNotification.objects.filter(pk=sms.pk).update(delivery_status="delivered")
    assert reported.record_reported_prices(sent.sent_datetime) == 1
    billed = reload(sms)
    assert (billed.price, billed.price_unit) == (Decimal("0.03300"), "USD")


def test_price_cache_refreshes_and_keeps_the_last_price_when_the_api_fails(
    twilio_emulator, settings, caplog
):
    set_sms(settings, SMS_PRICE_REFRESH_SECONDS=3600)
    twilio_emulator.set_prices({"CA": {"local": "0.0100"}})
    assert pricing.segment_price("CA").amount == Decimal("0.01100")
    assert pricing.segment_price("CA").amount == Decimal("0.01100")
    assert twilio_emulator.price_requests() == ["CA"]
    set_sms(settings, SMS_PRICE_REFRESH_SECONDS=1)  # now stale: the next lookup refreshes ...
    pricing._cache["CA"] = (pricing._cache["CA"][0] - 5, *pricing._cache["CA"][1:])
    twilio_emulator.set_prices({})  # ... and the Pricing API has no price (404)
    with caplog.at_level(logging.WARNING, logger="notification.guardrails"):
        assert pricing.segment_price("CA").amount == Decimal("0.01100")  # the last one kept
        assert pricing.segment_price("CA").amount == Decimal("0.01100")
    assert twilio_emulator.price_requests() == ["CA", "CA"]  # failure remembered a while
    assert "sms_price_lookup_failed country=CA" in caplog.text


def test_a_price_table_overrides_the_pricing_api(twilio_emulator, settings):
    set_sms(settings, SMS_PRICE_TABLE="US=0.05,*=0.2")
    set_sms(settings, SMS_PRICE_UNIT="EUR")
    assert pricing.price_estimate("+14155550100", 2) == (Decimal("0.10000"), "EUR")
    assert pricing.price_estimate("+447400123456", 1) == (Decimal("0.20000"), "EUR")
    assert twilio_emulator.price_requests() == []


# --- spend limits (one worker; four workers: test_guardrails_workers.py) ------------------


def test_daily_limit_holds_what_would_pass_it_until_the_next_utc_day(
    twilio_emulator, settings, caplog
):
    """0.011 per segment: 0.05 allows four one-segment messages (0.044); the fifth and
    the rest wait for midnight UTC, the signal and the log line come once."""
    twilio_emulator.set_prices({"US": {"local": "0.0100"}})
    set_sms(settings, SMS_DAILY_SPEND_LIMIT=0.05)
    received = []

    def receiver(**kwargs):
        received.append(kwargs)

    sms_limit_reached.connect(receiver)
    try:
        rows = [
            make_sms(body=f"m{i}", publish=NY_AFTERNOON - timedelta(minutes=1)) for i in range(7)
        ]
        with caplog.at_level(logging.WARNING, logger="notification.guardrails"):
            first = run_batch(now=NY_AFTERNOON)
            second = run_batch(now=NY_AFTERNOON + timedelta(minutes=1))
    finally:
        sms_limit_reached.disconnect(receiver)
    assert (first.sent, first.held, second.claimed) == (4, 3, 0)
    assert len(twilio_emulator.requests()) == 4
    midnight = datetime(2030, 6, 15, tzinfo=UTC)
    for sms in rows[4:]:
        held = reload(sms)
        assert held.notification.status == Status.PENDING and held.attempts == 0
        assert held.next_attempt_datetime == midnight
        assert "daily spend limit (SMS_DAILY_SPEND_LIMIT=0.05" in held.notification.status_message
    assert caplog.text.count("sms_limit_reached limit=daily") == 1
    assert len(received) == 1 and received[0]["limit"] == "daily"
    assert received[0]["period_end"] == midnight

    # The next UTC day has its own budget.
    assert run_batch(now=midnight).sent == 3


def test_monthly_limit_and_unknown_prices(twilio_emulator, settings):
    set_sms(settings, SMS_MONTHLY_SPEND_LIMIT=1)
    twilio_emulator.set_prices({})  # no price anywhere: a limit cannot be kept
    sms = make_sms(publish=NY_AFTERNOON - timedelta(minutes=1))
    report = run_batch(now=NY_AFTERNOON)
    assert (report.claimed, report.held) == (0, 1)
    held = reload(sms)
    assert "price of SMS to US is unknown" in held.notification.status_message
    assert twilio_emulator.requests() == []

    set_sms(settings, SMS_PRICE_TABLE="US=0.6")
    later = NY_AFTERNOON + timedelta(minutes=10)
    make_sms(body="second", publish=NY_AFTERNOON)
    report = run_batch(now=later)
    assert (report.sent, report.held) == (1, 1)  # 0.6 fits the month, 1.2 would not
    assert (
        SmsNotification.objects.filter(
            notification__status_message__contains="monthly spend limit",
            next_attempt_datetime=datetime(2030, 7, 1, tzinfo=UTC),
        ).count()
        == 1
    )


# --- per-recipient cap --------------------------------------------------------------------


def test_recipient_daily_limit_at_create(graphql, staff_user, settings):
    set_sms(settings, SMS_RECIPIENT_DAILY_LIMIT=3)
    gql = graphql(staff_user)
    for i in range(3):
        keyed = item(body=f"n{i}", idempotencyKey=f"k{i}")
        assert gql.data(CREATE, {"input": keyed})["createSmsNotification"]["errors"] == []
    refused = gql.data(CREATE, {"input": item(body="fourth")})["createSmsNotification"]
    (error,) = refused["errors"]
    assert (error["field"], error["code"]) == ("toPhoneNumber", "recipient_limit_reached")
    # A retry of one already created is a replay, not a fourth message.
    replay = gql.data(CREATE, {"input": item(body="n2", idempotencyKey="k2")})
    assert replay["createSmsNotification"]["errors"] == []
    # Bulk: all or nothing; another number is not affected by this one's count.
    bulk = gql.data(
        CREATE_MANY, {"input": [item(toPhoneNumber="+14155550101"), item(body="again")]}
    )["createSmsNotifications"]
    assert [(e["index"], e["code"]) for e in bulk["errors"]] == [(1, "recipient_limit_reached")]
    assert SmsNotification.objects.count() == 3
    # Canceled messages never went out and do not count.
    SmsNotification.objects.first().notification.__class__.objects.filter(
        pk=SmsNotification.objects.first().notification_id
    ).update(status=Status.CANCELED)
    assert gql.data(CREATE, {"input": item(body="now")})["createSmsNotification"]["errors"] == []


# --- dry run -----------------------------------------------------------------------------


def test_dry_run_shows_what_each_guardrail_holds_and_why(twilio_emulator, settings, capsys):
    set_sms(settings, SMS_DAILY_SPEND_LIMIT=0.01)
    set_sms(settings, SMS_PRICE_TABLE="US=0.008")
    now = datetime.now(UTC)
    night_zone = next(
        zone
        for zone in ("Asia/Tokyo", "America/New_York", "Europe/Paris", "Australia/Sydney")
        if quiet_hours.hold_for(now, NEW_YORK, zone) is not None
    )
    marketing(publish=now - timedelta(minutes=1), tz=night_zone)
    make_sms(to="+447400123456", body="abroad")
    make_sms(body="first fits")
    make_sms(body="second passes the limit")

    call_command("send_sms_batch", "--dry-run")

    out = capsys.readouterr().out
    assert "Guardrails (quiet hours, country allow-list, spend limits):" in out
    assert "(quiet hours): Held: quiet hours (21:00-08:00)" in out
    assert "refused (country not allowed)" in out
    assert "(daily): Held: sending it (estimated 0.00800) would pass the daily spend limit" in out
    assert "1 message(s), 1 of 100 segments" in out
    assert twilio_emulator.requests() == []
    assert SmsNotification.objects.filter(next_attempt_datetime__isnull=False).count() == 0


def test_the_user_segment_quota_is_on_by_default_at_2000_an_hour(graphql, staff_user):
    gql = graphql(staff_user)
    three = gsm_body(3)
    over = [item(body=three, toPhoneNumber=f"+1415555{i:04d}") for i in range(667)]  # 2,001
    result = gql.execute(CREATE_MANY, {"input": over})
    assert result["data"] is None
    assert result["errors"][0]["extensions"]["code"] == "sms_quota_exceeded"
    assert SmsNotification.objects.count() == 0
    within = gql.data(CREATE_MANY, {"input": over[:10]})["createSmsNotifications"]
    assert within["errors"] == []


def test_without_a_spend_limit_an_unknown_price_never_stops_sending(twilio_emulator):
    twilio_emulator.set_prices({})  # the Pricing API knows no country (404s)
    sms = make_sms()
    assert run_batch().sent == 1
    sent = reload(sms)
    assert sent.notification.status == Status.SENT and sent.estimated_price is None
    # Asked once before the claim (the allowed country), then remembered: not per message.
    make_sms(body="second")
    assert run_batch().sent == 1
    assert twilio_emulator.price_requests() == ["US"]
