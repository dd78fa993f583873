"""The status callback webhook over HTTP (Django test client), signed like Twilio signs.

Covers: signature rules (forged, missing, signed for another URL, tampered form,
in DEBUG too), forward-only status (replays, out of order), unknown sids, error
codes and their meaning, and opt-outs from error 21610.
"""

import logging
import threading

import pytest
from django.db import connection
from django.test import Client

from notification.models import Notification, SmsNotification, SmsOptOut
from tests.support.settings_helpers import set_sms
from tests.support.webhook_helpers import (
    PUBLIC_BASE_URL,
    STATUS_PATH,
    post_signed,
    queued_sms,
    short_lived_db_connections,
    sign,
    status_form,
    use_test_signing,
)

SID = "SM" + "a" * 32

# The view does its database work in a pooled thread (its own connection), so
# the rows it reads must be committed: transactional tests throughout.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.db_vendor]


@pytest.fixture(autouse=True)
def signed_webhooks(settings):
    """Callbacks signed as the helpers sign; the view's pooled connections closed afterwards."""
    use_test_signing(settings)
    with short_lived_db_connections():
        yield settings


@pytest.fixture
def sms(transactional_db) -> SmsNotification:
    return queued_sms(SID)


def state(sms: SmsNotification) -> tuple[str, str]:
    sms.refresh_from_db()
    sms.notification.refresh_from_db()
    return sms.delivery_status, sms.notification.status


def test_valid_sent_then_delivered_callbacks_move_status_forward(client: Client, sms):
    response = post_signed(client, STATUS_PATH, status_form(SID, "sent"))
    assert response.status_code == 200
    assert state(sms) == ("sent", "sent")
    assert sms.sent_datetime is not None
    assert sms.status_updated_datetime is not None

    response = post_signed(client, STATUS_PATH, status_form(SID, "delivered"))
    assert response.status_code == 200
    assert state(sms) == ("delivered", "delivered")
    assert sms.delivered_datetime is not None
    assert sms.error_code is None


def test_unknown_extra_parameters_are_accepted(client: Client, sms):
    form = status_form(SID, "delivered", RawDlrDoneDate="2501011200", NewTwilioField="x")
    assert post_signed(client, STATUS_PATH, form).status_code == 200
    assert state(sms) == ("delivered", "delivered")


def test_forged_signature_is_refused_and_changes_nothing(client: Client, sms):
    forged = sign(PUBLIC_BASE_URL + STATUS_PATH, status_form(SID, "delivered"), "f" * 32)
    response = post_signed(client, STATUS_PATH, status_form(SID, "delivered"), signature=forged)
    assert response.status_code == 403
    assert state(sms) == ("queued", "sent")


def test_missing_signature_is_refused_even_in_debug(client: Client, sms, settings):
    settings.DEBUG = True
    response = client.post(STATUS_PATH, data=status_form(SID, "delivered"))
    assert response.status_code == 403
    assert state(sms) == ("queued", "sent")


def test_signature_for_another_url_is_refused(client: Client, sms):
    form = status_form(SID, "delivered")
    for wrong_url in (
        "https://attacker.example" + STATUS_PATH,
        "http://sms.example.org" + STATUS_PATH,  # scheme differs
        PUBLIC_BASE_URL + "/twilio/sms/inbound/",
    ):
        response = post_signed(client, STATUS_PATH, form, signed_url=wrong_url)
        assert response.status_code == 403, wrong_url
    assert state(sms) == ("queued", "sent")


def test_url_comes_from_public_base_url_not_the_host_header(client: Client, sms):
    """Behind a proxy the request's Host is internal; the signed URL is the public one."""
    response = post_signed(client, STATUS_PATH, status_form(SID, "sent"), HTTP_HOST="127.0.0.1")
    assert response.status_code == 200
    assert state(sms) == ("sent", "sent")

    # Signed for the request's own host instead of the public URL: refused.
    form = status_form(SID, "delivered")
    response = post_signed(client, STATUS_PATH, form, signed_url="http://testserver" + STATUS_PATH)
    assert response.status_code == 403
    assert state(sms) == ("sent", "sent")


def test_query_string_is_part_of_the_signed_url(client: Client, sms):
    path = STATUS_PATH + "?attempt=1"
    form = status_form(SID, "sent")
    ok = client.post(path, data=form, HTTP_X_TWILIO_SIGNATURE=sign(PUBLIC_BASE_URL + path, form))
    assert ok.status_code == 200
    refused = client.post(
        STATUS_PATH + "?attempt=2",
        data=status_form(SID, "delivered"),
        HTTP_X_TWILIO_SIGNATURE=sign(PUBLIC_BASE_URL + path, status_form(SID, "delivered")),
    )
    assert refused.status_code == 403
    assert state(sms) == ("sent", "sent")


def test_tampered_form_is_refused(client: Client, sms):
    signature = sign(PUBLIC_BASE_URL + STATUS_PATH, status_form(SID, "sent"))
    response = post_signed(
        client, STATUS_PATH, status_form(SID, "failed", 30007), signature=signature
    )
    assert response.status_code == 403
    assert state(sms) == ("queued", "sent")


def test_auth_token_unset_refuses_everything(client: Client, sms, settings):
    set_sms(settings, TWILIO_AUTH_TOKEN="")
    form = status_form(SID, "delivered")
    response = post_signed(client, STATUS_PATH, form, token="")
    assert response.status_code == 403
    assert state(sms) == ("queued", "sent")


def test_only_post_is_allowed(client: Client, sms):
    assert client.get(STATUS_PATH).status_code == 405


def test_replayed_callbacks_change_nothing(client: Client, sms):
    assert post_signed(client, STATUS_PATH, status_form(SID, "delivered")).status_code == 200
    sms.refresh_from_db()
    delivered_at = sms.delivered_datetime
    for _ in range(2):
        response = post_signed(client, STATUS_PATH, status_form(SID, "delivered"))
        assert response.status_code == 200
        assert response.content == b"stale"
    assert state(sms) == ("delivered", "delivered")
    assert sms.delivered_datetime == delivered_at


def test_out_of_order_callbacks_never_move_status_back(client: Client, sms):
    assert post_signed(client, STATUS_PATH, status_form(SID, "delivered")).status_code == 200
    for late in ("sent", "sending", "queued", "failed", "undelivered"):
        assert post_signed(client, STATUS_PATH, status_form(SID, late)).status_code == 200
        assert state(sms) == ("delivered", "delivered"), late
    # "read" comes after delivered.
    assert post_signed(client, STATUS_PATH, status_form(SID, "read")).status_code == 200
    assert state(sms) == ("read", "delivered")


def test_unknown_sid_is_answered_200_and_logged(client: Client, sms, caplog):
    unknown = "SM" + "b" * 32
    with caplog.at_level(logging.WARNING, logger="notification.status.apply"):
        response = post_signed(client, STATUS_PATH, status_form(unknown, "delivered"))
    assert response.status_code == 200
    assert unknown in caplog.text
    assert state(sms) == ("queued", "sent")


def test_unknown_status_value_is_ignored(client: Client, sms):
    response = post_signed(client, STATUS_PATH, status_form(SID, "teleported"))
    assert response.status_code == 200
    assert state(sms) == ("queued", "sent")


def test_signed_form_without_message_sid_is_a_bad_request(client: Client, sms):
    form = status_form(SID, "delivered")
    del form["MessageSid"], form["SmsSid"]
    assert post_signed(client, STATUS_PATH, form).status_code == 400
    assert state(sms) == ("queued", "sent")


def test_undelivered_records_error_code_meaning_and_fails_notification(client: Client, sms):
    """A permanent code (retryable ones re-queue: ``test_webhooks_retry``)."""
    response = post_signed(client, STATUS_PATH, status_form(SID, "undelivered", 30005))
    assert response.status_code == 200
    assert state(sms) == ("undelivered", "failed")
    assert sms.error_code == 30005
    assert sms.error_message == "Unknown destination handset"
    assert sms.notification.status_message == "Twilio error 30005: Unknown destination handset"
    assert not SmsOptOut.objects.exists()


def test_twilio_error_message_is_preferred_and_unknown_codes_are_kept(client: Client, sms):
    form = status_form(SID, "failed", 39999, ErrorMessage="Carrier said no")
    assert post_signed(client, STATUS_PATH, form).status_code == 200
    assert state(sms) == ("failed", "failed")
    assert (sms.error_code, sms.error_message) == (39999, "Carrier said no")


def test_error_21610_records_an_opt_out(client: Client, sms):
    response = post_signed(client, STATUS_PATH, status_form(SID, "failed", 21610))
    assert response.status_code == 200
    assert state(sms) == ("failed", "failed")
    opt_out = SmsOptOut.objects.get()
    assert (opt_out.phone_number, opt_out.source) == ("+14155550100", "twilio_21610")


def test_callback_for_a_canceled_notification_leaves_its_status(client: Client, sms):
    Notification.objects.filter(pk=sms.notification_id).update(status="canceled")
    assert post_signed(client, STATUS_PATH, status_form(SID, "delivered")).status_code == 200
    assert state(sms) == ("delivered", "canceled")


def test_unknown_notification_becomes_sent_when_twilio_reports_it(client: Client, sms):
    """A timed-out create marked ``unknown`` that did reach Twilio: the callback settles it."""
    Notification.objects.filter(pk=sms.notification_id).update(status="unknown")
    assert post_signed(client, STATUS_PATH, status_form(SID, "sent")).status_code == 200
    assert state(sms) == ("sent", "sent")


def test_concurrent_callbacks_never_move_status_backwards():
    """Many racing callbacks for one message, from many threads: ``delivered`` always wins."""
    notification = Notification.objects.create(title="t", body="b", status="sent")
    SmsNotification.objects.create(
        notification=notification,
        to_phone_number="+14155550100",
        twilio_sid=SID,
        delivery_status="queued",
    )
    statuses = ["sent", "delivered", "sending", "sent", "queued", "delivered"] * 4
    results: list[int] = []
    barrier = threading.Barrier(len(statuses))

    def deliver(status: str) -> None:
        try:
            barrier.wait()
            results.append(post_signed(Client(), STATUS_PATH, status_form(SID, status)).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver, args=(s,)) for s in statuses]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert results == [200] * len(statuses)
    sms = SmsNotification.objects.get(twilio_sid=SID)
    assert sms.delivery_status == "delivered"
    assert Notification.objects.get(pk=notification.pk).status == "delivered"
