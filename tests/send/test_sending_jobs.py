"""The scheduled job: rq-scheduler registration, the overlap lock, and the checked worker."""

import logging
import subprocess
import sys

import django_rq
import pytest
from django.core.management import call_command

from notification.jobs.schedule import (
    SMS_BATCH_FUNC,
    SMS_BATCH_JOB_ID,
    declared_schedule,
    get_scheduler,
    scheduled_sms_jobs,
)
from notification.jobs.sms import send_sms_batch
from notification.models import NotificationStatusChoices
from notification.send.wake import batch_lock
from tests.support.fixtures_services import REPO_ROOT
from tests.support.sending_helpers import make_sms, reload

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_status_callbacks"),
    pytest.mark.db_vendor,
]


def run_sms_worker(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """``manage.py sms_worker`` with ``args``, run to completion (a minute at most)."""
    return subprocess.run(
        [sys.executable, "manage.py", "sms_worker", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_schedule_sms_is_idempotent(redis, capsys):
    call_command("schedule_sms")
    call_command("schedule_sms")

    jobs = scheduled_sms_jobs()
    assert [job.id for job in jobs] == [SMS_BATCH_JOB_ID]
    assert jobs[0].func_name == SMS_BATCH_FUNC
    assert jobs[0].meta["interval"] == 300  # TWILIO_SMS_INTERVAL's default
    assert "repeat" not in jobs[0].meta  # forever
    # The whole declared schedule (jobs/schedule.py), each entry once.
    assert sorted(job.id for job in get_scheduler().get_jobs()) == sorted(
        entry.id for entry in declared_schedule()
    )
    assert "every 300 s" in capsys.readouterr().out


def test_an_overlapping_scheduled_run_exits_at_once(redis, twilio_emulator, caplog):
    sms = make_sms(body="wait for the lock")
    caplog.set_level(logging.INFO, logger="notification.send")

    with batch_lock(redis) as held:
        assert held
        with batch_lock(redis) as second:
            assert not second
        result = send_sms_batch()

    assert result == {"skipped": "another batch run holds the lock"}
    assert "skipped=overlap" in caplog.text
    assert twilio_emulator.requests() == []
    assert reload(sms).notification.status == NotificationStatusChoices.PENDING

    result = send_sms_batch()  # lock released: this run sends
    assert result["sent"] == 1
    assert "sms_batch claimed=1 sent=1" in caplog.text


def test_the_sms_worker_runs_the_scheduled_job(twilio_emulator, subprocess_env):
    sms = make_sms(body="through RQ")
    django_rq.get_queue("sms").enqueue(SMS_BATCH_FUNC)

    result = run_sms_worker({**subprocess_env, **twilio_emulator.env}, "--burst")

    assert result.returncode == 0, result.stderr[-3000:]
    assert [m["body"] for m in twilio_emulator.messages()] == ["through RQ"]
    assert reload(sms).notification.status == NotificationStatusChoices.SENT


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"TWILIO_ACCOUNT_SID": ""}, "TWILIO_ACCOUNT_SID"),
        ({"TWILIO_AUTH_TOKEN": ""}, "TWILIO_AUTH_TOKEN"),
        ({"TWILIO_FROM_NUMBER": ""}, "TWILIO_FROM_NUMBER or TWILIO_MESSAGING_SERVICE_SID"),
        ({"TWILIO_SMS_BATCH_SIZE": "a hundred"}, "TWILIO_SMS_BATCH_SIZE must be an integer"),
        ({"TWILIO_SMS_BATCH_SIZE": "0"}, "TWILIO_SMS_BATCH_SIZE must be a number of at least 1"),
    ],
)
def test_the_worker_refuses_to_start_without_what_it_needs(
    twilio_emulator, subprocess_env, override, named
):
    result = run_sms_worker({**subprocess_env, **twilio_emulator.env, **override})

    assert result.returncode != 0
    assert named in result.stderr
    assert "Listening on" not in result.stderr + result.stdout  # never got to the RQ worker


def test_the_worker_check_passes_with_complete_settings(twilio_emulator, subprocess_env):
    result = run_sms_worker({**subprocess_env, **twilio_emulator.env}, "--check")
    assert result.returncode == 0, result.stderr
    assert "SMS worker settings OK" in result.stdout
