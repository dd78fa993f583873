"""Writing a batch's results through a lost database connection (``result_retry``):
a real terminated connection on PostgreSQL, and an unreachable database past
``SMS_RESULT_WRITE_TIMEOUT`` (injected at the result write with Django's
``execute_wrapper``) on both databases."""

from contextlib import suppress
from datetime import timedelta

import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from notification.connections import ResultsNotWritten
from notification.models import NotificationStatusChoices, SmsNotification
from notification.send.batch import UNKNOWN_DB_UNREACHABLE, recover_stale_claims, run_batch
from notification.send.dispatch import UNWRITTEN_MEMBER, dispatch_key
from tests.support.sending_helpers import make_sms, reload
from tests.support.settings_helpers import set_sms

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("no_status_callbacks"),
]

Status = NotificationStatusChoices


def is_result_write(sql: str) -> bool:
    """``bulk_write.update_rows``: a VALUES list (SQLite) or one JSON document (PostgreSQL)."""
    text = sql.lstrip().upper()
    return text.startswith("UPDATE") and ("FROM (VALUES" in text or "JSON_TO_RECORDSET(" in text)


@pytest.mark.postgres
def test_a_terminated_connection_at_the_result_write_is_reopened(twilio_emulator, redis, caplog):
    """The worker's own backend is killed right as the write begins: it reconnects,
    writes Twilio's answers once, and logs the loss once."""
    rows = [make_sms(body=f"answered {i}") for i in range(3)]
    cut = []

    def terminate_first_write(execute, sql, params, many, context):
        if is_result_write(sql) and not cut:
            cut.append(sql)
            # A second cursor: the same backend, which dies answering it.
            with connection.cursor() as cursor, suppress(OperationalError):
                cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(terminate_first_write):
        report = run_batch()

    assert cut and report.sent == 3 and report.unknown == 0
    sids = {r["sid"] for r in twilio_emulator.requests()}
    assert len(twilio_emulator.requests()) == 3
    for sms in rows:
        fresh = reload(sms)
        assert fresh.notification.status == Status.SENT
        assert fresh.twilio_sid in sids and fresh.attempts == 1  # counted once
    assert caplog.text.count("db=lost") == 1 and "db=recovered" in caplog.text


def test_past_the_write_timeout_recovery_says_the_database_was_unreachable(
    twilio_emulator, redis, settings
):
    set_sms(settings, SMS_RESULT_WRITE_TIMEOUT=0.5)
    sms = make_sms(body="answered, not written")

    def unreachable(execute, sql, params, many, context):
        if is_result_write(sql):
            raise OperationalError("could not connect to server: Connection refused")
        return execute(sql, params, many, context)

    with connection.execute_wrapper(unreachable), pytest.raises(ResultsNotWritten):
        run_batch()

    stuck = reload(sms)
    assert stuck.notification.status == Status.PROCESSING  # still claimed: for recovery
    token = stuck.claim_token
    assert redis.sismember(dispatch_key(token), UNWRITTEN_MEMBER)
    assert len(twilio_emulator.requests()) == 1  # Twilio had it

    SmsNotification.objects.filter(pk=sms.pk).update(
        claimed_datetime=timezone.now() - timedelta(hours=1)
    )
    counts = recover_stale_claims(timezone.now(), claim_timeout_seconds=60)

    assert counts.unknown == 1
    note = reload(sms).notification
    assert note.status == Status.UNKNOWN
    assert note.status_message == UNKNOWN_DB_UNREACHABLE
    assert "database was unreachable" in note.status_message


@pytest.mark.postgres
def test_a_paced_run_whose_connection_was_cut_reconnects_at_the_next_top_up(
    twilio_emulator, redis, caplog
):
    """The connection dies while the run waits (before any claim): the run goes on."""
    import time

    from notification.send.run import run_paced

    sms = make_sms(body="after the cut")
    with connection.cursor() as cursor, suppress(OperationalError):
        cursor.execute("SELECT pg_terminate_backend(pg_backend_pid())")

    report = run_paced(deadline=time.monotonic() + 10)

    assert report.db_errors == 1 and report.sent == 1
    assert reload(sms).notification.status == Status.SENT
    assert caplog.text.count("sms_run db=lost") == 1
