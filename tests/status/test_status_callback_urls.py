"""Per-message status callback URLs (``?sms=<id>``) and Twilio's connection overrides.

A callback naming an ``unknown`` row adopts Twilio's sid and status (the row is
never resent); rows being sent, rows of another recipient and retired sids do not
adopt; callbacks without the parameter work as before. The override fragment
(``#rc=3&rp=ct,5xx``) never reaches the server: a signature over the URL with it,
or without it, is accepted (``RequestValidator``), and the emulator retries as it
asks. The webhook tests post through the Django test client, signed as Twilio signs.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from django.test import Client
from twilio.request_validator import RequestValidator

from notification.backends.twilio import get_twilio_client
from notification.models import Notification, NotificationStatusChoices, SmsNotification
from notification.status.early import RETIRED_PREFIX
from tests.support.settings_helpers import set_sms
from tests.support.waiting import wait_until
from tests.support.webhook_helpers import (
    AUTH_TOKEN,
    PUBLIC_BASE_URL,
    STATUS_PATH,
    post_signed,
    short_lived_db_connections,
    status_form,
    use_test_signing,
)

Status = NotificationStatusChoices
SID = "SM" + "a1" * 16
FRAGMENT = "#rc=3&rp=ct,5xx"


@pytest.fixture
def signed(settings, redis):
    use_test_signing(settings)
    with short_lived_db_connections():
        yield settings


def sms_in(status: str, to: str = "+14155550100") -> SmsNotification:
    notification = Notification.objects.create(title="t", body="b", status=status)
    return SmsNotification.objects.create(
        notification=notification, to_phone_number=to, send_started_datetime=None
    )


def callback(client: Client, sms_id: int | str, status: str, *, signed_url: str | None = None):
    path = f"{STATUS_PATH}?sms={sms_id}"
    return post_signed(
        client,
        path,
        status_form(SID, status),
        signed_url=signed_url if signed_url is not None else PUBLIC_BASE_URL + path + FRAGMENT,
    )


def reload(sms: SmsNotification) -> SmsNotification:
    return SmsNotification.objects.select_related("notification").get(pk=sms.pk)


# --- adoption ------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_callback_naming_an_unknown_message_records_its_sid_and_status(client, signed):
    sms = sms_in(Status.UNKNOWN)

    sent = callback(client, sms.pk, "sent")
    delivered = callback(client, sms.pk, "delivered")

    assert (sent.status_code, sent.content) == (200, b"updated")
    assert (delivered.status_code, delivered.content) == (200, b"updated")
    sms = reload(sms)
    assert sms.twilio_sid == SID
    assert (sms.delivery_status, sms.notification.status) == ("delivered", Status.DELIVERED)
    assert "Twilio has this message" in sms.notification.status_message
    # A repeat changes nothing.
    assert callback(client, sms.pk, "sent").content == b"stale"


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("status", [Status.PROCESSING, Status.PENDING, Status.FAILED])
def test_only_unknown_messages_adopt_a_sid(client, signed, status):
    """A row being sent has its answer on the way (the callback is kept as early);
    a pending or failed one was decided otherwise."""
    sms = sms_in(status)

    response = callback(client, sms.pk, "delivered")

    assert (response.status_code, response.content) == (200, b"unknown_sid")
    sms = reload(sms)
    assert sms.twilio_sid is None and sms.notification.status == status


@pytest.mark.django_db(transaction=True)
def test_a_callback_about_another_recipient_is_not_adopted(client, signed):
    sms = sms_in(Status.UNKNOWN, to="+14155550199")

    assert callback(client, sms.pk, "delivered").content == b"unknown_sid"
    assert reload(sms).notification.status == Status.UNKNOWN


@pytest.mark.django_db(transaction=True)
def test_a_retired_sid_is_never_adopted(client, signed, redis):
    """The late callback of an attempt that failed and was re-queued names the same row."""
    sms = sms_in(Status.UNKNOWN)
    redis.set(RETIRED_PREFIX + SID, sms.notification_id)

    assert callback(client, sms.pk, "delivered").content == b"stale"
    assert reload(sms).twilio_sid is None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("query", ["", "?sms=", "?sms=abc", "?sms=99999999999999999999"])
def test_callbacks_without_a_usable_parameter_work_as_before(client, signed, query):
    notification = Notification.objects.create(title="t", body="b", status=Status.SENT)
    sms = SmsNotification.objects.create(
        notification=notification,
        to_phone_number="+14155550100",
        twilio_sid=SID,
        delivery_status="queued",
    )
    path = STATUS_PATH + query

    response = post_signed(client, path, status_form(SID, "delivered"))

    assert (response.status_code, response.content) == (200, b"updated")
    assert reload(sms).notification.status == Status.DELIVERED


# --- the signature and the override fragment ----------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("signed_suffix", "overrides", "accepted"),
    [
        (FRAGMENT, "rc=3&rp=ct,5xx", True),  # the URL as set in Twilio
        ("", "rc=3&rp=ct,5xx", True),  # the URL as it reached us
        ("#rc=5&rp=all", "rc=3&rp=ct,5xx", False),  # not the fragment we set
        (FRAGMENT, "", False),  # overrides off: only the plain URL is ours
    ],
)
def test_the_signature_holds_with_or_without_the_override_fragment(
    client, signed, signed_suffix, overrides, accepted
):
    set_sms(signed, TWILIO_STATUS_CALLBACK_OVERRIDES=overrides)
    sms = sms_in(Status.UNKNOWN)
    path = f"{STATUS_PATH}?sms={sms.pk}"
    url = PUBLIC_BASE_URL + path + signed_suffix
    # What the SDK's own validator says of that signature, for the URL Twilio signed.
    signature = RequestValidator(AUTH_TOKEN).compute_signature(url, status_form(SID, "sent"))
    assert RequestValidator(AUTH_TOKEN).validate(url, status_form(SID, "sent"), signature)

    response = post_signed(client, path, status_form(SID, "sent"), signature=signature)

    assert response.status_code == (200 if accepted else 403)
    assert (reload(sms).twilio_sid == SID) is accepted


# --- the emulator: overrides, fetch and the filtered list ----------------------------


class FlakyReceiver:
    """Answers the given status codes in turn (then 200), recording path and signature."""

    def __init__(self, codes: list[int]) -> None:
        self.codes = list(codes)
        self.hits: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                receiver.hits.append(
                    {
                        "path": self.path,
                        "signature": self.headers.get("X-Twilio-Signature"),
                        "form": {k: v[0] for k, v in parse_qs(body).items()},
                    }
                )
                code = receiver.codes.pop(0) if receiver.codes else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/status/?sms=7"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def flaky():
    receivers: list[FlakyReceiver] = []

    def make(codes: list[int]) -> FlakyReceiver:
        receivers.append(FlakyReceiver(codes))
        return receivers[-1]

    yield make
    for receiver in receivers:
        receiver.stop()


def send(to: str, status_callback: str | None = None, body: str = "hi"):
    options = {"status_callback": status_callback} if status_callback else {}
    return get_twilio_client().messages.create(to=to, from_="+15005550006", body=body, **options)


def test_the_emulator_retries_a_callback_as_its_overrides_say(twilio_emulator, flaky):
    twilio_emulator.set_outcome("+14155550100", "sent")  # one callback per message
    retried = flaky([500, 503])
    url = retried.url + "#rc=3&rp=ct,5xx"
    send("+14155550100", url)

    wait_until(lambda: len(retried.hits) == 3, 10)
    # Never the fragment on the wire; signed over the URL as it was set.
    assert {hit["path"] for hit in retried.hits} == {"/status/?sms=7"}
    validator = RequestValidator(twilio_emulator.auth_token)
    assert all(validator.validate(url, hit["form"], hit["signature"]) for hit in retried.hits)
    attempts = [c["status_code"] for c in twilio_emulator.callbacks() if c["url"] == url]
    assert attempts == [500, 503, 200]


def test_the_emulator_does_not_retry_what_the_policy_leaves_out(twilio_emulator, flaky):
    twilio_emulator.set_outcome("+14155550100", "sent")
    refused = flaky([403])
    url = refused.url + "#rc=3&rp=ct,5xx"
    send("+14155550100", url)

    wait_until(lambda: twilio_emulator.callbacks(), 10)
    assert [c["status_code"] for c in twilio_emulator.callbacks()] == [403]
    assert len(refused.hits) == 1


def test_fetch_and_the_filtered_list_through_the_sdk(twilio_emulator):
    client = get_twilio_client()
    first = send("+14155550101", body="one")
    second = send("+14155550101", body="two")
    send("+14155550102", body="other recipient")
    wait_until(lambda: all(m["date_sent"] for m in twilio_emulator.messages()), 10)
    twilio_emulator.configure(drain_rate=0.001)  # the next one waits in the queue
    send("+14155550101", body="still queued")  # a filler keeps the sender busy
    queued = send("+14155550101", body="not sent yet")

    assert client.messages(second.sid).fetch().body == "two"
    start = first.date_created
    listed = client.messages.list(
        to="+14155550101", from_="+15005550006", date_sent_after=start, page_size=1
    )
    # Every page followed, newest first; a message not sent yet has no sent date.
    assert [m.sid for m in listed] == [second.sid, first.sid]
    assert queued.sid not in {m.sid for m in listed}
    assert queued.sid in {m.sid for m in client.messages.list(to="+14155550101")}
    assert client.messages.list(to="+14155550101", date_sent_before=start.replace(year=2000)) == []


@pytest.mark.django_db(transaction=True)
def test_a_crashed_batchs_kept_callbacks_settle_its_row_when_recovery_makes_it_unknown(
    client, signed
):
    """The worker died after its request left; Twilio's callbacks came while the row
    was still claimed (kept as early). Recovery makes the row unknown and applies
    them at once: it does not wait for the next reconciliation pass."""
    from datetime import timedelta

    from django.utils import timezone

    from notification.send.batch import recover_stale_claims
    from notification.send.claim import claim_batch, mark_send_started
    from notification.send.dispatch import DispatchLog, current_sender
    from tests.support.sending_helpers import make_sms

    sms = make_sms(body="m")
    batch = claim_batch(
        now=timezone.now(), sender=current_sender(), batch_segments=100, queue_limit=36_000
    )
    log = DispatchLog(batch.token)
    log.open()
    mark_send_started(batch, timezone.now())
    log.record_start(sms.pk)  # ...and the worker was SIGKILLed waiting for the answer
    assert callback(client, sms.pk, "sent").content == b"unknown_sid"  # kept
    assert callback(client, sms.pk, "delivered").content == b"unknown_sid"
    SmsNotification.objects.filter(pk=sms.pk).update(
        claimed_datetime=timezone.now() - timedelta(hours=1)
    )

    assert recover_stale_claims(timezone.now(), claim_timeout_seconds=60).unknown == 1

    sms = reload(sms)
    assert sms.twilio_sid == SID
    assert (sms.delivery_status, sms.notification.status) == ("delivered", Status.DELIVERED)
