"""What makes exactly-once and the queue limit hold between workers, tested without the
locks that usually hide it.

* The claim is a **conditional** UPDATE: a row that stopped being pending, or that
  another worker claimed, between our read and our UPDATE is not ours. On both
  databases the read and the UPDATE share a transaction behind a lock, so a real
  race cannot be timed into that gap; Django's ``execute_wrapper`` (its public
  hook on every query) makes the other worker's committed change land exactly
  there, which is what happens where ``SKIP LOCKED`` is unavailable.
* The queue estimate counts a worker's in-flight claims (claimed, no answer yet),
  so a second worker claiming at the same time leaves room for them.
"""

import threading
from collections.abc import Callable
from contextlib import contextmanager, nullcontext

import pytest
from django.db import connection
from django.utils import timezone

from notification.models import Notification, NotificationStatusChoices, SmsNotification
from notification.send.batch import run_batch
from notification.send.claim import WAIT_QUEUE, claim_batch, mark_send_started
from notification.send.dispatch import current_sender
from tests.support.sending_helpers import make_sms, reload
from tests.support.settings_helpers import set_sms
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_status_callbacks"),
    pytest.mark.db_vendor,
]

Status = NotificationStatusChoices


def is_the_claim(sql: str) -> bool:
    """The claim's UPDATE: the statement that stamps ``claim_token`` and ``claimed_datetime``."""
    table = SmsNotification._meta.db_table
    return sql.lstrip().upper().startswith("UPDATE") and table in sql and "claimed_datetime" in sql


@contextmanager
def just_before_the_claim(change: Callable[[], None]):
    """Run ``change`` (another worker's, or staff's, write) right before the claim's UPDATE."""
    done = False

    def wrapper(execute, sql, params, many, context):
        nonlocal done
        if not done and is_the_claim(sql):
            done = True
            change()
        return execute(sql, params, many, context)

    with connection.execute_wrapper(wrapper):
        yield
    assert done, "the claim's UPDATE never ran"


def test_a_row_canceled_between_read_and_claim_is_never_sent(twilio_emulator):
    kept, canceled = make_sms(body="still wanted"), make_sms(body="canceled meanwhile")

    def staff_cancels():
        Notification.objects.filter(pk=canceled.notification_id).update(status=Status.CANCELED)

    with just_before_the_claim(staff_cancels):
        report = run_batch()

    assert (report.claimed, report.sent) == (1, 1)
    assert [m["body"] for m in twilio_emulator.messages()] == ["still wanted"]
    canceled = reload(canceled)
    assert canceled.notification.status == Status.CANCELED
    assert canceled.claim_token == "" and canceled.twilio_sid is None
    assert reload(kept).notification.status == Status.SENT


def test_a_row_another_worker_claimed_between_read_and_claim_stays_theirs(twilio_emulator):
    mine, theirs = make_sms(body="mine"), make_sms(body="theirs")
    now = timezone.now()

    def other_worker_claims():
        SmsNotification.objects.filter(pk=theirs.pk).update(
            claimed_datetime=now, claim_token="other-worker", sender=current_sender()
        )

    with just_before_the_claim(other_worker_claims):
        report = run_batch()

    assert (report.claimed, report.sent, report.lost_claims) == (1, 1, 0)  # never ours
    assert [m["body"] for m in twilio_emulator.messages()] == ["mine"]
    theirs = reload(theirs)
    assert theirs.claim_token == "other-worker"  # never taken over, so never sent twice
    assert theirs.twilio_sid is None
    assert reload(mine).notification.status == Status.SENT


def test_a_second_worker_leaves_room_for_the_first_workers_requests_in_flight(
    twilio_emulator, settings
):
    """Worker A has claimed a full queue's worth and its requests are on their way (no
    answer yet); worker B, running at that moment, must not hand Twilio more."""
    set_sms(settings, TWILIO_SMS_QUEUE_LIMIT=10)
    for i in range(20):
        make_sms(to=f"+1415555{i:04d}", body=f"message {i}")
    now = timezone.now()

    worker_a = claim_batch(now=now, sender=current_sender(), batch_segments=100, queue_limit=10)
    mark_send_started(worker_a, now)
    assert len(worker_a.to_send) == 10

    worker_b = run_batch(now=now)  # the same moment: nothing has drained yet

    assert worker_b.claimed == 0
    assert worker_b.queue_estimate == 10  # A's in-flight segments
    assert worker_b.wait_reason == WAIT_QUEUE
    assert twilio_emulator.requests() == []
    assert Notification.objects.filter(status=Status.PENDING).count() == 10


def advisory_lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
        return cursor.fetchone()[0]


@pytest.mark.postgres
def test_two_workers_claiming_at_once_stay_within_the_queue_limit(twilio_emulator, settings):
    """Claims for one sender are serialised (an advisory lock on PostgreSQL): worker B
    reading the queue estimate while worker A is between its own read and its claim
    would see room A is about to take. A is stopped right before its claim's UPDATE;
    B must wait for it (PostgreSQL shows B blocked), then sees A's claim and takes none."""
    for i in range(20):
        make_sms(to=f"+1415555{i:04d}", body=f"message {i}")
    now = timezone.now()
    a_at_claim, a_go_on = threading.Event(), threading.Event()
    claimed: dict[str, int] = {}

    def pause_at_the_claim(execute, sql, params, many, context):
        if is_the_claim(sql):
            a_at_claim.set()
            a_go_on.wait(60)
        return execute(sql, params, many, context)

    def worker(name: str) -> None:
        try:
            pause = pause_at_the_claim if name == "A" else None
            with connection.execute_wrapper(pause) if pause else nullcontext():
                batch = claim_batch(
                    now=now, sender=current_sender(), batch_segments=10, queue_limit=10
                )
            claimed[name] = batch.claimed
        finally:
            connection.close()

    worker_a = threading.Thread(target=worker, args=("A",))
    worker_b = threading.Thread(target=worker, args=("B",))
    worker_a.start()
    try:
        assert a_at_claim.wait(30)
        worker_b.start()
        wait_until(lambda: advisory_lock_waiters() == 1 or "B" in claimed, what="B waiting")
        assert "B" not in claimed, "B claimed while A was between its read and its claim"
    finally:
        a_go_on.set()
        worker_a.join(30)
        if worker_b.ident is not None:
            worker_b.join(30)
    assert claimed == {"A": 10, "B": 0}
    assert Notification.objects.filter(status=Status.PROCESSING).count() == 10
