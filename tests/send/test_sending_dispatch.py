"""What Twilio sees from one batch: requests in flight together, retries spread out, the
Messaging Service sender, errors answered at send time, and the batch's log line."""

import shlex
import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from notification.models import NotificationStatusChoices
from notification.send.batch import run_batch
from notification.send.claim import WAIT_BUDGET
from tests.support.sending_helpers import gsm_body, make_sms, reload
from tests.support.settings_helpers import set_sms
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_status_callbacks"),
    pytest.mark.db_vendor,
]

Status = NotificationStatusChoices
MESSAGING_SERVICE_SID = "MG" + "0123456789abcdef" * 2


def test_a_batch_keeps_concurrency_requests_in_flight_at_once(twilio_emulator, settings):
    """With TWILIO_SMS_CONCURRENCY=3, a third request leaves while two are still unanswered.

    The emulator holds the first two answers until the test releases them, so "at
    once" is seen, not timed: one sending thread would wait on the first answer."""
    set_sms(settings, TWILIO_SMS_CONCURRENCY=3)
    set_sms(settings, TWILIO_REQUEST_TIMEOUT=120)  # the held answers must not time out meanwhile
    twilio_emulator.inject_faults([{"kind": "timeout", "count": 2, "hold_ms": 120_000}])
    for i in range(3):
        make_sms(to=f"+1415555010{i}", body=f"message {i}")
    reports = []
    batch = threading.Thread(target=lambda: reports.append(run_batch()))
    batch.start()
    try:
        wait_until(
            lambda: len(twilio_emulator.requests()) == 3,
            timeout=30,
            what="three create requests in flight together",
        )
        outcomes = sorted(r["outcome"] for r in twilio_emulator.requests())
        assert outcomes == ["accepted", "timeout", "timeout"]  # two still held
    finally:
        twilio_emulator.release_held()
        batch.join(60)
    assert reports and (reports[0].sent, reports[0].unknown) == (3, 0)


def test_a_burst_of_throttled_requests_comes_back_spread_out(twilio_emulator):
    """Jitter: twenty 429s in one batch must not all retry at the same instant, and each
    still waits at least half the nominal 30 s."""
    twilio_emulator.inject_faults([{"kind": "http_429", "count": 20}])
    rows = [make_sms(to=f"+141555502{i:02d}", body=f"burst {i}") for i in range(20)]
    before = timezone.now()

    assert run_batch().retried == 20

    delays = [(reload(sms).next_attempt_datetime - before).total_seconds() for sms in rows]
    assert all(15 - 1 <= delay <= 30 + 5 for delay in delays), delays
    assert max(delays) - min(delays) > 1, f"no jitter: {delays}"


def test_a_batch_through_a_messaging_service(twilio_emulator, settings):
    """The Messaging Service SID replaces From; Twilio answers num_segments "0" and
    "accepted", so the segments stored are our own count."""
    set_sms(settings, TWILIO_MESSAGING_SERVICE_SID=MESSAGING_SERVICE_SID)
    two_segments = make_sms(to="+14155550300", body=gsm_body(2, "long"))
    one_segment = make_sms(to="+14155550301", body="short")

    report = run_batch()

    assert (report.sent, report.segments) == (2, 3)
    for request in twilio_emulator.requests():
        assert request["messaging_service_sid"] == MESSAGING_SERVICE_SID
        assert request["from"] is None
    for sms, segments in ((two_segments, 2), (one_segment, 1)):
        sms = reload(sms)
        assert sms.notification.status == Status.SENT
        assert (sms.segments, sms.delivery_status) == (segments, "accepted")
        assert sms.sender == MESSAGING_SERVICE_SID


def test_message_blocked_at_send_time_fails_and_is_never_retried(twilio_emulator):
    twilio_emulator.inject_faults([{"kind": "http_400", "error_code": 30004}])
    sms = make_sms(body="blocked")

    assert run_batch().failed == 1

    sms = reload(sms)
    assert sms.notification.status == Status.FAILED
    assert sms.error_code == 30004
    assert "30004" in sms.notification.status_message
    assert sms.next_attempt_datetime is None
    assert run_batch(now=timezone.now() + timedelta(days=1)).claimed == 0
    assert len(twilio_emulator.requests()) == 1


def test_sender_queue_full_at_send_time_is_retried_later(twilio_emulator):
    """21611: Twilio's queue for this From is full (its limit here is 1 segment)."""
    twilio_emulator.configure(queue_limit=1, drain_rate=0.001)
    rows = [make_sms(body="first"), make_sms(body="second")]

    report = run_batch()

    assert (report.sent, report.retried) == (1, 1)
    [refused] = [r for r in twilio_emulator.requests() if r["error_code"] == 21611]
    [sms] = [reload(sms) for sms in rows if sms.notification.body == refused["body"]]
    assert sms.notification.status == Status.PENDING
    assert sms.error_code == 21611 and sms.next_attempt_datetime is not None
    assert len(twilio_emulator.messages()) == 1


def test_the_batch_log_line_carries_every_field(twilio_emulator, caplog):
    """One logfmt line per batch; log search filters on its fields, so each one must hold."""
    twilio_emulator.inject_faults([{"kind": "http_400", "error_code": 30004, "to": "+14155550401"}])
    make_sms(to="+14155550400", body=gsm_body(2, "sent"))
    make_sms(to="+14155550401", body="blocked")
    make_sms(to="+14155550402", body="left for the next batch")

    with caplog.at_level("INFO", logger="notification.send"):
        run_batch(batch_segments=3)

    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("sms_batch ")]
    assert len(lines) == 1
    fields = dict(part.split("=", 1) for part in shlex.split(lines[0])[1:])
    duration = int(fields.pop("duration_ms"))
    assert duration >= 0
    assert fields == {
        "claimed": "2",
        "sent": "1",
        "failed": "1",
        "retried": "0",
        "unknown": "0",
        "skipped_opt_out": "0",
        "segments": "2",
        "queue_estimate": "0",
        "queue_target": "0",  # an unpaced batch (a paced run's top-ups carry the target)
        "target_filled_pct": "0",
        "recovered_pending": "0",
        "recovered_unknown": "0",
        "wait_reason": WAIT_BUDGET,
        "held": "0",  # by a guardrail (quiet hours, spend limit): still pending
        "refused": "0",  # by the country allow-list: failed, never sent
        "lost_claims": "0",
    }
