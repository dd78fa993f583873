"""Pacing end to end, in scaled time: PostgreSQL, Redis, the emulator over HTTP at 50
segments/s, ``sms_worker`` and ``sms_scheduler --interval 1`` processes, a 4 s interval
and a 1 s queue target (50 segments)."""

import collections
import time

import pytest
from rq import Worker

from notification.jobs.schedule import next_scheduled_run
from notification.models import Notification, NotificationPriorityChoices, NotificationStatusChoices
from notification.send.wake import BATCH_LOCK_NAME, sms_connection
from tests.support.pacing_support import sending_stack
from tests.support.sending_helpers import create_due_sms, make_sms
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.serial,  # bounds wall-clock time: never beside another test worker
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_status_callbacks"),
]

Status = NotificationStatusChoices
HIGH = NotificationPriorityChoices.HIGH
RATE, INTERVAL, TARGET_SECONDS, LIMIT = 50, 4, 1, 80


@pytest.fixture
def paced_env(twilio_emulator, subprocess_env):
    """The emulator drains at RATE with a small queue limit: overfeeding it answers 21611."""
    twilio_emulator.configure(drain_rate=RATE, queue_limit=LIMIT)
    return {
        **subprocess_env,
        **twilio_emulator.env,
        "TWILIO_SMS_RATE": str(RATE),
        "TWILIO_SMS_QUEUE_LIMIT": str(LIMIT),
        "TWILIO_SMS_INTERVAL": str(INTERVAL),
        "TWILIO_SMS_QUEUE_TARGET": str(TARGET_SECONDS),
        "TWILIO_SMS_CLAIM_TIMEOUT": "2",
    }


def settled() -> bool:
    return not Notification.objects.filter(status__in=[Status.PENDING, Status.PROCESSING]).exists()


def message(emulator, body: str) -> dict | None:
    return next((m for m in emulator.messages() if m["body"] == body), None)


def test_a_campaign_runs_at_the_carrier_rate_and_high_overtakes_it(twilio_emulator, paced_env):
    total = 400  # 8 s at 50 segments/s
    with sending_stack(paced_env):
        create_due_sms(total)
        wait_until(lambda: len(twilio_emulator.requests()) >= 100, 30, "the campaign to start")
        created = time.time()
        make_sms(body="login code", priority=HIGH)
        urgent = wait_until(lambda: message(twilio_emulator, "login code"), 10, "the HIGH one")
        wait_until(settled, 60, "the campaign to finish")

        # Idle: a HIGH one starts a run at once; a NORMAL one waits for the next run.
        wait_until(lambda: not sms_connection().exists(BATCH_LOCK_NAME), 10, "the run to end")
        idle_created = time.time()
        make_sms(body="idle login code", priority=HIGH)
        idle_urgent = wait_until(lambda: message(twilio_emulator, "idle login code"), 10, "it")
        wait_until(lambda: not sms_connection().exists(BATCH_LOCK_NAME), 10, "the run to end")
        next_run = next_scheduled_run()
        make_sms(body="weekly digest")
        normal = wait_until(lambda: message(twilio_emulator, "weekly digest"), 2 * INTERVAL, "it")

    requests = twilio_emulator.requests()
    assert [r for r in requests if r["error_code"]] == []  # no 21611
    counts = collections.Counter(r["body"] for r in requests)
    assert len(counts) == total + 3 and set(counts.values()) == {1}
    campaign = [m for m in twilio_emulator.messages() if m["body"].startswith("message ")]
    span = max(m["leaves_queue_at"] for m in campaign) - min(m["queued_at"] for m in campaign)
    assert span <= 1.5 * total / RATE  # close to the physical limit (8 s), never one batch a run
    # The HIGH one overtook the rest of the campaign and waited ~the target at Twilio.
    assert urgent["queued_at"] - created < 2
    assert urgent["leaves_queue_at"] - urgent["queued_at"] <= TARGET_SECONDS + 0.5
    assert idle_urgent["queued_at"] - idle_created < 3  # not the 4 s heartbeat
    assert normal["queued_at"] >= next_run  # NORMAL waited for the scheduled run


def test_a_killed_worker_mid_run_loses_nothing_and_the_next_run_takes_over(
    twilio_emulator, paced_env
):
    total = 300
    twilio_emulator.configure(latency_ms=50)  # requests in flight when the worker dies
    with sending_stack(paced_env, workers=2) as stack:
        create_due_sms(total)
        wait_until(lambda: len(twilio_emulator.requests()) >= 60, 30, "sending to start")
        busy = wait_until(
            lambda: [w for w in Worker.all(connection=sms_connection()) if w.get_current_job_id()],
            10,
            "the worker running the job",
        )
        lock_ttl_ms = sms_connection().pttl(BATCH_LOCK_NAME)
        stack.kill_worker(busy[0].pid)
        killed_at = time.time()
        lock_expires = killed_at + lock_ttl_ms / 1000
        wait_until(settled, 60, "the survivor to finish the campaign")

    counts = collections.Counter(r["body"] for r in twilio_emulator.requests())
    assert max(counts.values()) == 1  # no duplicate
    statuses = collections.Counter(Notification.objects.values_list("status", flat=True))
    assert set(statuses) <= {Status.SENT, Status.UNKNOWN}
    # Only the top-up being sent at the kill can be unknown: at most one target's worth.
    assert statuses[Status.UNKNOWN] <= RATE * TARGET_SECONDS
    assert statuses[Status.SENT] + statuses[Status.UNKNOWN] == total
    assert lock_ttl_ms > 0  # the dead run's lock, left behind
    later = [m["queued_at"] for m in twilio_emulator.messages() if m["queued_at"] > killed_at + 0.5]
    # No overlap: nothing left before the dead run's lock expired; then the next
    # scheduled run took over (within one interval of the expiry).
    assert lock_expires - 0.05 <= min(later) <= lock_expires + INTERVAL + 2
    assert [r for r in twilio_emulator.requests() if r["error_code"]] == []
