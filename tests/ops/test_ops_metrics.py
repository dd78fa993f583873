"""``/metrics`` in one process: the token rule, the database gauges and their cache, and the
counters recorded where things happen (real Twilio SDK against the emulator, signed
callbacks, a real channel layer)."""

import asyncio
import time
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from devstack.ports import free_port
from notification.guardrails import costs as pricing
from notification.guardrails import costs as spend
from notification.jobs.reconcile import LAST_RECONCILE_KEY, LAST_RUN_KEY, reconcile_sms
from notification.jobs.sms import send_sms_batch
from notification.models import (
    Notification,
    NotificationCategoryChoices,
    NotificationPriorityChoices,
    NotificationStatusChoices,
    SmsNotification,
)
from notification.ops import metrics as collector
from notification.ops import probes
from notification.reconciliation.passes import reconcile
from notification.send.batch import run_batch
from notification.send.claim import due_sms
from notification.status.events import status_listeners
from tests.support.sending_helpers import make_sms, reload
from tests.support.settings_helpers import set_sms
from tests.support.waiting import wait_until
from tests.support.webhook_helpers import (
    STATUS_PATH,
    post_signed,
    queued_sms,
    short_lived_db_connections,
    status_form,
    use_test_signing,
)

pytestmark = pytest.mark.django_db(transaction=True)

TOKEN = "test-metrics-token-1234567890"
DECISIONS = ("updated", "adopted", "unchanged", "unavailable")


@pytest.fixture(autouse=True)
def metrics_on(settings, redis):
    set_sms(settings, METRICS_TOKEN=TOKEN)
    set_sms(settings, METRICS_CACHE_SECONDS=0)
    collector.clear_cache()
    yield settings
    collector.clear_cache()
    probes.clear_cache()
    probes.close_database_connection()  # sms_ready ran the readiness checks


def scrape(client: Client | None = None) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} from an authorised GET /metrics."""
    response = (client or Client()).get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content[:200]
    assert response["Content-Type"].startswith("text/plain; version=0.0.4")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_metrics_are_off_without_a_token(settings):
    set_sms(settings, METRICS_TOKEN="")
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [None, "", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Basic {TOKEN}", TOKEN, "Bearer"],
)
def test_metrics_refuse_a_missing_or_wrong_token(authorization):
    extra = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = Client().get("/metrics", **extra)
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert b"sms_" not in response.content


def test_database_gauges_count_rows_by_status_and_the_due_backlog():
    now = timezone.now()
    make_sms(publish=now - timedelta(minutes=10))  # due, normal: the oldest
    make_sms(publish=now - timedelta(minutes=1))
    make_sms(priority=NotificationPriorityChoices.HIGH, publish=now - timedelta(seconds=30))
    make_sms(publish=now + timedelta(hours=1))  # not due yet
    backoff = make_sms(publish=now - timedelta(hours=2))  # in retry backoff: not due
    SmsNotification.objects.filter(pk=backoff.pk).update(
        next_attempt_datetime=now + timedelta(minutes=5)
    )
    delivered = queued_sms("SM" + "d" * 32)
    SmsNotification.objects.filter(pk=delivered.pk).update(delivery_status="delivered")
    unknown = make_sms(publish=now - timedelta(hours=3))
    Notification.objects.filter(pk=unknown.notification_id).update(
        status=NotificationStatusChoices.UNKNOWN, updated_datetime=now - timedelta(minutes=20)
    )

    samples = scrape()

    assert value(samples, "sms_messages", delivery_status="not_submitted") == 6
    assert value(samples, "sms_messages", delivery_status="delivered") == 1
    assert value(samples, "sms_messages", delivery_status="failed") == 0
    assert value(samples, "sms_notifications", status="pending") == 5
    assert value(samples, "sms_notifications", status="unknown") == 1
    assert value(samples, "sms_notifications", status="sent") == 1
    assert value(samples, "sms_pending_messages", priority="normal") == 2
    assert value(samples, "sms_pending_messages", priority="high") == 1
    assert value(samples, "sms_pending_messages", priority="low") == 0
    # The oldest published pending SMS is the one waiting for its retry (2 h).
    assert 7195 <= value(samples, "sms_oldest_pending_age_seconds") <= 7300
    assert value(samples, "sms_retry_waiting_messages") == 1
    # The send job's own rule agrees.
    assert (
        sum(value(samples, "sms_pending_messages", priority=p) for p in ("low", "normal", "high"))
        == due_sms(timezone.now()).count()
    )
    assert 1195 <= value(samples, "sms_oldest_unknown_age_seconds") <= 1300
    assert value(samples, "sms_metrics_source_up", source="database") == 1
    assert value(samples, "sms_send_interval_seconds") == 300
    assert value(samples, "sms_ready", check="database") == 1
    assert value(samples, "sms_ready", check="redis_queue") == 1
    # django-rq's collector, on the same endpoint.
    assert value(samples, "rq_jobs", queue="sms", status="queued") is not None


def test_database_gauges_are_cached_for_metrics_cache_seconds(settings, django_assert_num_queries):
    set_sms(settings, METRICS_CACHE_SECONDS=60)
    make_sms()
    assert value(scrape(), "sms_pending_messages", priority="normal") == 1
    make_sms()
    with django_assert_num_queries(0):
        cached = scrape()
    assert value(cached, "sms_pending_messages", priority="normal") == 1
    collector.clear_cache()
    assert value(scrape(), "sms_pending_messages", priority="normal") == 2


def test_a_redis_outage_leaves_the_database_gauges_and_reports_the_source(settings):
    port = free_port("127.0.0.1")
    saved = {name: queue["URL"] for name, queue in settings.RQ_QUEUES.items()}
    try:
        for queue in settings.RQ_QUEUES.values():
            queue["URL"] = f"redis://127.0.0.1:{port}/0"
        samples = scrape()
    finally:
        for name, url in saved.items():
            settings.RQ_QUEUES[name]["URL"] = url
    assert value(samples, "sms_metrics_source_up", source="redis") == 0
    assert value(samples, "sms_metrics_source_up", source="rq") == 0
    assert value(samples, "sms_metrics_source_up", source="database") == 1
    assert value(samples, "sms_messages", delivery_status="queued") == 0


def test_a_hung_redis_does_not_hold_the_scrape(settings):
    """A port that accepts connections and never answers: the scrape still answers promptly."""
    import socket

    set_sms(settings, READYZ_TIMEOUT=0.5)
    probes.clear_cache()
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    saved = {name: queue["URL"] for name, queue in settings.RQ_QUEUES.items()}
    try:
        for queue in settings.RQ_QUEUES.values():
            queue["URL"] = f"redis://127.0.0.1:{listener.getsockname()[1]}/0"
        started = time.monotonic()
        samples = scrape()
        elapsed = time.monotonic() - started
    finally:
        for name, url in saved.items():
            settings.RQ_QUEUES[name]["URL"] = url
        listener.close()
    assert elapsed < 5, elapsed
    assert value(samples, "sms_metrics_source_up", source="rq") == 0
    assert value(samples, "sms_metrics_source_up", source="database") == 1
    assert value(samples, "sms_ready", check="redis_queue") == 0


def test_the_last_run_time_comes_from_the_run_itself(settings, redis, twilio_emulator):
    set_sms(settings, TWILIO_SMS_INTERVAL=2)  # a paced run lasts one interval less a margin
    assert value(scrape(), "sms_last_run_timestamp_seconds") is None
    before = time.time()
    send_sms_batch()
    recorded = float(redis.get(LAST_RUN_KEY))
    assert before <= recorded <= time.time()
    assert value(scrape(), "sms_last_run_timestamp_seconds") == pytest.approx(recorded)


@pytest.mark.usefixtures("no_status_callbacks")
def test_twilio_requests_are_counted_by_outcome_and_code(twilio_emulator, settings):
    twilio_emulator.inject_faults(
        [
            {"kind": "http_400", "error_code": 30004, "count": 1, "to": "+14155550101"},
            {"kind": "drop", "count": 1, "to": "+14155550102"},
        ]
    )
    before = {
        "accepted": counter("sms_twilio_requests_total", outcome="accepted", code=""),
        "rejected": counter("sms_twilio_requests_total", outcome="rejected", code="30004"),
        "ambiguous": counter("sms_twilio_requests_total", outcome="ambiguous", code=""),
        "transport": counter("sms_twilio_requests_total", outcome="transport_error", code=""),
        "observed": counter("sms_twilio_request_duration_seconds_count"),
    }
    make_sms(to="+14155550100")
    make_sms(to="+14155550101")
    make_sms(to="+14155550102")
    run_batch()
    # Twilio unreachable (connection refused): nothing left, a transport error.
    set_sms(settings, TWILIO_BASE_URL=f"http://127.0.0.1:{free_port('127.0.0.1')}")
    make_sms(to="+14155550103")
    run_batch()

    assert counter("sms_twilio_requests_total", outcome="accepted", code="") == (
        before["accepted"] + 1
    )
    assert counter("sms_twilio_requests_total", outcome="rejected", code="30004") == (
        before["rejected"] + 1
    )
    assert counter("sms_twilio_requests_total", outcome="ambiguous", code="") == (
        before["ambiguous"] + 1
    )
    assert counter("sms_twilio_requests_total", outcome="transport_error", code="") == (
        before["transport"] + 1
    )
    assert counter("sms_twilio_request_duration_seconds_count") == before["observed"] + 4
    # And the exposition carries them.
    assert value(scrape(), "sms_twilio_requests_total", outcome="rejected", code="30004") >= 1


def test_status_callbacks_are_counted_by_result(settings):
    use_test_signing(settings)
    sid = "SM" + "c" * 32
    queued_sms(sid)
    results = ("applied", "ignored", "unknown_message", "refused")
    before = {r: counter("sms_status_callbacks_total", result=r) for r in results}
    client = Client()
    with short_lived_db_connections():
        assert post_signed(client, STATUS_PATH, status_form(sid, "delivered")).status_code == 200
        assert post_signed(client, STATUS_PATH, status_form(sid, "delivered")).status_code == 200
        post_signed(client, STATUS_PATH, status_form("SM" + "e" * 32, "sent"))
        forged = post_signed(client, STATUS_PATH, status_form(sid, "sent"), signature="bad")
        assert forged.status_code == 403
    after = {r: counter("sms_status_callbacks_total", result=r) for r in results}
    assert {r: after[r] - before[r] for r in results} == {
        "applied": 1,
        "ignored": 1,
        "unknown_message": 1,
        "refused": 1,
    }


def test_open_subscriptions_are_a_live_gauge(redis):
    base = counter("sms_subscribers")

    async def watch() -> tuple[float, float]:
        listeners = status_listeners()
        async with (
            listeners.listen(["metrics-test-a"]),
            listeners.listen(["metrics-test-b"]),
            listeners.listen(["metrics-test-session"], subscription=False),  # a socket's guard
        ):
            during = counter("sms_subscribers")
        return during, counter("sms_subscribers")

    during, after = asyncio.run(watch())
    assert during == base + 2
    assert after == base


# --- guardrails and reconciliation (issue 23's last bullet) -------------------------


def _window_around_now() -> str:
    """A quiet-hours window (UTC) from an hour ago to two hours ahead: ``now`` is inside."""
    now = timezone.now()
    start, end = now - timedelta(hours=1), now + timedelta(hours=2)
    return f"{start:%H:%M}-{end:%H:%M}"


@pytest.mark.usefixtures("no_status_callbacks")
def test_held_messages_by_reason_and_the_spend_of_the_day_and_month(settings):
    set_sms(settings, SMS_QUIET_HOURS=_window_around_now())
    set_sms(settings, SMS_PRICE_TABLE="*=0.05")
    set_sms(settings, SMS_DAILY_SPEND_LIMIT="0.08")  # the first 0.05 fits, the second does not
    quiet = make_sms(to="+14155550101", body="Sale!")
    Notification.objects.filter(pk=quiet.notification_id).update(
        category=NotificationCategoryChoices.MARKETING
    )
    SmsNotification.objects.filter(pk=quiet.pk).update(recipient_time_zone="UTC")
    make_sms(to="+14155550102", body="receipt one")
    make_sms(to="+14155550103", body="receipt two")

    report = run_batch()
    assert (report.sent, report.held) == (1, 2)
    # The monthly limit now stops the next one (the daily one is off).
    set_sms(settings, SMS_DAILY_SPEND_LIMIT=0)
    set_sms(settings, SMS_MONTHLY_SPEND_LIMIT="0.09")
    make_sms(to="+14155550104", body="receipt three")
    report = run_batch()
    assert (report.sent, report.held) == (0, 1)
    samples = scrape()

    assert value(samples, "sms_held_messages", reason="quiet_hours") == 1
    assert value(samples, "sms_held_messages", reason="daily_spend_limit") == 1
    assert value(samples, "sms_held_messages", reason="monthly_spend_limit") == 1
    assert value(samples, "sms_held_messages", reason="price_unknown") == 0
    # Held rows wait like a retry: in the backoff figure, not in the due backlog.
    assert value(samples, "sms_retry_waiting_messages") == 3
    assert value(samples, "sms_pending_messages", priority="normal") == 0
    assert value(samples, "sms_spend", period="day", unit="USD") == pytest.approx(0.05)
    assert value(samples, "sms_spend", period="month", unit="USD") == pytest.approx(0.05)
    assert value(samples, "sms_spend_limit", period="day") == 0
    assert value(samples, "sms_spend_limit", period="month") == pytest.approx(0.09)
    # The same figure the claim's limit check reads.
    periods = spend.current_periods(timezone.now())
    assert [(p.name, float(p.spent)) for p in periods] == [("monthly", pytest.approx(0.05))]


def test_messages_held_for_an_unknown_price_have_their_own_reason(no_status_callbacks, settings):
    set_sms(settings, SMS_MONTHLY_SPEND_LIMIT=1)
    no_status_callbacks.set_prices({})  # the Pricing API knows no price: the limit cannot be kept
    pricing.clear_cache()
    make_sms(to="+14155550105", body="receipt")

    assert (run_batch().held, value(scrape(), "sms_held_messages", reason="price_unknown")) == (
        1,
        1,
    )
    pricing.clear_cache()


def test_spend_counts_only_what_reached_or_may_reach_twilio(settings):
    """Priced rows that went back to pending never left: not spent (spend.counted_spend)."""
    now = timezone.now()
    sent = queued_sms("SM" + "e" * 32)
    returned = make_sms()
    last_month = queued_sms("SM" + "f" * 32)
    SmsNotification.objects.filter(pk=sent.pk).update(estimated_price="0.25", priced_datetime=now)
    SmsNotification.objects.filter(pk=returned.pk).update(
        estimated_price="0.50", priced_datetime=now
    )
    SmsNotification.objects.filter(pk=last_month.pk).update(
        estimated_price="1.00", priced_datetime=now - timedelta(days=40)
    )
    set_sms(settings, SMS_PRICE_UNIT="EUR")

    samples = scrape()

    assert value(samples, "sms_spend", period="day", unit="EUR") == pytest.approx(0.25)
    assert value(samples, "sms_spend", period="month", unit="EUR") == pytest.approx(0.25)
    assert value(samples, "sms_spend_limit", period="day") == 0  # off


def test_reconciliation_decisions_and_the_last_pass_are_counted(
    no_status_callbacks, settings, redis
):
    emulator = no_status_callbacks
    set_sms(settings, SMS_RECONCILE_AFTER=0)
    final = make_sms(to="+14155550111", body="receipt")
    lost = make_sms(to="+14155550112", body="answered, then lost")
    assert run_batch().sent == 2
    wait_until(lambda: all(m["status"] == "delivered" for m in emulator.messages()) or None, 15)
    Notification.objects.filter(pk=lost.notification_id).update(
        status=NotificationStatusChoices.UNKNOWN
    )
    before = {d: counter("sms_reconcile_decisions_total", decision=d) for d in DECISIONS}
    assert value(scrape(), "sms_reconcile_last_pass_timestamp_seconds") is None

    reconcile(dry_run=True)  # decides nothing: not counted
    started = time.time()
    result = reconcile_sms()

    assert (result["updated"], result["adopted"]) == (1, 1)
    after = {d: counter("sms_reconcile_decisions_total", decision=d) for d in DECISIONS}
    assert {d: after[d] - before[d] for d in DECISIONS} == {
        "updated": 1,
        "adopted": 1,
        "unchanged": 0,
        "unavailable": 0,
    }
    assert reload(final).delivery_status == "delivered"
    recorded = float(redis.get(LAST_RECONCILE_KEY))
    assert started <= recorded <= time.time()
    assert value(scrape(), "sms_reconcile_last_pass_timestamp_seconds") == pytest.approx(recorded)


def test_a_pass_twilio_cannot_answer_counts_its_rows_unavailable(no_status_callbacks, settings):
    sms = make_sms(to="+14155550113", body="answered, then lost")
    assert run_batch().sent == 1
    Notification.objects.filter(pk=sms.notification_id).update(
        status=NotificationStatusChoices.UNKNOWN
    )
    set_sms(settings, TWILIO_BASE_URL=f"http://127.0.0.1:{free_port()}")  # nobody listens there
    before = counter("sms_reconcile_decisions_total", decision="unavailable")

    assert reconcile(now=timezone.now() + timedelta(hours=1)).unavailable == 1

    assert counter("sms_reconcile_decisions_total", decision="unavailable") == before + 1
