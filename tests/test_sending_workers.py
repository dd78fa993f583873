"""Worker processes against the emulator over HTTP: exactly once under concurrency and SIGKILL."""

import collections
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from notification.models import Notification, NotificationStatusChoices, SmsNotification
from notification.resend import resend_notifications
from notification.sending.batch import run_batch
from tests.fixtures_services import REPO_ROOT

pytestmark = pytest.mark.django_db(transaction=True)

Status = NotificationStatusChoices


@pytest.fixture
def twilio_emulator(twilio_emulator):
    """No status callbacks: nothing serves PUBLIC_BASE_URL in these tests."""
    twilio_emulator.configure(callbacks_enabled=False)
    return twilio_emulator


def create_due_sms(count: int) -> None:
    """Bulk-create ``count`` due pairs, each with a unique body (bulk insert skips save())."""
    publish = timezone.now() - timedelta(seconds=5)
    notifications = Notification.objects.bulk_create(
        Notification(title=f"n{i}", body=f"message {i}", publish_datetime=publish)
        for i in range(count)
    )
    SmsNotification.objects.bulk_create(
        SmsNotification(notification=n, to_phone_number=f"+1415555{i % 10000:04d}", segments=1)
        for i, n in enumerate(notifications)
    )


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


@pytest.mark.postgres
def test_four_worker_processes_send_each_message_exactly_once(twilio_emulator, subprocess_env):
    create_due_sms(2000)
    env = {**subprocess_env, **twilio_emulator.env, "TWILIO_SMS_BATCH_SIZE": "100"}

    workers = [start_worker(env) for _ in range(4)]
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
    assert len(busy) >= 2, "the workers did not actually run concurrently"


def test_sigkill_mid_batch_loses_nothing_and_duplicates_nothing(
    twilio_emulator, subprocess_env, settings
):
    total = 200
    create_due_sms(total)
    twilio_emulator.configure(latency_ms=200)
    env = {
        **subprocess_env,
        **twilio_emulator.env,
        "TWILIO_SMS_BATCH_SIZE": "100",
        "TWILIO_SMS_CONCURRENCY": "4",
    }
    worker = start_worker(env)
    try:
        deadline = time.monotonic() + 60
        while len(twilio_emulator.requests()) < 10:
            assert worker.poll() is None, worker.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the worker never started sending"
            time.sleep(0.05)
        os.kill(worker.pid, signal.SIGKILL)
    finally:
        worker.kill()
        worker.communicate()
    time.sleep(0.5)  # requests already in flight finish at the emulator
    assert Notification.objects.filter(status=Status.PROCESSING).exists()

    # Recovery (at the start of the next batch) once the claims are stale.
    twilio_emulator.configure(latency_ms=0)
    settings.TWILIO_SMS_CLAIM_TIMEOUT = 1
    time.sleep(1.1)
    recovered = run_batch()
    assert recovered.recovered_unknown > 0  # killed after its requests had started
    while run_batch().claimed:
        pass

    statuses = collections.Counter(Notification.objects.values_list("status", flat=True))
    assert set(statuses) <= {Status.SENT, Status.UNKNOWN}, statuses
    counts = received_bodies(twilio_emulator)
    assert max(counts.values()) == 1  # no duplicate
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
