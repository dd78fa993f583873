"""The inbound SMS webhook: STOP / START / HELP keywords and plain messages, signed like Twilio."""

import logging
import xml.etree.ElementTree as ET

import pytest
from django.test import Client

from notification.models import SmsOptOut
from tests.support.settings_helpers import set_sms
from tests.support.webhook_helpers import (
    AUTH_TOKEN,
    INBOUND_PATH,
    PUBLIC_BASE_URL,
    inbound_form,
    post_signed,
    sign,
)

PHONE = "+14155550123"
HELP_TEXT = "Acme alerts: reply STOP to stop, START to resume. Help: acme.example/help"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def twilio_settings(settings):
    set_sms(settings, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    set_sms(settings, PUBLIC_BASE_URL=PUBLIC_BASE_URL)
    set_sms(settings, SMS_HELP_TEXT=HELP_TEXT)
    return settings


def twiml_messages(response) -> list[str]:
    """The <Message> texts of a TwiML answer (asserting it is TwiML at all)."""
    assert response["Content-Type"].startswith("text/xml")
    root = ET.fromstring(response.content)
    assert root.tag == "Response"
    return [element.text or "" for element in root.iter("Message")]


@pytest.mark.parametrize(
    "body", ["STOP", "stop", "  Stop \n", "STOPALL", "unsubscribe", "Cancel", "END", "quit"]
)
def test_stop_keywords_record_an_opt_out(client: Client, body: str):
    response = post_signed(client, INBOUND_PATH, inbound_form(body, PHONE))
    assert response.status_code == 200
    assert twiml_messages(response) == []
    opt_out = SmsOptOut.objects.get()
    assert (opt_out.phone_number, opt_out.source) == (PHONE, "inbound_stop")


def test_stop_twice_keeps_one_opt_out(client: Client):
    for _ in range(2):
        assert post_signed(client, INBOUND_PATH, inbound_form("STOP", PHONE)).status_code == 200
    assert SmsOptOut.objects.filter(phone_number=PHONE).count() == 1


@pytest.mark.parametrize("body", ["stop please", "please stop", "STOP STOP", "STOP 2"])
def test_stop_must_be_the_whole_message(client: Client, body: str):
    assert post_signed(client, INBOUND_PATH, inbound_form(body, PHONE)).status_code == 200
    assert not SmsOptOut.objects.exists()


@pytest.mark.parametrize("body", ["START", "yes", " unstop "])
def test_start_keywords_remove_the_opt_out(client: Client, body: str):
    SmsOptOut.objects.create(phone_number=PHONE, source="inbound_stop")
    SmsOptOut.objects.create(phone_number="+14155550199", source="inbound_stop")
    response = post_signed(client, INBOUND_PATH, inbound_form(body, PHONE))
    assert response.status_code == 200
    assert twiml_messages(response) == []
    assert list(SmsOptOut.objects.values_list("phone_number", flat=True)) == ["+14155550199"]


@pytest.mark.parametrize("body", ["HELP", "help", "Info"])
def test_help_answers_with_the_help_text(client: Client, body: str):
    response = post_signed(client, INBOUND_PATH, inbound_form(body, PHONE))
    assert response.status_code == 200
    assert twiml_messages(response) == [HELP_TEXT]
    assert not SmsOptOut.objects.exists()


def test_plain_message_gets_empty_twiml_and_is_logged(client: Client, caplog):
    with caplog.at_level(logging.INFO, logger="notification.status.webhooks"):
        response = post_signed(client, INBOUND_PATH, inbound_form("Thanks, see you at 5", PHONE))
    assert response.status_code == 200
    assert twiml_messages(response) == []
    assert PHONE in caplog.text
    assert not SmsOptOut.objects.exists()


def test_forged_inbound_is_refused_and_records_nothing(client: Client):
    form = inbound_form("STOP", PHONE)
    forged = sign(PUBLIC_BASE_URL + INBOUND_PATH, form, "e" * 32)
    assert post_signed(client, INBOUND_PATH, form, signature=forged).status_code == 403
    assert client.post(INBOUND_PATH, data=form).status_code == 403
    wrong_url = "https://attacker.example" + INBOUND_PATH
    assert post_signed(client, INBOUND_PATH, form, signed_url=wrong_url).status_code == 403
    assert not SmsOptOut.objects.exists()


def test_start_from_a_forged_request_does_not_remove_an_opt_out(client: Client):
    SmsOptOut.objects.create(phone_number=PHONE, source="inbound_stop")
    form = inbound_form("START", PHONE)
    assert client.post(INBOUND_PATH, data=form).status_code == 403
    assert SmsOptOut.objects.filter(phone_number=PHONE).exists()


@pytest.mark.parametrize("signature", ["forged", "missing"])
def test_unsigned_or_forged_inbound_is_refused_even_in_debug(client: Client, settings, signature):
    """DEBUG (``make run``) never switches the check off: an opt-out is someone's consent."""
    settings.DEBUG = True
    SmsOptOut.objects.create(phone_number=PHONE, source="inbound_stop")
    for body in ("STOP", "START"):
        form = inbound_form(body, "+14155550999" if body == "STOP" else PHONE)
        if signature == "forged":
            forged = sign(PUBLIC_BASE_URL + INBOUND_PATH, form, "e" * 32)
            response = post_signed(client, INBOUND_PATH, form, signature=forged)
        else:
            response = client.post(INBOUND_PATH, data=form)
        assert response.status_code == 403
    assert list(SmsOptOut.objects.values_list("phone_number", flat=True)) == [PHONE]
