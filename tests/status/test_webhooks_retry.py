"""Retryable failures Twilio reports in a status callback (30001, 30003, 30008, 30036).

They follow the send job's rule for retryable errors: back to ``pending`` with
backoff until ``TWILIO_SMS_MAX_ATTEMPTS``, then failed with the last error. The
old sid is given up so the next attempt stores its own, and the old sid's late
callbacks change nothing. The first tests post callbacks through the Django
test client; the last ones run the real send job against the emulator, whose
signed callbacks reach a live server.
"""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from notification.conf import app_settings
from notification.delivery import RETRY_BASE_SECONDS
from notification.models import Notification, NotificationStatusChoices, SmsNotification
from notification.send.batch import run_batch
from notification.send.wake import estimate_queue
from notification.status.early import KEY_PREFIX, RETIRED_PREFIX
from notification.status.events import notification_group
from tests.support.layer_helpers import listen, receive_all
from tests.support.sending_helpers import make_sms, reload
from tests.support.settings_helpers import set_sms
from tests.support.waiting import wait_until
from tests.support.webhook_helpers import (
    STATUS_PATH,
    post_signed,
    short_lived_db_connections,
    status_form,
    use_test_signing,
)

SID = "SM" + "d" * 32
SENDER = "+15005550006"
Status = NotificationStatusChoices

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.db_vendor]


@pytest.fixture(autouse=True)
def pooled_connections_closed():
    with short_lived_db_connections():
        yield


@pytest.fixture
def signed_callbacks(settings, redis):
    use_test_signing(settings)
    return settings


def sent_sms(attempts: int = 1, status: str = Status.SENT) -> SmsNotification:
    """What the send job leaves after a successful create: a sid, ``queued``, one attempt."""
    notification = Notification.objects.create(
        title="t", body="b", status=status, sent_datetime=timezone.now()
    )
    return SmsNotification.objects.create(
        notification=notification,
        to_phone_number="+14155550100",
        twilio_sid=SID,
        delivery_status="queued",
        sender=SENDER,
        attempts=attempts,
        sent_datetime=timezone.now(),
    )


def callback(client: Client, status: str, error_code: int | None = None, sid: str = SID) -> bytes:
    response = post_signed(client, STATUS_PATH, status_form(sid, status, error_code))
    assert response.status_code == 200
    return response.content


@pytest.mark.parametrize("status", ["undelivered", "failed"])
@pytest.mark.parametrize("code", [30001, 30003, 30008, 30036])
def test_retryable_failure_requeues_with_backoff(client, signed_callbacks, redis, status, code):
    sms = sent_sms()
    before = timezone.now()
    assert callback(client, status, code) == b"updated"

    sms = reload(sms)
    assert sms.notification.status == Status.PENDING
    assert sms.notification.sent_datetime is None
    assert sms.notification.status_message.startswith(f"Attempt 1 failed ({SID}), will retry:")
    assert f"Twilio error {code}" in sms.notification.status_message
    # The last error stays visible; the sid is given up for the next attempt's.
    assert sms.error_code == code
    assert sms.error_message
    assert sms.twilio_sid is None
    assert sms.delivery_status == ""
    assert sms.attempts == 1  # the send counted this attempt already
    assert sms.send_started_datetime is None and sms.sent_datetime is None
    delay = (sms.next_attempt_datetime - before).total_seconds()
    assert RETRY_BASE_SECONDS * 0.5 - 1 <= delay <= RETRY_BASE_SECONDS + 5
    assert redis.exists(RETIRED_PREFIX + SID)
    # No longer waiting in Twilio's queue, so it no longer counts against it.
    assert estimate_queue(SENDER, timezone.now()) == 0


def test_backoff_grows_with_the_attempts(client, signed_callbacks):
    sms = sent_sms(attempts=3)
    before = timezone.now()
    callback(client, "undelivered", 30003)
    delay = (reload(sms).next_attempt_datetime - before).total_seconds()
    nominal = RETRY_BASE_SECONDS * 4
    assert nominal * 0.5 - 1 <= delay <= nominal + 5


def test_at_the_attempt_cap_the_notification_fails_with_the_last_error(
    client, signed_callbacks, settings
):
    set_sms(settings, TWILIO_SMS_MAX_ATTEMPTS=3)
    sms = sent_sms(attempts=3)
    assert callback(client, "undelivered", 30003) == b"updated"
    sms = reload(sms)
    assert (sms.delivery_status, sms.notification.status) == ("undelivered", Status.FAILED)
    assert sms.twilio_sid == SID
    assert sms.next_attempt_datetime is None
    assert sms.notification.status_message == (
        "Gave up after 3 attempts: Twilio error 30003: Unreachable destination handset"
    )


@pytest.mark.parametrize("code", [30005, 30007, 21610, 39999, None])
def test_permanent_and_unknown_failures_fail_at_once(client, signed_callbacks, code):
    sms = sent_sms()
    callback(client, "undelivered", code)
    sms = reload(sms)
    assert (sms.delivery_status, sms.notification.status) == ("undelivered", Status.FAILED)
    assert sms.twilio_sid == SID and sms.next_attempt_datetime is None


def test_canceled_notification_is_not_requeued(client, signed_callbacks):
    sms = sent_sms(status=Status.CANCELED)
    callback(client, "undelivered", 30003)
    sms = reload(sms)
    assert (sms.delivery_status, sms.notification.status) == ("undelivered", Status.CANCELED)
    assert sms.twilio_sid == SID


def test_repeated_failure_callback_requeues_once(client, signed_callbacks, redis):
    sms = sent_sms()
    callback(client, "undelivered", 30003)
    first = reload(sms)
    assert callback(client, "undelivered", 30003) == b"stale"
    again = reload(sms)
    assert (again.attempts, again.next_attempt_datetime) == (
        first.attempts,
        first.next_attempt_datetime,
    )
    assert again.notification.status == Status.PENDING
    assert redis.keys(KEY_PREFIX + "*") == []  # answered stale, not kept as "early"


def test_late_callbacks_for_the_given_up_sid_change_nothing(client, signed_callbacks):
    sms = sent_sms()
    callback(client, "undelivered", 30003)
    requeued = reload(sms)
    for late in ("sent", "delivered", "read"):
        assert callback(client, late) == b"stale"
    sms = reload(sms)
    assert (sms.delivery_status, sms.twilio_sid) == ("", None)
    assert sms.notification.status == Status.PENDING
    assert sms.status_updated_datetime == requeued.status_updated_datetime


def test_requeue_is_published_with_the_error(client, signed_callbacks):
    sms = sent_sms()
    channel = listen([notification_group(sms.notification_id)])
    callback(client, "undelivered", 30003)
    messages = receive_all(channel)
    assert [(m["status"], m["delivery_status"], m["error_code"]) for m in messages] == [
        ("pending", "", 30003)
    ]


# --- the real send job, the emulator and its signed callbacks ------------------------

TO = "+14155550123"


@pytest.fixture
def emulator_calls_us_back(twilio_emulator, live_server, settings, redis):
    """The emulator's callbacks reach this test's database through a live server."""
    set_sms(settings, PUBLIC_BASE_URL=live_server.url)
    return twilio_emulator


def wait_for(sms: SmsNotification, done, timeout: float = 15) -> SmsNotification:
    """The row once ``done(row)`` holds (the callers assert the details)."""

    def finished() -> SmsNotification | None:
        current = reload(sms)
        return current if done(current) else None

    return wait_until(finished, timeout)


def test_reported_failure_is_resent_by_the_next_batch(emulator_calls_us_back, client, settings):
    emulator = emulator_calls_us_back
    emulator.set_outcome(TO, "undelivered", 30003)
    sms = make_sms(to=TO, body="parcel news")

    assert run_batch().sent == 1
    sms = wait_for(sms, lambda s: s.notification.status == Status.PENDING)
    assert sms.notification.status == Status.PENDING, sms.notification.status_message
    assert (sms.error_code, sms.twilio_sid, sms.attempts) == (30003, None, 1)
    first_sid = emulator.messages(to=TO)[0]["sid"]

    # In backoff: the next batch leaves it alone.
    assert run_batch().claimed == 0

    emulator.set_outcome(TO, "delivered")
    assert run_batch(now=sms.next_attempt_datetime + timedelta(seconds=1)).sent == 1
    sms = wait_for(sms, lambda s: s.notification.status == Status.DELIVERED)
    assert (sms.delivery_status, sms.notification.status) == ("delivered", Status.DELIVERED)
    assert sms.attempts == 2
    assert sms.error_code is None
    assert sms.twilio_sid not in (None, first_sid)
    assert len(emulator.messages(to=TO)) == 2

    # A late (replayed) failure for the first attempt's sid: nothing changes.
    late = post_signed(
        client,
        STATUS_PATH,
        status_form(first_sid, "undelivered", 30003, AccountSid=emulator.account_sid),
        signed_url=app_settings.PUBLIC_BASE_URL + STATUS_PATH,
        token=emulator.auth_token,
    )
    assert (late.status_code, late.content) == (200, b"stale")
    after = reload(sms)
    assert (after.delivery_status, after.notification.status) == ("delivered", Status.DELIVERED)
    assert (after.twilio_sid, after.attempts) == (sms.twilio_sid, 2)


def test_reported_failures_stop_at_the_attempt_cap(emulator_calls_us_back, settings):
    set_sms(settings, TWILIO_SMS_MAX_ATTEMPTS=2)
    emulator = emulator_calls_us_back
    emulator.set_outcome(TO, "undelivered", 30008)
    sms = make_sms(to=TO, body="doomed")

    run_batch()
    sms = wait_for(sms, lambda s: s.notification.status == Status.PENDING)
    assert sms.next_attempt_datetime is not None, sms.notification.status_message
    run_batch(now=sms.next_attempt_datetime + timedelta(seconds=1))
    sms = wait_for(sms, lambda s: s.notification.status == Status.FAILED)

    assert sms.notification.status == Status.FAILED
    assert sms.notification.status_message.startswith(
        "Gave up after 2 attempts: Twilio error 30008"
    )
    assert (sms.attempts, sms.error_code, sms.delivery_status) == (2, 30008, "undelivered")
    assert len(emulator.messages(to=TO)) == 2
    assert run_batch(now=timezone.now() + timedelta(days=1)).claimed == 0
