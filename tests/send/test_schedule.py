"""The schedule is code (``jobs/schedule.py``, ``notification.jobs.schedule``): the
scheduler makes Redis match it, at start and whenever an entry goes missing."""

import signal

import pytest
from django.core.management import call_command

from jobs.schedule import SCHEDULE
from notification.jobs.reconcile import RECONCILE_JOB_ID
from notification.jobs.schedule import (
    DEFAULT_SCHEDULE,
    FORGET_KEYS_ID,
    SEND_RUN_ID,
    Periodic,
    declared_schedule,
    get_scheduler,
    sync_schedule,
)
from notification.processes import SmsScheduler
from tests.support.settings_helpers import set_sms

pytestmark = pytest.mark.django_db

#: A host project's own schedule (``SMS_SCHEDULE`` names it).
HOST_SCHEDULE = [
    Periodic(SEND_RUN_ID, "notification.jobs.sms.send_sms_batch", every=60),
    Periodic("host-report", "notification.jobs.idempotency.forget_expired_idempotency_keys", 7),
]


def scheduled(redis) -> dict[str, float]:
    return {
        member.decode(): score
        for member, score in redis.zrange("rq:scheduler:scheduled_jobs", 0, -1, withscores=True)
    }


def test_the_project_declares_the_apps_default_schedule():
    assert declared_schedule() == tuple(SCHEDULE)
    assert tuple(SCHEDULE) == DEFAULT_SCHEDULE  # a host project without jobs/ gets the same
    assert {entry.id for entry in SCHEDULE} == {SEND_RUN_ID, FORGET_KEYS_ID, RECONCILE_JOB_ID}


def test_without_the_setting_the_apps_default_applies(settings):
    set_sms(settings, SMS_SCHEDULE="")
    assert declared_schedule() == DEFAULT_SCHEDULE


def test_a_host_project_declares_its_own(settings, redis):
    set_sms(settings, SMS_SCHEDULE="tests.send.test_schedule.HOST_SCHEDULE")
    sync_schedule()
    jobs = {job.id: job for job in get_scheduler().get_jobs()}
    assert set(jobs) == {SEND_RUN_ID, "host-report"}
    assert jobs["host-report"].meta["interval"] == 7


def test_an_interval_named_by_a_setting_follows_it(settings, redis):
    set_sms(settings, TWILIO_SMS_INTERVAL=42)
    sync_schedule()
    intervals = {job.id: job.meta["interval"] for job in get_scheduler().get_jobs()}
    assert intervals == {SEND_RUN_ID: 42, FORGET_KEYS_ID: 3600, RECONCILE_JOB_ID: 900}


def test_a_healthy_schedule_keeps_its_timing_and_a_missing_entry_comes_back(redis):
    assert {e.id for e in sync_schedule(replace=True)} == {
        SEND_RUN_ID,
        FORGET_KEYS_ID,
        RECONCILE_JOB_ID,
    }
    redis.zadd("rq:scheduler:scheduled_jobs", {SEND_RUN_ID: 4_000_000_000})  # far ahead
    redis.zrem("rq:scheduler:scheduled_jobs", FORGET_KEYS_ID)  # lost

    assert [e.id for e in sync_schedule()] == [FORGET_KEYS_ID]
    assert scheduled(redis)[SEND_RUN_ID] == 4_000_000_000  # untouched
    assert sync_schedule() == []  # nothing missing: nothing done


def test_a_changed_interval_is_replaced(settings, redis):
    sync_schedule()
    set_sms(settings, TWILIO_SMS_INTERVAL=30)
    assert [e.id for e in sync_schedule()] == [SEND_RUN_ID]  # the hourly sweep is unchanged


@pytest.fixture
def keep_signal_handlers():
    """``SmsScheduler.run`` installs its SIGINT/SIGTERM handlers: give pytest its own back."""
    saved = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    yield
    for signum, handler in saved.items():
        signal.signal(signum, handler)


@pytest.mark.usefixtures("keep_signal_handlers")
def test_the_scheduler_heals_an_emptied_redis_within_one_poll(redis, caplog):
    scheduler = SmsScheduler(queue=get_scheduler()._queue, connection=redis, interval=1)
    scheduler.run(burst=True)  # start-up: registers, then enqueues what is due
    assert set(scheduled(redis)) == {SEND_RUN_ID, FORGET_KEYS_ID, RECONCILE_JOB_ID}

    redis.flushall()  # Redis came back empty
    scheduler.run(burst=True)  # the next poll

    assert set(scheduled(redis)) == {SEND_RUN_ID, FORGET_KEYS_ID, RECONCILE_JOB_ID}
    assert "sms_schedule healed=" in caplog.text
    queued = {job.id for job in get_scheduler()._queue.get_jobs()}
    assert SEND_RUN_ID in queued  # due at once: enqueued in that same poll


def test_schedule_sms_registers_every_entry_once(redis, capsys):
    call_command("schedule_sms")
    call_command("schedule_sms")
    assert set(scheduled(redis)) == {SEND_RUN_ID, FORGET_KEYS_ID, RECONCILE_JOB_ID}
    assert len(list(get_scheduler().get_jobs())) == len(DEFAULT_SCHEDULE)


def test_an_id_declared_twice_is_refused(settings):
    set_sms(settings, SMS_SCHEDULE="tests.send.test_schedule.TWICE")
    with pytest.raises(ValueError, match="declares an id twice"):
        declared_schedule()


TWICE = [HOST_SCHEDULE[0], HOST_SCHEDULE[0]]
