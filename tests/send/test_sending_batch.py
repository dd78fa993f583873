"""The send batch against the emulator over HTTP: selection, budget, queue, opt-outs, errors."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notification.models import (
    DeliveryStatusChoices,
    NotificationPriorityChoices,
    NotificationStatusChoices,
    SmsOptOut,
)
from notification.send.batch import run_batch
from notification.send.claim import WAIT_BUDGET, WAIT_QUEUE
from notification.send.wake import combine, estimate_queue, fluid_backlog
from tests.support.sending_helpers import create_due_sms, gsm_body, make_sms, reload
from tests.support.settings_helpers import set_sms

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_status_callbacks"),
    pytest.mark.db_vendor,
]


Status = NotificationStatusChoices


def test_orm_created_pair_is_sent_with_callback_sender_and_validity(twilio_emulator, settings):
    set_sms(settings, PUBLIC_BASE_URL="https://notify.example.com")
    set_sms(settings, TWILIO_SMS_VALIDITY_PERIOD=3600)
    # Exactly as the seed guide does it: national format, plain ORM creates.
    sms = make_sms(to="(415) 555-0100", body="Your parcel has shipped")

    report = run_batch()

    assert (report.claimed, report.sent, report.segments) == (1, 1, 1)
    [message] = twilio_emulator.messages()
    assert message["to"] == "+14155550100"
    assert message["body"] == "Your parcel has shipped"
    assert message["from"] == twilio_emulator.from_number
    # Its own URL (the row id), with Twilio's connection overrides as the fragment.
    assert message["status_callback"] == (
        f"https://notify.example.com/twilio/sms/status/?sms={sms.pk}#rc=3&rp=ct,5xx"
    )
    assert int(message["validity_period"]) == 3600
    sms = reload(sms)
    assert sms.notification.status == Status.SENT
    assert sms.twilio_sid == message["sid"]
    assert sms.delivery_status == DeliveryStatusChoices.QUEUED  # first status: from the answer
    assert sms.segments == 1 and sms.attempts == 1
    assert sms.sender == twilio_emulator.from_number
    assert sms.sent_datetime is not None and sms.notification.sent_datetime is not None
    assert sms.claimed_datetime is None and sms.claim_token == ""


def test_only_due_messages_in_priority_then_publish_order(twilio_emulator):
    now = timezone.now()
    low = make_sms(body="low", priority=NotificationPriorityChoices.LOW, publish=now - timedelta(3))
    normal_late = make_sms(body="normal late", publish=now - timedelta(minutes=1))
    make_sms(body="normal early", publish=now - timedelta(minutes=2))
    make_sms(body="high", priority=NotificationPriorityChoices.HIGH)
    future = make_sms(body="future", publish=now + timedelta(hours=1))
    backoff = make_sms(body="backoff")
    backoff.next_attempt_datetime = now + timedelta(minutes=5)
    backoff.save(update_fields=["next_attempt_datetime"])
    canceled = make_sms(body="canceled")
    canceled.notification.status = Status.CANCELED
    canceled.notification.save(update_fields=["status"])

    report = run_batch(concurrency=1)  # one at a time: arrival order is sending order

    assert report.sent == 4
    assert [m["body"] for m in twilio_emulator.messages()] == [
        "high",
        "normal early",
        "normal late",
        "low",
    ]
    for waiting in (future, backoff):
        assert reload(waiting).notification.status == Status.PENDING
    assert reload(canceled).notification.status == Status.CANCELED
    assert reload(low).notification.status == reload(normal_late).notification.status == Status.SENT


def test_segment_budget_takes_in_order_while_they_fit(twilio_emulator):
    first = make_sms(body=gsm_body(2, "a"), priority=NotificationPriorityChoices.HIGH)
    second = make_sms(body=gsm_body(2, "b"))
    third = make_sms(body=gsm_body(2, "c"))
    small = make_sms(body="d", priority=NotificationPriorityChoices.LOW)

    report = run_batch(batch_segments=5)

    # 2 + 2 fit; the third (2) would make 6 > 5, so it and everything after waits,
    # even the 1-segment message that would fit: order is never broken.
    assert (report.sent, report.segments, report.wait_reason) == (2, 4, WAIT_BUDGET)
    assert reload(first).notification.status == reload(second).notification.status == Status.SENT
    assert reload(third).notification.status == reload(small).notification.status == Status.PENDING
    report = run_batch(batch_segments=5)
    assert (report.sent, report.segments) == (2, 3)


def test_message_bigger_than_the_budget_is_sent_alone(twilio_emulator):
    big = make_sms(body=gsm_body(4, "big"), priority=NotificationPriorityChoices.HIGH)
    small = make_sms(body="small")

    report = run_batch(batch_segments=3)

    assert (report.sent, report.segments) == (1, 4)
    assert reload(big).notification.status == Status.SENT
    assert reload(small).notification.status == Status.PENDING
    assert run_batch(batch_segments=3).sent == 1


def test_twilio_queue_limit_shrinks_the_batch_until_it_drains(twilio_emulator, settings):
    set_sms(settings, TWILIO_SMS_QUEUE_LIMIT=5)
    set_sms(settings, TWILIO_SMS_RATE=0.001)  # nothing drains during the test
    for i in range(4):
        make_sms(body=gsm_body(2, f"m{i}"))

    first = run_batch(batch_segments=100)
    assert (first.sent, first.segments, first.wait_reason) == (2, 4, WAIT_QUEUE)
    assert estimate_queue(twilio_emulator.from_number, timezone.now()) == 4

    second = run_batch(batch_segments=100)
    assert (second.claimed, second.queue_estimate, second.wait_reason) == (0, 4, WAIT_QUEUE)

    # A status callback saying they left Twilio's queue corrects the estimate.
    from notification.models import SmsNotification

    SmsNotification.objects.filter(delivery_status="queued").update(delivery_status="delivered")
    third = run_batch(batch_segments=100)
    assert (third.sent, third.queue_estimate) == (2, 0)


def test_oversized_message_waits_when_the_queue_has_no_room(twilio_emulator, settings):
    set_sms(settings, TWILIO_SMS_QUEUE_LIMIT=3)
    big = make_sms(body=gsm_body(4, "big"))
    report = run_batch(batch_segments=2)
    assert (report.claimed, report.wait_reason) == (0, WAIT_QUEUE)
    assert reload(big).notification.status == Status.PENDING
    assert twilio_emulator.requests() == []


def test_fluid_backlog_drains_at_the_sender_rate():
    now = timezone.now()
    # 10 segments 4 s ago at 1/s: 6 left. A later idle gap does not hide a new burst.
    assert fluid_backlog([(now - timedelta(seconds=4), 10)], now, 1.0) == 6
    assert fluid_backlog([(now - timedelta(hours=1), 500), (now, 3)], now, 1.0) == 3
    assert fluid_backlog([(now - timedelta(seconds=30), 10)], now, 1.0) == 0
    assert fluid_backlog([], now, 1.0) == 0


def test_opted_out_numbers_never_reach_twilio(twilio_emulator):
    SmsOptOut.objects.create(phone_number="+14155550111", source="inbound_stop")
    blocked = make_sms(to="+14155550111", body="blocked")
    allowed = make_sms(to="+14155550112", body="allowed")

    report = run_batch()

    assert (report.claimed, report.sent, report.skipped_opt_out) == (2, 1, 1)
    assert [m["to"] for m in twilio_emulator.requests()] == ["+14155550112"]
    blocked = reload(blocked)
    assert blocked.notification.status == Status.FAILED
    assert "opted out" in blocked.notification.status_message
    assert blocked.twilio_sid is None and blocked.attempts == 0
    assert reload(allowed).notification.status == Status.SENT


@pytest.mark.parametrize(
    ("to", "code"),
    [
        ("+15005550001", 21211),
        ("+15005550002", 21612),
        ("+15005550003", 21408),
        ("+15005550004", 21610),
        ("+15005550009", 21614),
    ],
)
def test_magic_numbers_fail_permanently_without_stopping_the_batch(twilio_emulator, to, code):
    bad = make_sms(to=to, body="bad", priority=NotificationPriorityChoices.HIGH)
    good = make_sms(to="+14155550100", body="good")

    report = run_batch()

    assert (report.sent, report.failed, report.retried, report.unknown) == (1, 1, 0, 0)
    bad = reload(bad)
    assert bad.notification.status == Status.FAILED
    assert bad.error_code == code
    assert bad.error_message  # Twilio's message, kept
    assert str(code) in bad.notification.status_message
    assert bad.next_attempt_datetime is None and bad.attempts == 1
    assert reload(good).notification.status == Status.SENT
    opt_out = SmsOptOut.objects.filter(phone_number=to).first()
    if code == 21610:
        assert opt_out is not None and opt_out.source == "twilio_21610"
        # ... so the next message to that number stops on our side.
        again = make_sms(to=to, body="again")
        assert run_batch().skipped_opt_out == 1
        assert len([r for r in twilio_emulator.requests() if r.get("to") == to]) == 1
        assert reload(again).notification.status == Status.FAILED
    else:
        assert opt_out is None


def test_sql_queries_per_batch_do_not_grow_with_batch_size(twilio_emulator):
    def queries_for(count: int) -> int:
        for i in range(count):
            make_sms(body=f"q{count}-{i}")
        with CaptureQueriesContext(connection) as captured:
            report = run_batch(batch_segments=count)
        assert report.sent == count
        return len(captured.captured_queries)

    small, large = queries_for(5), queries_for(60)
    assert small == large
    # recovery check, claim (estimate, select, 2 updates), started mark, results
    # (2 bulk updates), status events, plus BEGIN/COMMIT pairs on SQLite.
    assert small <= 16


def test_dry_run_shows_the_next_batch_and_why_the_rest_waits(twilio_emulator, capsys):
    from django.core.management import call_command

    now = timezone.now()
    make_sms(body=gsm_body(2, "urgent"), priority=NotificationPriorityChoices.HIGH)
    make_sms(body=gsm_body(2, "next"))
    make_sms(body="later", publish=now + timedelta(hours=2))
    backoff = make_sms(body="backing off")
    backoff.next_attempt_datetime = now + timedelta(minutes=10)
    backoff.save(update_fields=["next_attempt_datetime"])
    SmsOptOut.objects.create(phone_number="+14155550199", source="admin")
    make_sms(to="+14155550199", body="opted out", priority=NotificationPriorityChoices.HIGH)

    call_command("send_sms_batch", "--dry-run", "--batch-size", "3")

    out = capsys.readouterr().out
    assert "Next batch (dry run, nothing sent)" in out
    # The opted-out one (0 segments: it never reaches Twilio) and "urgent" (2).
    assert "2 message(s), 2 of 3 segments" in out
    assert "opted out: will fail, not sent" in out
    assert f"due but not in this batch: 1 ({WAIT_BUDGET})" in out
    assert "in retry backoff: 1" in out
    assert "not due yet (publish time in the future): 1" in out
    assert twilio_emulator.requests() == []
    from notification.models import Notification

    assert not Notification.objects.exclude(status=Status.PENDING).exists()


def test_send_sms_batch_prints_what_it_did(twilio_emulator, redis, capsys):
    from django.core.management import call_command

    make_sms(body="one")
    SmsOptOut.objects.create(phone_number="+14155550199", source="admin")
    make_sms(to="+14155550199", body="opted out")

    call_command("send_sms_batch")

    out = capsys.readouterr().out
    assert "Claimed 2: sent 1 (1 segments), failed 0, retry later 0, unknown 0" in out
    assert "skipped (opted out) 1" in out


def test_result_write_never_moves_a_raced_status_callback_back(twilio_emulator):
    """A callback that beat our result write (it is kept and applied by the webhook
    side as soon as the sid is stored) must not be overwritten by "queued"."""
    from notification.models import SmsNotification
    from notification.send.results import update_rows

    raced, fresh = make_sms(body="raced"), make_sms(body="fresh")
    SmsNotification.objects.filter(pk=raced.pk).update(delivery_status="delivered")

    updated = update_rows(
        SmsNotification,
        [(raced.pk, ["queued", "SM1"]), (fresh.pk, ["queued", "SM2"])],
        ["delivery_status", "twilio_sid"],
        keep_if_set=["delivery_status"],
        where_sql="t.claim_token = %s",
        where_params=[""],
    )

    assert updated == 2
    assert (reload(raced).delivery_status, reload(raced).twilio_sid) == ("delivered", "SM1")
    assert (reload(fresh).delivery_status, reload(fresh).twilio_sid) == ("queued", "SM2")


def test_result_write_stores_every_value_exactly_as_the_orm_would(twilio_emulator):
    """``update_rows`` sends values through SQL (a VALUES list on SQLite, one JSON
    document on PostgreSQL): what comes back is what went in, to the microsecond."""
    from decimal import Decimal

    from notification.models import SmsNotification
    from notification.send.results import update_rows

    first, second = make_sms(body="first"), make_sms(body="second")
    at = timezone.now().replace(microsecond=123456)
    text = 'quote\' "double" back\\slash\nnew line, ünïcødé 😀 %s %(x)s'
    fields = ["error_message", "error_code", "sent_datetime", "estimated_price", "segments"]
    rows = [
        (first.pk, [text, 30007, at, Decimal("0.00790"), 3]),
        (second.pk, ["", None, None, None, 1]),
    ]

    assert update_rows(SmsNotification, rows, fields) == 2

    one, two = reload(first), reload(second)
    assert (one.error_message, one.error_code, one.sent_datetime) == (text, 30007, at)
    assert (one.estimated_price, one.segments) == (Decimal("0.00790"), 3)
    assert (two.error_message, two.error_code, two.sent_datetime) == ("", None, None)
    assert (two.estimated_price, two.segments) == (None, 1)


def test_result_write_prepares_equal_values_of_different_types_apart(twilio_emulator):
    """Values are prepared once per distinct value: ``1`` and ``True`` compare equal,
    but a text column stores them as "1" and "True"."""
    from notification.models import SmsNotification
    from notification.send.results import update_rows

    rows = [make_sms(body=f"m{i}") for i in range(4)]
    values = [1, True, 1, "same"]

    update_rows(
        SmsNotification, [(r.pk, [v]) for r, v in zip(rows, values, strict=True)], ["error_message"]
    )

    assert [reload(r).error_message for r in rows] == ["1", "True", "1", "same"]


def test_rows_that_left_still_count_in_the_fluid_formula(twilio_emulator, settings):
    """FIFO: the messages that left used the drain; the rest have not drained with them."""
    set_sms(settings, TWILIO_SMS_RATE=2.0)
    for i in range(4):
        make_sms(body=gsm_body(2, f"m{i}"))
    assert run_batch(batch_segments=100).segments == 8
    from notification.models import SmsNotification

    first_two = SmsNotification.objects.order_by("sent_datetime", "pk")[:2]
    SmsNotification.objects.filter(pk__in=[sms.pk for sms in first_two]).update(
        delivery_status="sent"
    )  # their callbacks: they left Twilio's queue
    two_seconds_on = timezone.now() + timedelta(seconds=2)
    # 8 handed off, 4 drained in 2 s at 2/s: 4 wait, as the callbacks also say. Feeding
    # only the still-queued rows to the formula said 0 (4 segments, 2 s, 2/s).
    assert estimate_queue(twilio_emulator.from_number, two_seconds_on) == 4


def test_the_estimate_is_the_smaller_bound_and_never_below_what_is_in_flight():
    t0 = timezone.now()
    one_second_on = t0 + timedelta(seconds=1)
    left = [(t0, 1, "sent")] * 20
    queued = [(t0, 1, "queued")] * 20
    # Callbacks on, 40 handed off at 20/s, 20 reported gone after 1 s: 20 wait.
    assert combine(left + queued, one_second_on, 20.0) == 20
    # Callbacks off: every row still looks queued; the formula bounds it.
    assert combine(queued + queued, one_second_on, 20.0) == 20
    # Callbacks faster than the formula (a quicker drain than configured): they win.
    assert combine([(t0, 1, "sent")] * 30 + [(t0, 1, "queued")] * 10, t0, 20.0) == 10
    # Callbacks slower: the formula wins.
    assert combine(queued + queued, t0 + timedelta(seconds=1.5), 20.0) == 10
    # Claims in flight are entering the queue whatever the formula says about their age.
    assert combine([(t0 - timedelta(seconds=10), 5, "")], t0, 20.0) == 5
    assert combine([], t0, 20.0) == 0


def test_the_database_computes_exactly_what_combine_computes(settings):
    """``estimate_queue`` sums in SQL; ``combine`` is the rule. Same rows, same number,
    to the microsecond and the rounding (whole-second ages hit the rounding edge)."""
    import random

    from notification.models import SmsNotification

    set_sms(settings, TWILIO_SMS_RATE=7.0, TWILIO_SMS_VALIDITY_PERIOD=600)
    sender, rng = "+15005550006", random.Random(21)
    now = timezone.now().replace(microsecond=250000)
    create_due_sms(120)
    statuses = ["", "queued", "accepted", "sending", "sent", "delivered", "undelivered"]
    handoffs = []
    for pk in SmsNotification.objects.values_list("pk", flat=True):
        age = timedelta(seconds=rng.choice([0, 1, 2, 3, 30]), microseconds=rng.randrange(3) * 7)
        row = {"sender": sender, "segments": rng.randint(1, 4)}
        row["delivery_status"] = status = rng.choice(statuses)
        at = now - age
        row["sent_datetime" if status else "claimed_datetime"] = at  # "": in flight
        if rng.random() < 0.1:  # outside the window: counts for neither
            row["sent_datetime"] = row["claimed_datetime"] = now - timedelta(seconds=601)
        else:
            handoffs.append((at, row["segments"], status))
        SmsNotification.objects.filter(pk=pk).update(**row)  # save() would recount segments
    SmsNotification.objects.filter(pk=make_sms().pk).update(
        sender="+15005550007", segments=9, sent_datetime=now, delivery_status="queued"
    )  # another sender: never counted
    for rate in (7.0, 0.5, 40.0):
        set_sms(settings, TWILIO_SMS_RATE=rate)
        for moment in (now, now + timedelta(seconds=1), now + timedelta(seconds=2.5)):
            assert estimate_queue(sender, moment) == combine(handoffs, moment, rate), (rate, moment)
    assert estimate_queue("+15005550099", now) == 0
