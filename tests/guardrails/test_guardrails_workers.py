"""Spend limits with four worker processes on PostgreSQL: no overshoot.

The bound (README "Compliance and cost", ``notification.guardrails.costs``): the
estimated spend of a period never passes its limit, whatever the number of
workers, because claims are serialised while a limit is on and in-flight rows
count. Here 400 due messages at 0.011 each (the emulator's dearer carrier) meet
a daily limit of 2.00: exactly 181 may go (1.991), and four workers claiming at
the same moment send exactly that many requests, each message once.
"""

import collections
from decimal import Decimal

import pytest
from django.db.models import Sum

from notification.models import NotificationStatusChoices, SmsNotification
from tests.send.test_sending_workers import claims_held_back, start_worker, waiting_claims
from tests.support.sending_helpers import create_due_sms
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_status_callbacks"),
]


@pytest.mark.postgres
def test_four_workers_never_pass_the_daily_spend_limit(twilio_emulator, subprocess_env):
    twilio_emulator.set_prices({"US": {"local": "0.0100"}})
    create_due_sms(400)
    env = {
        **subprocess_env,
        **twilio_emulator.env,
        "TWILIO_SMS_BATCH_SIZE": "50",
        "SMS_DAILY_SPEND_LIMIT": "2.00",
    }

    with claims_held_back():
        workers = [start_worker(env) for _ in range(4)]
        wait_until(lambda: waiting_claims() == 4, timeout=60, what="four workers at the claim")
    outputs = [worker.communicate(timeout=120) for worker in workers]

    for worker, (_, stderr) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, stderr[-3000:]
    bodies = collections.Counter(r["body"] for r in twilio_emulator.requests())
    assert sum(bodies.values()) == 181  # floor(2.00 / 0.011): not one more
    assert set(bodies.values()) == {1}
    sent = SmsNotification.objects.filter(notification__status=NotificationStatusChoices.SENT)
    assert sent.count() == 181
    spent = sent.aggregate(total=Sum("estimated_price"))["total"]
    assert spent == Decimal("1.99100") and spent <= Decimal("2.00")
    held = SmsNotification.objects.filter(
        notification__status=NotificationStatusChoices.PENDING,
        notification__status_message__contains="daily spend limit",
    )
    assert held.exists()
    assert not held.filter(attempts__gt=0).exists()
    # One log line for the limit, whichever worker saw it start holding.
    logs = "".join(stderr for _, stderr in outputs)
    assert logs.count("sms_limit_reached limit=daily") == 1
