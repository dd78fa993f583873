"""Failures injected at the emulator: retries with backoff, the attempt cap, ``unknown``
for ambiguous failures (never resent by itself), staff resend, and crash recovery."""

from datetime import timedelta

import pytest
from django.utils import timezone

from devstack.ports import free_port
from notification.conf import app_settings
from notification.create.changes import ResendError, resend_notification
from notification.delivery import RETRY_BASE_SECONDS
from notification.models import NotificationStatusChoices, SmsNotification
from notification.send.batch import recover_stale_claims, run_batch
from tests.support.sending_helpers import make_sms, reload
from tests.support.settings_helpers import set_sms

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_status_callbacks"),
]

Status = NotificationStatusChoices


@pytest.mark.parametrize(("fault", "http_status"), [("http_429", 429), ("http_500", 500)])
def test_throttling_and_server_errors_retry_with_backoff(twilio_emulator, fault, http_status):
    twilio_emulator.inject_faults([{"kind": fault, "count": 1, "to": "+14155550101"}])
    failing = make_sms(to="+14155550101", body="retry me")
    fine = make_sms(to="+14155550102", body="fine")
    before = timezone.now()

    report = run_batch()

    assert (report.sent, report.retried, report.failed, report.unknown) == (1, 1, 0, 0)
    failing = reload(failing)
    assert failing.notification.status == Status.PENDING
    assert failing.attempts == 1
    assert failing.send_started_datetime is None and failing.claimed_datetime is None
    assert failing.error_message
    if fault == "http_429":
        assert failing.error_code == 20429
    # Equal jitter: between half and all of the first nominal delay.
    delay = (failing.next_attempt_datetime - before).total_seconds()
    assert RETRY_BASE_SECONDS * 0.5 - 1 <= delay <= RETRY_BASE_SECONDS + 5
    assert reload(fine).notification.status == Status.SENT

    # Still in backoff: the next batch leaves it alone.
    assert run_batch().claimed == 0
    # Once the backoff is over it is sent, exactly once in total.
    report = run_batch(now=failing.next_attempt_datetime + timedelta(seconds=1))
    assert report.sent == 1
    failing = reload(failing)
    assert failing.notification.status == Status.SENT and failing.attempts == 2
    assert len(twilio_emulator.messages(to="+14155550101")) == 1
    outcomes = [r["http_status"] for r in twilio_emulator.requests() if r["to"] == "+14155550101"]
    assert outcomes[0] == http_status and len(outcomes) == 2


def test_backoff_grows_and_the_attempt_cap_fails_with_the_last_error(twilio_emulator, settings):
    set_sms(settings, TWILIO_SMS_MAX_ATTEMPTS=3)
    twilio_emulator.inject_faults(
        [{"kind": "http_500", "count": 2}, {"kind": "http_429", "count": 1}]
    )
    sms = make_sms(body="doomed")
    now = timezone.now()
    delays = []
    for _ in range(3):
        report = run_batch(now=now)
        assert report.claimed == 1
        sms = reload(sms)
        if sms.next_attempt_datetime:
            delays.append((sms.next_attempt_datetime - now).total_seconds())
            now = sms.next_attempt_datetime + timedelta(seconds=1)

    assert sms.attempts == 3
    assert sms.notification.status == Status.FAILED
    assert sms.error_code == 20429  # the last error
    assert "Gave up after 3 attempts" in sms.notification.status_message
    assert sms.next_attempt_datetime is None
    # Nominal 30 s then 60 s, each scaled by a jitter factor in [0.5, 1].
    assert len(delays) == 2
    assert 15 <= delays[0] <= 30 and 30 <= delays[1] <= 60
    assert len(twilio_emulator.requests()) == 3
    assert run_batch(now=now + timedelta(hours=1)).claimed == 0


def assert_unknown_and_never_resent(unsure, twilio_emulator, settings) -> None:
    unsure = reload(unsure)
    assert unsure.notification.status == Status.UNKNOWN
    assert "may or may not have reached Twilio" in unsure.notification.status_message
    assert unsure.send_started_datetime is not None and unsure.twilio_sid is None
    # The emulator did accept it: resending automatically would be a duplicate.
    assert len(twilio_emulator.messages(to=unsure.to_phone_number)) == 1
    later = timezone.now() + timedelta(days=1)
    assert run_batch(now=later).claimed == 0
    assert recover_stale_claims(later, app_settings.TWILIO_SMS_CLAIM_TIMEOUT).unknown == 0
    requests_to_it = [r for r in twilio_emulator.requests() if r["to"] == unsure.to_phone_number]
    assert len(requests_to_it) == 1


def test_a_dropped_connection_becomes_unknown_and_is_never_resent(twilio_emulator, settings):
    """The emulator accepts the message, then closes the connection without answering."""
    twilio_emulator.inject_faults([{"kind": "drop", "count": 1, "to": "+14155550103"}])
    unsure = make_sms(to="+14155550103", body="did it go?")
    fine = make_sms(to="+14155550104", body="fine")

    report = run_batch()

    assert (report.sent, report.unknown, report.retried) == (1, 1, 0)
    assert reload(fine).notification.status == Status.SENT
    assert_unknown_and_never_resent(unsure, twilio_emulator, settings)


def test_a_read_timeout_becomes_unknown_and_is_never_resent(twilio_emulator, settings):
    """The emulator accepts the message and holds the answer until the client gives up.

    The fault makes the timeout happen, whatever the machine's load: the answer is
    never sent in time, so the client's timeout only sets how long the test waits.
    The batch holds this one message alone, so no healthy message is exposed to
    that short timeout (a late answer to it would wrongly become ``unknown``)."""
    set_sms(settings, TWILIO_REQUEST_TIMEOUT=0.5)
    twilio_emulator.inject_faults([{"kind": "timeout", "count": 1, "to": "+14155550103"}])
    unsure = make_sms(to="+14155550103", body="did it go?")

    report = run_batch()

    assert (report.sent, report.unknown, report.retried) == (0, 1, 0)
    outcome = [r["outcome"] for r in twilio_emulator.requests()]
    assert outcome == ["timeout"]  # held by the fault, not merely slow
    assert_unknown_and_never_resent(unsure, twilio_emulator, settings)


def test_connection_refused_is_definitely_not_sent_so_it_is_retried(twilio_emulator, settings):
    set_sms(settings, TWILIO_BASE_URL=f"http://127.0.0.1:{free_port()}")  # nobody listens there
    sms = make_sms(body="nobody home")

    report = run_batch()

    assert (report.retried, report.unknown) == (1, 0)
    sms = reload(sms)
    assert sms.notification.status == Status.PENDING and sms.attempts == 1
    assert "Could not connect" in sms.error_message


def test_unknown_codes_retry_then_give_up(twilio_emulator, settings):
    """The default branch: an invalid From (21212) is retried with the cap, not failed at once."""
    set_sms(settings, TWILIO_FROM_NUMBER="+15005550001")
    set_sms(settings, TWILIO_SMS_MAX_ATTEMPTS=2)
    sms = make_sms(body="bad sender")

    assert run_batch().retried == 1
    sms = reload(sms)
    assert sms.error_code == 21212 and sms.notification.status == Status.PENDING
    assert run_batch(now=sms.next_attempt_datetime + timedelta(seconds=1)).failed == 1
    assert reload(sms).notification.status == Status.FAILED


def test_staff_resend_of_an_unknown_message(twilio_emulator, settings):
    twilio_emulator.inject_faults([{"kind": "drop", "count": 1}])
    sms = make_sms(body="resend me")
    assert run_batch().unknown == 1

    with pytest.raises(ResendError, match="unknown or failed"):
        resend_notification(make_sms(body="pending one").notification_id)
    notification = resend_notification(sms.notification_id)
    assert notification.status == Status.PENDING
    assert notification.sms.attempts == 0 and notification.sms.send_started_datetime is None

    report = run_batch(batch_segments=1)
    assert report.sent == 1
    sms = reload(sms)
    assert sms.notification.status == Status.SENT
    assert sms.twilio_sid == twilio_emulator.messages(to=sms.to_phone_number)[-1]["sid"]
    with pytest.raises(ResendError, match="is sent"):
        resend_notification(sms.notification_id)


def test_stale_claims_go_back_to_pending_or_become_unknown(twilio_emulator, settings):
    """What a SIGKILLed worker leaves behind, recovered at the start of the next batch."""
    long_ago = timezone.now() - timedelta(seconds=app_settings.TWILIO_SMS_CLAIM_TIMEOUT + 60)
    never_started = make_sms(body="never left")
    started = make_sms(body="maybe left")
    fresh = make_sms(body="claimed just now by a live worker")
    for sms, claimed_datetime, send_started_datetime in (
        (never_started, long_ago, None),
        (started, long_ago, long_ago),
        (fresh, timezone.now(), timezone.now()),
    ):
        SmsNotification.objects.filter(pk=sms.pk).update(
            claimed_datetime=claimed_datetime,
            claim_token="dead-worker",
            send_started_datetime=send_started_datetime,
        )
        sms.notification.status = Status.PROCESSING
        sms.notification.save(update_fields=["status"])

    report = run_batch()

    assert (report.recovered_pending, report.recovered_unknown) == (1, 1)
    assert report.sent == 1
    assert [m["body"] for m in twilio_emulator.messages()] == ["never left"]
    assert reload(never_started).notification.status == Status.SENT
    started = reload(started)
    assert started.notification.status == Status.UNKNOWN and started.claimed_datetime is None
    fresh = reload(fresh)
    assert fresh.notification.status == Status.PROCESSING and fresh.claim_token == "dead-worker"
