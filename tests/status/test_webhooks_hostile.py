"""Signed webhooks with hostile field values (issue 10): never a 500, the status change kept.

Each form here is correctly signed (the SDK's ``RequestValidator``), so it passes
the signature check and reaches the parsing and the database: PostgreSQL refuses
NUL characters and 32-bit overflows, SQLite 64-bit ones, and the phone number
column is 16 characters. Twilio retries a 5xx, and the status is lost meanwhile.
"""

import logging

import pytest

from notification.models import SmsNotification, SmsOptOut
from tests.support.settings_helpers import set_sms
from tests.support.webhook_helpers import (
    ACCOUNT_SID,
    INBOUND_PATH,
    STATUS_PATH,
    inbound_form,
    post_signed,
    queued_sms,
    short_lived_db_connections,
    status_form,
    use_test_signing,
)

SID = "SM" + "e" * 32
PHONE = "+14155550123"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def signed_webhooks(settings, redis):
    use_test_signing(settings)
    with short_lived_db_connections():
        yield settings


@pytest.fixture
def sms(transactional_db) -> SmsNotification:
    return queued_sms(SID)


def state(sms: SmsNotification) -> tuple[str, str, int | None]:
    sms.refresh_from_db()
    sms.notification.refresh_from_db()
    return sms.delivery_status, sms.notification.status, sms.error_code


@pytest.mark.parametrize("code", ["-5", "2147483648", str(2**63), str(2**64), "1e5", "٣٠٠٠٥"])
def test_an_error_code_no_column_can_hold_is_dropped_and_the_status_applied(client, sms, code):
    response = post_signed(client, STATUS_PATH, status_form(SID, "undelivered", ErrorCode=code))
    assert response.status_code == 200, response.content
    assert state(sms) == ("undelivered", "failed", None)


def test_a_real_error_code_is_still_kept(client, sms):
    response = post_signed(client, STATUS_PATH, status_form(SID, "undelivered", ErrorCode="30005"))
    assert response.status_code == 200
    assert state(sms) == ("undelivered", "failed", 30005)


@pytest.mark.parametrize("field", ["From", "To", "ErrorMessage", "AccountSid"])
def test_nul_in_a_text_field_is_cleaned_and_the_status_applied(client, sms, field, settings):
    set_sms(
        settings, TWILIO_ACCOUNT_SID=""
    )  # the AccountSid case is about the NUL, not the account
    form = status_form(SID, "undelivered", ErrorCode="30005", **{field: "a\x00b\x00" * 300})
    response = post_signed(client, STATUS_PATH, form)
    assert response.status_code == 200, response.content
    assert state(sms) == ("undelivered", "failed", 30005)
    assert "\x00" not in sms.error_message


def test_a_long_error_message_is_bounded(client, sms):
    form = status_form(SID, "failed", ErrorCode="30005", ErrorMessage="x" * 100_000)
    assert post_signed(client, STATUS_PATH, form).status_code == 200
    sms.refresh_from_db()
    assert sms.delivery_status == "failed"
    assert len(sms.error_message) <= 1_100


@pytest.mark.parametrize("sid", [SID + "\x00", "\x00" + SID, "SM" + "c" * 70, "SM-" + "b" * 31])
def test_a_message_sid_that_cannot_be_one_is_refused_cleanly(client, sms, sid):
    """400 (not retried by Twilio), nothing changed: no sid of ours can look like that."""
    form = status_form(sid, "delivered")
    response = post_signed(client, STATUS_PATH, form)
    assert response.status_code == 400
    assert state(sms) == ("queued", "sent", None)


def test_a_status_callback_of_another_account_is_refused(client, sms, settings, caplog):
    set_sms(settings, TWILIO_ACCOUNT_SID=ACCOUNT_SID)
    other = "AC" + "9" * 32
    with caplog.at_level(logging.WARNING, logger="notification.status.webhooks"):
        response = post_signed(client, STATUS_PATH, status_form(SID, "delivered", AccountSid=other))
    assert response.status_code == 403
    assert state(sms) == ("queued", "sent", None)
    assert other in caplog.text
    # Ours is still applied.
    assert post_signed(client, STATUS_PATH, status_form(SID, "delivered")).status_code == 200
    assert state(sms) == ("delivered", "delivered", None)


def test_an_inbound_stop_of_another_account_records_nothing(client, settings):
    set_sms(settings, TWILIO_ACCOUNT_SID=ACCOUNT_SID)
    form = {**inbound_form("STOP", PHONE), "AccountSid": "AC" + "9" * 32}
    assert post_signed(client, INBOUND_PATH, form).status_code == 403
    assert not SmsOptOut.objects.exists()


@pytest.mark.parametrize(
    "sender",
    [
        "messenger:123456789012345678",
        "whatsapp:+14155550123",
        "whatsapp:someone\x00",
        "x" * 5_000,
        "22395",
    ],
)
def test_inbound_stop_from_something_not_a_phone_number_is_answered_and_records_nothing(
    client, sender
):
    response = post_signed(client, INBOUND_PATH, inbound_form("STOP", sender))
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/xml")
    assert not SmsOptOut.objects.exists()


@pytest.mark.parametrize(
    "body", ["Stop.", "STOP!", "stop!!", " Stop . ", "«STOP»", "Unsubscribe.", "STOP\u3002"]
)
def test_stop_with_punctuation_around_it_is_an_opt_out(client, body):
    assert post_signed(client, INBOUND_PATH, inbound_form(body, PHONE)).status_code == 200
    assert SmsOptOut.objects.filter(phone_number=PHONE, source="inbound_stop").exists()


@pytest.mark.parametrize("body", ["Start!", "yes.", " unstop ?"])
def test_start_with_punctuation_around_it_removes_the_opt_out(client, body):
    SmsOptOut.objects.create(phone_number=PHONE, source="inbound_stop")
    assert post_signed(client, INBOUND_PATH, inbound_form(body, PHONE)).status_code == 200
    assert not SmsOptOut.objects.exists()


def test_help_with_punctuation_gets_the_help_text(client):
    response = post_signed(client, INBOUND_PATH, inbound_form("Help?", PHONE))
    assert response.status_code == 200
    assert b"<Message>" in response.content
