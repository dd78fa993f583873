"""Crash and stall safety in detail: the Redis dispatch log that makes recovery exact,
claims lost to recovery, sends that must not leave (Redis down, a client that cannot be
built), and segment counts taken from the body as it is when the batch claims it."""

from datetime import timedelta

import pytest
from django.utils import timezone

from devstack.ports import free_port
from notification.backends import get_backend
from notification.conf import app_settings
from notification.models import Notification, NotificationStatusChoices, SmsNotification
from notification.send.batch import recover_stale_claims, run_batch
from notification.send.claim import claim_batch, mark_send_started
from notification.send.dispatch import (
    Dispatcher,
    DispatchLog,
    SendRequest,
    current_sender,
    dispatch_key,
)
from notification.send.results import write_results
from tests.support.sending_helpers import gsm_body, make_sms, reload
from tests.support.settings_helpers import set_sms

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_status_callbacks"),
    pytest.mark.db_vendor,
]

Status = NotificationStatusChoices


def claim(batch_segments: int = 100):
    return claim_batch(
        now=timezone.now(),
        sender=current_sender(),
        batch_segments=batch_segments,
        queue_limit=36_000,
    )


def make_stale(batch) -> None:
    """What time does to a dead (or stalled) worker's claim."""
    SmsNotification.objects.filter(claim_token=batch.token).update(
        claimed_datetime=timezone.now() - timedelta(hours=1)
    )


def recover():
    return recover_stale_claims(timezone.now(), claim_timeout_seconds=60)


def requests_for(sms: SmsNotification):
    return [SendRequest(sms.pk, sms.to_phone_number, sms.notification.body, sms.segments)]


def bodies(emulator) -> list[str]:
    return sorted(r["body"] for r in emulator.requests())


def test_recovery_requeues_rows_whose_request_never_left(twilio_emulator, redis):
    """Batch marked started, one request recorded as leaving, then the worker died."""
    left, waiting_1, waiting_2 = (make_sms(body=f"m{i}") for i in range(3))
    batch = claim()
    log = DispatchLog(batch.token)
    log.open()
    mark_send_started(batch, timezone.now())
    log.record_start(left.pk)  # ...and SIGKILL before the others left
    make_stale(batch)

    counts = recover()

    assert (counts.requeued, counts.unknown) == (2, 1)
    assert reload(left).notification.status == Status.UNKNOWN
    assert reload(left).send_started_datetime is not None
    for sms in (waiting_1, waiting_2):
        sms = reload(sms)
        assert sms.notification.status == Status.PENDING
        assert sms.send_started_datetime is None and sms.claim_token == ""
    report = run_batch()
    assert report.sent == 2
    assert bodies(twilio_emulator) == ["m1", "m2"]  # the unknown one waits for staff


def test_without_the_dispatch_log_started_rows_become_unknown(twilio_emulator, redis):
    """Redis lost the set (or it expired): nothing proves a request did not leave."""
    rows = [make_sms(body=f"m{i}") for i in range(2)]
    batch = claim()
    log = DispatchLog(batch.token)
    log.open()
    mark_send_started(batch, timezone.now())
    redis.delete(dispatch_key(batch.token))
    make_stale(batch)

    assert (recover().unknown, run_batch().claimed) == (2, 0)
    assert {reload(sms).notification.status for sms in rows} == {Status.UNKNOWN}
    assert twilio_emulator.requests() == []


def test_a_stalled_worker_cannot_send_rows_recovery_gave_to_another(twilio_emulator, redis):
    """Recovery closes the batch's log: the stalled worker, waking up, sends nothing,
    and the rows it lost are sent once, by the next batch."""
    rows = [make_sms(body=f"m{i}") for i in range(3)]
    stalled = claim()
    log = DispatchLog(stalled.token)
    log.open()
    mark_send_started(stalled, timezone.now())
    log.record_start(rows[0].pk)  # its first request left, then it stalled
    make_stale(stalled)

    assert run_batch().sent == 2  # recovery + a live worker's batch
    dispatcher = Dispatcher(4, get_backend, record_start=log.record_start)
    late = dispatcher.send_all(
        [SendRequest(s.pk, s.to_phone_number, s.notification.body, 1) for s in stalled.to_send]
    )
    write_results(stalled, late, now=timezone.now(), max_attempts=5)

    assert all(outcome.failure is not None for outcome in late)
    assert "closed by recovery" in late[0].failure.message
    assert bodies(twilio_emulator) == ["m1", "m2"]  # each once; m0 is unknown, for staff
    assert [reload(s).notification.status for s in rows] == [
        Status.UNKNOWN,
        Status.SENT,
        Status.SENT,
    ]


def test_mark_send_started_only_keeps_rows_still_claimed_by_us(twilio_emulator, redis):
    """A worker stalled between claim and mark: recovery released one of its rows and
    another worker claimed it. The stalled worker must not send that one."""
    kept, released = make_sms(body="kept"), make_sms(body="released")
    stalled = claim()
    SmsNotification.objects.filter(pk=released.pk).update(
        claimed_datetime=timezone.now() - timedelta(hours=1)
    )
    assert recover().requeued == 1
    other = claim()
    assert [sms.pk for sms in other.to_send] == [released.pk]

    mark_send_started(stalled, timezone.now())

    assert [sms.pk for sms in stalled.to_send] == [kept.pk]
    assert [sms.pk for sms in stalled.lost] == [released.pk]
    assert reload(released).claim_token == other.token
    # Both finish their batches: each message reaches Twilio once.
    for batch in (stalled, other):
        log = DispatchLog(batch.token)
        log.open()
        if batch is other:
            mark_send_started(batch, timezone.now())
        outcomes = Dispatcher(2, get_backend, log.record_start).send_all(
            [SendRequest(s.pk, s.to_phone_number, s.notification.body, 1) for s in batch.to_send]
        )
        write_results(batch, outcomes, now=timezone.now(), max_attempts=5)
    assert bodies(twilio_emulator) == ["kept", "released"]
    assert {reload(s).notification.status for s in (kept, released)} == {Status.SENT}


def test_when_the_start_cannot_be_recorded_nothing_is_sent(twilio_emulator, settings, monkeypatch):
    rows = [make_sms(body=f"m{i}") for i in range(3)]
    monkeypatch.setitem(
        settings.RQ_QUEUES[app_settings.SMS_QUEUE_NAME], "URL", f"redis://127.0.0.1:{free_port()}/0"
    )

    report = run_batch()

    assert (report.claimed, report.retried, report.sent, report.unknown) == (3, 3, 0, 0)
    assert twilio_emulator.requests() == []
    for sms in rows:
        sms = reload(sms)
        assert sms.notification.status == Status.PENDING  # retried later, cannot duplicate
        assert sms.send_started_datetime is None and sms.next_attempt_datetime is not None
        assert "Redis" in sms.error_message


def test_a_client_that_cannot_be_built_sends_nothing_and_is_retried(twilio_emulator, settings):
    """Bad settings fail before any request leaves: retryable, never unknown."""
    sms = make_sms(body="hello")
    set_sms(settings, TWILIO_BASE_URL="not-a-url")

    report = run_batch()

    assert (report.retried, report.unknown) == (1, 0)
    sms = reload(sms)
    assert sms.notification.status == Status.PENDING
    assert "TWILIO_BASE_URL" in sms.error_message
    assert sms.send_started_datetime is None
    assert twilio_emulator.requests() == []

    set_sms(settings, TWILIO_BASE_URL=twilio_emulator.base_url)  # fixed: sent once the backoff ends
    assert run_batch(now=timezone.now() + timedelta(hours=1)).sent == 1
    assert bodies(twilio_emulator) == ["hello"]


def test_body_edited_after_creation_is_weighed_as_it_is_now(twilio_emulator):
    """The stored count is from creation; the budget uses the body being sent."""
    edited = make_sms(body="short at first")
    other = make_sms(body="another one")
    assert edited.segments == 1
    # An ORM edit of the notification alone leaves SmsNotification.segments stale.
    Notification.objects.filter(pk=edited.notification_id).update(body=gsm_body(2) + "€")
    emoji = make_sms(body="x")
    Notification.objects.filter(pk=emoji.notification_id).update(body="hi 😀")
    assert reload(edited).segments == 1

    report = run_batch(batch_segments=3)

    assert (report.sent, report.segments) == (1, 3)  # 2 x 153 + "€" (2 septets) = 3 segments
    assert reload(edited).segments == 3
    assert reload(other).notification.status == Status.PENDING  # waits: the budget is used
    assert run_batch(batch_segments=3).sent == 2
    emoji = reload(emoji)
    assert (emoji.segments, emoji.encoding) == (1, "ucs2")
