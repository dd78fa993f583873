"""Ambiguous sends resolved from Twilio's evidence: its status callbacks (each URL names
our row), then, with callbacks off, ``reconcile_sms`` (Twilio's Messages fetch and list).

Real parts: the send job and the real ``twilio`` SDK against the emulator over HTTP,
the emulator's signed callbacks reaching a live server, Redis. Never resent when
Twilio has the message; resent exactly once when it provably never had it.
"""

import io
import threading
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.utils import timezone

from devstack.ports import free_port
from notification.conf import app_settings
from notification.models import Notification, NotificationStatusChoices, SmsNotification
from notification.reconciliation.passes import reconcile
from notification.send.batch import recover_stale_claims, run_batch
from notification.signals import sms_status_changed
from notification.status.events import notification_group
from tests.support.layer_helpers import listen, receive_all
from tests.support.sending_helpers import make_sms, reload
from tests.support.settings_helpers import set_sms
from tests.support.waiting import wait_until
from tests.support.webhook_helpers import short_lived_db_connections

pytestmark = pytest.mark.django_db(transaction=True)

Status = NotificationStatusChoices
TO = "+14155550142"
LATER = timedelta(days=2)  # past every window: SMS_RECONCILE_AFTER, queue drain, validity


@pytest.fixture(autouse=True)
def pooled_connections_closed():
    with short_lived_db_connections():
        yield


@pytest.fixture
def emulator_calls_us_back(twilio_emulator, live_server, settings, redis):
    """The emulator's signed callbacks reach this test's database through a live server."""
    set_sms(settings, PUBLIC_BASE_URL=live_server.url)
    return twilio_emulator


@pytest.fixture
def callbacks_off(twilio_emulator, redis):
    twilio_emulator.configure(callbacks_enabled=False)
    return twilio_emulator


def lose_the_answer(emulator, settings, fault: str) -> SmsNotification:
    """Send one message whose create Twilio accepts but whose answer is lost."""
    set_sms(settings, TWILIO_REQUEST_TIMEOUT=0.5)  # the held answer never comes in time
    emulator.inject_faults([{"kind": fault, "count": 1, "to": TO}])
    sms = make_sms(to=TO, body=f"parcel news ({fault})")
    assert run_batch().unknown == 1
    sms = reload(sms)
    assert sms.notification.status == Status.UNKNOWN and sms.twilio_sid is None
    return sms


def emulator_delivered(emulator) -> dict:
    return wait_until(
        lambda: next((m for m in emulator.messages(to=TO) if m["status"] == "delivered"), None),
        15,
    )


def assert_delivered_once(sms: SmsNotification, emulator) -> None:
    [message] = emulator.messages(to=TO)
    sms = reload(sms)
    assert sms.twilio_sid == message["sid"]
    assert (sms.delivery_status, sms.notification.status) == ("delivered", Status.DELIVERED)
    assert "not resent" in sms.notification.status_message or sms.notification.status_message == ""
    # Never resent, whatever comes later.
    assert run_batch(now=timezone.now() + LATER).claimed == 0
    assert reconcile(now=timezone.now() + LATER).resent == 0
    assert len([r for r in emulator.requests() if r["to"] == TO]) == 1


@pytest.mark.parametrize("fault", ["timeout", "drop"])
def test_a_lost_answer_is_resolved_by_the_messages_own_callbacks(
    emulator_calls_us_back, settings, fault
):
    emulator = emulator_calls_us_back
    # Twilio's callbacks come after our write (as the delivery receipt usually does).
    emulator.configure(callbacks_paused=True)
    sms = lose_the_answer(emulator, settings, fault)
    [message] = emulator.messages(to=TO)
    assert message["status_callback"].endswith(f"?sms={sms.pk}#rc=3&rp=ct,5xx")

    emulator.configure(callbacks_paused=False)

    def resolved():
        current = reload(sms)
        return current if current.notification.status == Status.DELIVERED else None

    sms = wait_until(resolved, 15)
    assert "found by a status callback" in sms.notification.status_message
    assert sms.error_code is None and sms.error_message == ""
    assert sms.attempts == 1
    assert_delivered_once(sms, emulator)


def test_callbacks_that_raced_the_lost_answer_resolve_it_once_it_is_written(
    emulator_calls_us_back, settings
):
    """The usual timeout: Twilio's "sent" and "delivered" reach us while the batch still
    waits for the create's answer, so the row is being sent and they are kept; once the
    batch writes it ``unknown``, they adopt its sid."""
    emulator = emulator_calls_us_back
    set_sms(settings, TWILIO_REQUEST_TIMEOUT=8)  # ample time for both callbacks, even under load
    emulator.inject_faults([{"kind": "timeout", "count": 1, "to": TO}])
    sms = make_sms(to=TO, body="raced")
    reports = []

    def send_in_a_thread() -> None:
        try:
            reports.append(run_batch())
        finally:
            connection.close()  # this thread's own connection

    batch = threading.Thread(target=send_in_a_thread)
    batch.start()
    # Both callbacks answered while the request is still held (kept as early).
    wait_until(lambda: [c["status_code"] for c in emulator.callbacks()] == [200, 200], 15)
    assert reload(sms).notification.status == Status.PROCESSING
    batch.join(30)

    assert reports and reports[0].unknown == 1
    sms = reload(sms)
    assert (sms.delivery_status, sms.notification.status) == ("delivered", Status.DELIVERED)
    assert "found by a status callback" in sms.notification.status_message
    assert_delivered_once(sms, emulator)


@pytest.mark.parametrize("fault", ["timeout", "drop"])
def test_a_lost_answer_without_callbacks_is_resolved_by_reconcile_sms(
    callbacks_off, settings, fault
):
    emulator = callbacks_off
    set_sms(settings, SMS_RECONCILE_AFTER=0)
    sms = lose_the_answer(emulator, settings, fault)
    emulator_delivered(emulator)
    channel = listen([notification_group(sms.notification_id)])

    out = io.StringIO()
    call_command("reconcile_sms", stdout=out)

    assert f"SMS {sms.pk} (notification {sms.notification_id}): adopted" in out.getvalue()
    assert "sms_reconcile checked=1" in out.getvalue() and "adopted=1" in out.getvalue()
    sms = reload(sms)
    assert "found by reconciliation" in sms.notification.status_message
    events = receive_all(channel)
    assert events and events[-1]["status"] == Status.DELIVERED
    assert_delivered_once(sms, emulator)


def test_a_request_that_never_reached_twilio_is_resent_exactly_once(callbacks_off, settings):
    """A worker died mid-batch and its dispatch record is gone: recovery cannot tell
    whether the request left, so the row is ``unknown``; Twilio's list proves it did not."""
    emulator = callbacks_off
    long_ago = timezone.now() - timedelta(hours=1)
    sms = make_sms(to=TO, body="never left")
    SmsNotification.objects.filter(pk=sms.pk).update(
        claimed_datetime=long_ago,
        claim_token="dead-worker-without-a-dispatch-log",
        send_started_datetime=long_ago,
        sender=emulator.from_number,
    )
    Notification.objects.filter(pk=sms.notification_id).update(status=Status.PROCESSING)
    assert recover_stale_claims(timezone.now(), app_settings.TWILIO_SMS_CLAIM_TIMEOUT).unknown == 1

    # Not listed yet, but a message still in Twilio's queue would not be listed either.
    soon = reconcile(now=timezone.now() + timedelta(minutes=20))
    assert (soon.waiting, soon.resent) == (1, 0)
    sms = reload(sms)
    assert sms.notification.status == Status.UNKNOWN
    assert "asked again until" in sms.notification.status_message

    later = timezone.now() + LATER
    report = reconcile(now=later)
    assert (report.resent, report.adopted) == (1, 0)
    sms = reload(sms)
    assert sms.notification.status == Status.PENDING
    assert "never reached Twilio" in sms.notification.status_message
    assert sms.attempts == 1 and sms.send_started_datetime is None
    # The same evidence a second time resends nothing.
    assert reconcile(now=later).resent == 0

    assert run_batch().sent == 1
    assert run_batch().claimed == 0
    assert reconcile(now=later + LATER).resent == 0
    assert len(emulator.messages(to=TO)) == 1
    sms = reload(sms)
    assert sms.notification.status == Status.SENT and sms.attempts == 2


def test_a_final_callback_that_never_came_is_applied_by_reconciliation(callbacks_off):
    emulator = callbacks_off
    sms = make_sms(to=TO, body="where is my receipt")
    assert run_batch().sent == 1
    emulator_delivered(emulator)
    sms = reload(sms)
    assert (sms.delivery_status, sms.notification.status) == ("queued", Status.SENT)
    received = []

    def on_status(sender, notification_id, event, **kwargs):
        received.append((notification_id, event["delivery_status"]))

    sms_status_changed.connect(on_status)
    try:
        # Too recent: its callbacks may still be on their way.
        assert reconcile().checked == 0
        report = reconcile(now=timezone.now() + timedelta(hours=1))
    finally:
        sms_status_changed.disconnect(on_status)

    assert (report.checked, report.updated) == (1, 1)
    sms = reload(sms)
    assert (sms.delivery_status, sms.notification.status) == ("delivered", Status.DELIVERED)
    assert received == [(sms.notification_id, "delivered")]
    # Final now: not asked about again.
    assert reconcile(now=timezone.now() + timedelta(hours=2)).checked == 0


def snapshot() -> list[tuple]:
    return list(
        SmsNotification.objects.order_by("pk").values_list(
            "twilio_sid",
            "delivery_status",
            "attempts",
            "notification__status",
            "notification__status_message",
        )
    )


def test_dry_run_prints_each_decision_and_changes_nothing(callbacks_off, settings):
    emulator = callbacks_off
    set_sms(settings, SMS_RECONCILE_AFTER=0)
    lose_the_answer(emulator, settings, "drop")  # Twilio has it: would adopt
    delivered = make_sms(to="+14155550143", body="receipt lost")
    assert run_batch().sent == 1  # Twilio delivers it: would update
    emulator_delivered(emulator)
    wait_until(lambda: emulator.messages(to="+14155550143")[0]["status"] == "delivered", 15)
    requests_before = len(emulator.requests())
    before = snapshot()

    out = io.StringIO()
    call_command("reconcile_sms", "--dry-run", stdout=out)

    text = out.getvalue()
    assert "Dry run: nothing is changed" in text
    assert f"SMS {delivered.pk} " in text and "updated: would apply 'delivered'" in text
    assert "adopted: would adopt: Twilio has it as SM" in text
    assert "dry_run=True" in text
    assert snapshot() == before
    assert len(emulator.requests()) == requests_before


def test_twilio_unreachable_leaves_every_row_for_the_next_pass(callbacks_off, settings):
    emulator = callbacks_off
    sms = lose_the_answer(emulator, settings, "drop")
    set_sms(settings, TWILIO_BASE_URL=f"http://127.0.0.1:{free_port()}")  # nobody listens there
    before = snapshot()

    report = reconcile(now=timezone.now() + LATER)

    assert (report.checked, report.unavailable, report.resent) == (1, 1, 0)
    assert snapshot() == before
    assert reload(sms).notification.status == Status.UNKNOWN
    assert len(emulator.requests()) == 1


def test_an_unknown_message_with_a_sid_takes_twilios_status(callbacks_off):
    """E.g. Twilio answered but the result could not be written in time: the sid is
    known, the outcome is not. A fetch settles it."""
    emulator = callbacks_off
    sms = make_sms(to=TO, body="answered, then lost")
    assert run_batch().sent == 1
    emulator_delivered(emulator)
    Notification.objects.filter(pk=sms.notification_id).update(
        status=Status.UNKNOWN, status_message="The database was unreachable."
    )

    report = reconcile(now=timezone.now() + timedelta(hours=1))

    assert (report.checked, report.adopted) == (1, 1)
    sms = reload(sms)
    assert (sms.delivery_status, sms.notification.status) == ("delivered", Status.DELIVERED)
    assert_delivered_once(sms, emulator)


def test_the_locmem_backend_answers_lookups_for_a_host_projects_tests(settings, redis):
    from notification.backends import locmem

    set_sms(settings, SMS_BACKEND="notification.backends.locmem.LocmemBackend")
    locmem.reset()
    sms = make_sms(to=TO, body="in memory")
    assert run_batch().sent == 1
    sms = reload(sms)
    locmem.set_provider_status(sms.twilio_sid, "delivered")
    later = timezone.now() + timedelta(hours=1)
    try:
        locmem.lookups_unavailable.set()
        assert reconcile(now=later).unavailable == 1
        assert reload(sms).notification.status == Status.SENT
        locmem.lookups_unavailable.clear()
        assert reconcile(now=later).updated == 1
        assert reload(sms).notification.status == Status.DELIVERED
    finally:
        locmem.reset()


def test_a_backend_without_lookups_skips_reconciliation(settings):
    set_sms(settings, SMS_BACKEND="notification.backends.console.ConsoleBackend")
    out = io.StringIO()
    call_command("reconcile_sms", stdout=out)
    assert "Skipped: the SMS backend has no lookups." in out.getvalue()


def test_a_lost_answer_through_a_messaging_service_is_found_in_twilios_list(
    callbacks_off, settings
):
    """Twilio picks the From of a Messaging Service's message, so the list is filtered
    by the service instead; the scheduled job gives the pass's counts."""
    from notification.jobs.reconcile import reconcile_sms

    emulator = callbacks_off
    set_sms(settings, TWILIO_MESSAGING_SERVICE_SID="MG" + "c0" * 16)
    set_sms(settings, SMS_RECONCILE_AFTER=0)
    sms = lose_the_answer(emulator, settings, "drop")
    emulator_delivered(emulator)

    result = reconcile_sms()

    assert (result["checked"], result["adopted"], result["resent"]) == (1, 1, 0)
    assert "decisions" not in result
    assert_delivered_once(sms, emulator)


def test_an_unknown_sid_twilio_does_not_know_is_left_for_staff(callbacks_off):
    emulator = callbacks_off
    sms = make_sms(to=TO, body="deleted at Twilio")
    assert run_batch().sent == 1
    SmsNotification.objects.filter(pk=sms.pk).update(twilio_sid="SM" + "0" * 32)
    Notification.objects.filter(pk=sms.notification_id).update(status=Status.UNKNOWN)

    report = reconcile(now=timezone.now() + timedelta(hours=1))

    assert (report.checked, report.not_found, report.resent) == (1, 1, 0)
    sms = reload(sms)
    assert sms.notification.status == Status.UNKNOWN
    assert "Twilio has no message SM000" in sms.notification.status_message
    assert len(emulator.requests()) == 1
