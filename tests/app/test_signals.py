"""Signals for host projects: a status change and an arriving SMS, each announced after commit."""

import logging

import pytest
from django.test import Client

from notification.create.changes import cancel_notification
from notification.models import Notification, NotificationStatusChoices, SmsNotification, SmsOptOut
from notification.signals import sms_received, sms_status_changed
from tests.support.sending_helpers import make_sms
from tests.support.webhook_helpers import (
    INBOUND_PATH,
    STATUS_PATH,
    inbound_form,
    post_signed,
    short_lived_db_connections,
    status_form,
    use_test_signing,
)

SID = "SM" + "c" * 32

# The status view writes in its database thread: committed rows, transactional tests.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _signed(settings):
    """Webhooks signed as the helpers sign them; the view's thread connections closed after."""
    use_test_signing(settings)
    with short_lived_db_connections():
        yield


@pytest.fixture
def received() -> list[dict]:
    """Every signal sent during the test, with the arguments its receiver got."""
    calls: list[dict] = []

    def on_status(sender, **kwargs):
        calls.append({**kwargs, "kind": "status", "sender": sender})

    def on_sms(sender, **kwargs):
        calls.append({**kwargs, "kind": "received", "sender": sender})

    sms_status_changed.connect(on_status, weak=False)
    sms_received.connect(on_sms, weak=False)
    yield calls
    sms_status_changed.disconnect(on_status)
    sms_received.disconnect(on_sms)


def sent_sms() -> SmsNotification:
    """An SMS the send job handed to Twilio (``queued``, notification ``sent``)."""
    sms = make_sms(body="Your parcel is on its way")
    SmsNotification.objects.filter(pk=sms.pk).update(twilio_sid=SID, delivery_status="queued")
    Notification.objects.filter(pk=sms.notification_id).update(
        status=NotificationStatusChoices.SENT
    )
    return sms


def test_a_delivery_callback_sends_status_changed_with_the_event_and_the_raw_form(received):
    sms = sent_sms()
    response = post_signed(Client(), STATUS_PATH, status_form(SID, "delivered"))
    assert response.status_code == 200
    [call] = [c for c in received if c["kind"] == "status"]
    assert call["sender"] is Notification
    assert call["notification_id"] == sms.notification_id
    assert call["event"]["delivery_status"] == "delivered"
    assert call["event"]["status"] == NotificationStatusChoices.DELIVERED
    assert call["report"].message_sid == SID
    assert call["raw"]["MessageStatus"] == "delivered"


def test_a_stale_callback_sends_nothing(received):
    sent_sms()
    post_signed(Client(), STATUS_PATH, status_form(SID, "delivered"))
    received.clear()
    post_signed(Client(), STATUS_PATH, status_form(SID, "sent"))  # late and out of order
    assert received == []


def test_a_cancel_sends_status_changed_without_a_report(received):
    pending = make_sms(body="Not yet")
    cancel_notification(pending.notification_id)
    [call] = received
    assert call["notification_id"] == pending.notification_id
    assert call["event"]["status"] == NotificationStatusChoices.CANCELED
    assert (call["report"], call["raw"]) == (None, {})


def test_a_plain_reply_is_handed_to_the_host_instead_of_dropped(received):
    response = post_signed(Client(), INBOUND_PATH, inbound_form("Is my parcel late?"))
    assert response.status_code == 200
    [call] = received
    assert call["keyword"] == "none"
    assert call["event"].body == "Is my parcel late?"
    assert call["raw"]["Body"] == "Is my parcel late?"


def test_stop_is_recorded_before_the_host_hears_of_it(received):
    seen_opted_out: list[bool] = []
    received_phone = "+14155550123"

    def check(sender, **kwargs):
        seen_opted_out.append(SmsOptOut.objects.filter(phone_number=received_phone).exists())

    sms_received.connect(check, weak=False)
    try:
        post_signed(Client(), INBOUND_PATH, inbound_form("STOP", from_=received_phone))
    finally:
        sms_received.disconnect(check)
    assert [c["keyword"] for c in received] == ["stop"]
    assert seen_opted_out == [True]


def test_a_failing_receiver_is_logged_and_does_not_fail_the_webhook(received, caplog):
    def broken(sender, **kwargs):
        raise RuntimeError("host bug")

    sms_received.connect(broken, weak=False)
    try:
        with caplog.at_level(logging.ERROR, logger="notification.signals"):
            response = post_signed(Client(), INBOUND_PATH, inbound_form("hello"))
    finally:
        sms_received.disconnect(broken)
    assert response.status_code == 200
    assert "host bug" in caplog.text
    assert [c["keyword"] for c in received] == ["none"]
