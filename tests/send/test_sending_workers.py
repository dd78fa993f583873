"""Worker processes against the emulator over HTTP: exactly once under concurrency and SIGKILL."""

import collections
import os
import signal
import subprocess
import sys
import threading
from contextlib import contextmanager

import pytest
from django.db import connection, transaction
from django.utils import timezone

from notification.create.changes import resend_notifications
from notification.models import Notification, NotificationStatusChoices, SmsNotification
from notification.send.batch import recover_stale_claims, run_batch
from notification.send.claim import _serialise_claims
from notification.send.dispatch import current_sender
from tests.support.fixtures_services import REPO_ROOT
from tests.support.sending_helpers import create_due_sms
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_status_callbacks"),
    pytest.mark.db_vendor,
    pytest.mark.slow,  # thousands of sends by worker processes: started first (tests/README.md)
]

Status = NotificationStatusChoices


def start_worker(env: dict[str, str], *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "send_sms_batch", "--no-lock", "--until-empty", *extra],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def received_bodies(emulator) -> collections.Counter:
    """How many create requests for each body reached the emulator (accepted or not)."""
    return collections.Counter(r["body"] for r in emulator.requests())


def waiting_claims() -> int:
    """Backends blocked on an advisory lock: workers queued at the claim's lock."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cursor.fetchone()[0]


@contextmanager
def claims_held_back():
    """Hold the claim lock of this sender (the very function workers call) until the
    block ends, so every worker started meanwhile is at its first claim before any of
    them claims: all of them then claim in turn, however slowly each one started."""
    holding, release = threading.Event(), threading.Event()

    def hold() -> None:
        try:
            with transaction.atomic():
                _serialise_claims(current_sender())
                holding.set()
                release.wait(120)
        finally:
            connection.close()

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(30)
        yield
    finally:
        release.set()
        holder.join(30)


@pytest.mark.postgres
def test_four_worker_processes_send_each_message_exactly_once(twilio_emulator, subprocess_env):
    create_due_sms(2000)
    env = {**subprocess_env, **twilio_emulator.env, "TWILIO_SMS_BATCH_SIZE": "100"}

    with claims_held_back():
        workers = [start_worker(env) for _ in range(4)]
        wait_until(lambda: waiting_claims() == 4, timeout=60, what="four workers at the claim")
    outputs = [worker.communicate(timeout=120) for worker in workers]

    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-3000:]
    counts = received_bodies(twilio_emulator)
    assert len(counts) == 2000
    assert set(counts.values()) == {1}, [b for b, c in counts.items() if c > 1][:10]
    assert len(twilio_emulator.messages()) == 2000
    assert Notification.objects.filter(status=Status.SENT).count() == 2000
    sids = set(SmsNotification.objects.values_list("twilio_sid", flat=True))
    assert sids == {m["sid"] for m in twilio_emulator.messages()}
    busy = [out for out, _ in outputs if "Claimed 100:" in out]
    assert len(busy) == 4, "every worker claims its first batch while the others work"


def test_sigkill_mid_batch_loses_nothing_and_duplicates_nothing(
    twilio_emulator, twilio_emulator_server, subprocess_env, settings
):
    """Killed mid-batch: rows whose request never left go back to pending (the batch's
    Redis dispatch log proves it), rows whose request had started become unknown."""
    total, concurrency = 200, 4
    create_due_sms(total)
    twilio_emulator.configure(latency_ms=200)
    env = {
        **subprocess_env,
        **twilio_emulator.env,
        "TWILIO_SMS_BATCH_SIZE": "100",
        "TWILIO_SMS_CONCURRENCY": str(concurrency),
    }
    worker = start_worker(env)
    try:

        def sending() -> bool:
            assert worker.poll() is None, worker.communicate()[1][-3000:]
            return len(twilio_emulator.requests()) >= 10

        wait_until(sending, timeout=60, what="the worker sending")
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.kill()
        worker.communicate()
    # Requests the worker had already sent are still being handled by the emulator.
    wait_until(lambda: twilio_emulator_server.requests_in_progress() == 0, timeout=30)
    processing = Notification.objects.filter(status=Status.PROCESSING)
    claimed = processing.count()
    assert claimed == 100  # the whole first batch was claimed, none of it written back
    assert not processing.filter(sms__send_started_datetime__isnull=True).exists()  # all marked
    received = received_bodies(twilio_emulator)
    assert max(received.values()) == 1

    # Recovery (the start of every batch) once the claims are stale.
    recovered = recover_stale_claims(timezone.now(), claim_timeout_seconds=0)
    assert recovered.requeued + recovered.unknown == claimed
    assert recovered.requeued > 0 and recovered.unknown > 0
    # Exact, not the whole batch: only requests that had left (at most one more
    # per sending thread than the emulator saw) are unknown...
    assert recovered.unknown <= len(received) + concurrency
    # ...and every row put back to pending had provably never reached Twilio.
    requeued_bodies = Notification.objects.filter(status=Status.PENDING).values_list(
        "body", flat=True
    )
    assert all(received[body] == 0 for body in requeued_bodies)
    assert not SmsNotification.objects.filter(
        notification__status=Status.PENDING, send_started_datetime__isnull=False
    ).exists()

    twilio_emulator.configure(latency_ms=0)
    while run_batch().claimed:
        pass

    statuses = collections.Counter(Notification.objects.values_list("status", flat=True))
    assert set(statuses) == {Status.SENT, Status.UNKNOWN}, statuses
    assert statuses[Status.UNKNOWN] == recovered.unknown
    counts = received_bodies(twilio_emulator)
    assert max(counts.values()) == 1  # no duplicate without staff action
    for body in Notification.objects.filter(status=Status.SENT).values_list("body", flat=True):
        assert counts[body] == 1
    # Nothing lost: every unknown one is visible for staff; resending those the
    # emulator never received delivers every message exactly once.
    never_received = [
        pk
        for pk, body in Notification.objects.filter(status=Status.UNKNOWN).values_list("pk", "body")
        if counts[body] == 0
    ]
    resend_notifications(never_received)
    while run_batch().claimed:
        pass
    counts = received_bodies(twilio_emulator)
    assert len(counts) == total and set(counts.values()) == {1}
