"""``manage.py send_sms_batch --until-empty`` drains a backlog on either database.

The multi-worker test of the same command runs on PostgreSQL only; this one runs
on both passes, so SQLite (``make run``'s default database) is covered too.
"""

import pytest
from django.core.management import call_command

from notification.models import NotificationStatusChoices, SmsNotification
from tests.support.sending_helpers import create_due_sms

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_status_callbacks", "redis"),
]


def test_until_empty_sends_the_whole_backlog_once(twilio_emulator, capsys):
    create_due_sms(250)

    call_command("send_sms_batch", "--until-empty", "--batch-size", "100")

    out = capsys.readouterr().out
    claimed = [line.split(":")[0] for line in out.splitlines() if line.startswith("Claimed ")]
    assert claimed == ["Claimed 100", "Claimed 100", "Claimed 50", "Claimed 0"]
    bodies = [m["body"] for m in twilio_emulator.messages()]
    assert len(bodies) == 250 and len(set(bodies)) == 250
    assert set(SmsNotification.objects.values_list("notification__status", flat=True)) == {
        NotificationStatusChoices.SENT
    }
