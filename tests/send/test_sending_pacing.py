"""Paced runs against the emulator over HTTP, in scaled time (hundreds of segments/s):
the queue stays at the target, priority holds, the limit holds without callbacks,
and a due HIGH notification starts a run at once (the wake-up)."""

import datetime
import time

import django_rq
import pytest
from django.core.management import call_command
from django.utils import timezone

from notification.conf import app_settings
from notification.create.changes import resend_notifications
from notification.jobs.schedule import SMS_BATCH_JOB_ID, get_scheduler, schedule_sms_batch
from notification.jobs.sms import run_window
from notification.models import Notification, NotificationPriorityChoices, NotificationStatusChoices
from notification.send.batch import run_batch
from notification.send.claim import WAIT_TARGET
from notification.send.run import ENDED_NOTHING_DUE, SleepWaiter, run_paced
from notification.send.wake import RUN_JOB_FUNC, WakeSignal, batch_lock
from tests.graphql.test_graphql_create import CREATE, valid_input
from tests.support.sending_helpers import create_due_sms, make_sms
from tests.support.settings_helpers import set_sms

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_status_callbacks"),
]

HIGH = NotificationPriorityChoices.HIGH
RATE = 200  # segments/s, at the emulator and in TWILIO_SMS_RATE


@pytest.fixture
def scaled_time(twilio_emulator, settings):
    """The emulator drains at RATE; the app paces for it with a quarter second of target."""
    twilio_emulator.configure(drain_rate=RATE)
    set_sms(settings, TWILIO_SMS_RATE=RATE)
    set_sms(settings, TWILIO_SMS_QUEUE_TARGET=0.25)  # 50 segments
    return twilio_emulator


def max_queue_depth(messages: list[dict]) -> int:
    """Segments waiting at the emulator right after each message was accepted, at worst."""
    depth = 0
    for message in messages:
        at = message["queued_at"]
        depth = max(
            depth,
            sum(
                m["segments"]
                for m in messages
                if m["queued_at"] <= at < (m["leaves_queue_at"] or 0)
            ),
        )
    return depth


def sms_jobs() -> list:
    return [job for job in django_rq.get_queue("sms").get_jobs() if job.func_name == RUN_JOB_FUNC]


def test_a_paced_run_keeps_the_queue_at_the_target_until_nothing_is_due(scaled_time):
    create_due_sms(300)

    run = run_paced(deadline=time.monotonic() + 60, waiter=SleepWaiter())

    messages = scaled_time.messages()
    assert run.ended == ENDED_NOTHING_DUE
    assert run.sent == len(messages) == 300
    assert run.batches > 6  # topped up as it drained, not one big hand-over
    assert max_queue_depth(messages) <= run.queue_target == 50
    assert not any(r["error_code"] for r in scaled_time.requests())


def test_a_run_queues_the_next_full_batch_while_the_last_round_is_in_flight(
    twilio_emulator, settings
):
    """Batches of 3 on 2 threads, 500 ms per request: the 4th request (the next batch's
    first) goes out beside the 3rd instead of after its answer, the write and a claim,
    so 6 requests take 3 rounds, not 4; each sent once, every row written."""
    latency = 0.5
    twilio_emulator.configure(latency_ms=int(latency * 1000))
    set_sms(settings, TWILIO_SMS_BATCH_SIZE=3, TWILIO_SMS_CONCURRENCY=2, TWILIO_SMS_RATE=1000)
    create_due_sms(6)

    run = run_paced(deadline=time.monotonic() + 60, waiter=SleepWaiter())

    received = sorted(r["received_ts"] for r in twilio_emulator.requests())
    assert (run.ended, run.sent, len(received)) == (ENDED_NOTHING_DUE, 6, 6)
    assert run.batches == 3  # two full ones, then the claim that found nothing due
    # Answers come at 0.5, 1.0 and 1.5 s; without the overlap the 4th, 5th and 6th at
    # >= 1.5, 1.5 and 2.0 s. Half a round of slack either way for a busy machine.
    assert received[-1] - received[0] < 2.5 * latency
    assert received[3] - received[2] < latency / 2
    assert len({m["to"] for m in twilio_emulator.messages()}) == 6  # no duplicate
    statuses = set(Notification.objects.values_list("status", flat=True))
    assert statuses == {NotificationStatusChoices.SENT}
    assert not Notification.objects.filter(sms__claim_token__gt="").exists()


def test_a_high_notification_created_mid_run_waits_only_the_target_at_twilio(scaled_time, redis):
    create_due_sms(300)
    created: list = []

    class CreateHighOnThirdWait(SleepWaiter):
        waits = 0

        def wait(self, seconds: float) -> bool:
            self.waits += 1
            if self.waits == 3:
                created.append((make_sms(body="login code", priority=HIGH), time.time()))
            return super().wait(seconds)

    run_paced(deadline=time.monotonic() + 60, waiter=CreateHighOnThirdWait())

    (high, created_at) = created[0]
    messages = scaled_time.messages()
    urgent = next(m for m in messages if m["body"] == "login code")
    later_normals = [
        m for m in messages if m["body"] != "login code" and m["queued_at"] > urgent["queued_at"]
    ]
    due_at_creation = [m for m in messages if m["queued_at"] > created_at]
    assert len(due_at_creation) > 100  # most of the campaign was still waiting...
    # ...and all of it went after, but for what its own batch sent alongside it: a
    # batch's requests go out concurrently, so a busy machine may let a few of its
    # neighbours reach Twilio first (a wait of one more batch would put dozens ahead).
    ahead = len(due_at_creation) - 1 - len(later_normals)
    assert 0 <= ahead < app_settings.TWILIO_SMS_CONCURRENCY
    # At Twilio it waited behind at most the target (50 segments at 200/s) plus itself.
    assert urgent["leaves_queue_at"] - urgent["queued_at"] <= (50 + 1) / RATE + 0.01
    assert Notification.objects.get(pk=high.notification_id).status == "sent"


def test_without_callbacks_the_estimate_keeps_the_queue_under_the_limit(scaled_time, settings):
    """The target is above the limit here: the limit binds, and no create is refused."""
    scaled_time.configure(queue_limit=30)
    set_sms(settings, TWILIO_SMS_QUEUE_LIMIT=30)
    create_due_sms(200)

    run = run_paced(deadline=time.monotonic() + 60, waiter=SleepWaiter())

    assert run.sent == 200
    assert [r for r in scaled_time.requests() if r["error_code"]] == []
    assert max_queue_depth(scaled_time.messages()) <= 30


def test_a_claim_stops_at_the_target_and_the_log_line_says_how_full_it_is(
    twilio_emulator, settings, caplog
):
    set_sms(settings, TWILIO_SMS_RATE=0.01)  # nothing drains during the test
    caplog.set_level("INFO", logger="notification.send")
    for index in range(3):
        make_sms(body=f"message {index}")

    first = run_batch(queue_target=2)
    second = run_batch(queue_target=2)

    assert (first.sent, first.target_filled_pct) == (2, 100)
    assert (second.claimed, second.wait_reason, second.queue_estimate) == (0, WAIT_TARGET, 2)
    assert "queue_estimate=0 queue_target=2 target_filled_pct=100" in caplog.text
    assert Notification.objects.filter(status=NotificationStatusChoices.PENDING).count() == 1


def test_a_due_high_notification_enqueues_one_run_and_normal_ones_none(redis):
    make_sms(body="weekly digest")
    assert sms_jobs() == []

    for index in range(3):
        make_sms(body=f"login code {index}", priority=HIGH)

    assert len(sms_jobs()) == 1
    assert WakeSignal(redis).pending()


def test_a_high_notification_during_a_run_wakes_that_run_instead(redis):
    with batch_lock(redis) as held:
        assert held
        make_sms(body="login code", priority=HIGH)
    assert sms_jobs() == []
    assert WakeSignal(redis).pending()  # the active run's BLPOP returns at once


def test_graphql_creation_and_resend_of_a_high_notification_start_a_run(redis, graphql, staff_user):
    graphql(staff_user).data(CREATE, {"input": valid_input(priority="HIGH")})
    assert len(sms_jobs()) == 1

    redis.flushall()
    sms = make_sms(body="outage", priority=NotificationPriorityChoices.NORMAL)
    Notification.objects.filter(pk=sms.notification_id).update(
        status=NotificationStatusChoices.UNKNOWN, priority=HIGH
    )
    assert sms_jobs() == []
    resend_notifications([sms.notification_id])
    assert len(sms_jobs()) == 1


def test_a_run_ends_before_the_next_scheduled_run(redis, settings):
    set_sms(settings, TWILIO_SMS_INTERVAL=10)
    now = time.time()
    assert run_window(now) == (9.0, 9.5)  # not scheduled: one interval, margin 1 s

    schedule_sms_batch()
    scheduler = get_scheduler()
    scheduler.connection.zadd(scheduler.scheduled_jobs_key, {SMS_BATCH_JOB_ID: now + 4})

    pacing, lock = run_window(now)
    assert (pacing, lock) == (3.0, 3.5)  # the lock expires before the next run starts


def test_dry_run_shows_the_pacing_decision(twilio_emulator, settings, capsys):
    set_sms(settings, TWILIO_SMS_RATE=0.01)  # nothing drains during the test
    set_sms(settings, TWILIO_SMS_QUEUE_TARGET=200)  # 2 segments
    for index in range(3):
        make_sms(body=f"message {index}")
    run_batch(queue_target=2)

    call_command("send_sms_batch", "--dry-run")

    out = capsys.readouterr().out
    assert "Twilio queue estimate: 2 of 36000 segments." in out
    assert "Pacing: target 2 segments queued at Twilio (200 s x 0.01 segments/s)" in out
    assert "room now 0 segment(s)" in out
    assert "the queue is at the target; it drains enough in 100.0 s" in out
    assert f"due but not in this batch: 1 ({WAIT_TARGET})" in out
    assert len(twilio_emulator.requests()) == 2


def test_a_high_notification_published_later_schedules_a_run_for_when_it_is_due(redis):
    """Not due yet, so no run now; rq-scheduler holds one wake-up at its publish time
    (rows published in the same second share it), so it does not wait for the heartbeat."""
    publish_at = (timezone.now() + datetime.timedelta(minutes=3)).replace(microsecond=0)
    for index in range(3):
        make_sms(body=f"reminder {index}", priority=HIGH, publish=publish_at)
    make_sms(
        body="digest",
        priority=NotificationPriorityChoices.NORMAL,
        publish=publish_at + datetime.timedelta(minutes=1),
    )

    assert sms_jobs() == []
    scheduled = [
        (job.func_name, when)
        for job, when in get_scheduler().get_jobs(with_times=True)
        if job.id != SMS_BATCH_JOB_ID
    ]
    assert scheduled == [
        (RUN_JOB_FUNC, (publish_at + datetime.timedelta(seconds=1)).replace(tzinfo=None))
    ]
