"""Idempotency keys under retries that overlap, and on the way to Twilio.

A client that gave up waiting retries while its first request is still running: the
requests race. Exactly one notification may come out, and so exactly one SMS.
"""

import logging
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import django_rq
import pytest
from django.db import connection, transaction

from notification.create.creation import SmsNotificationRequest, create_sms_notification
from notification.jobs.schedule import SMS_BATCH_FUNC
from notification.models import IdempotencyKey, Notification, SmsNotification
from tests.support.fixtures_graphql import GraphQLClient
from tests.support.fixtures_services import REPO_ROOT

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.db_vendor]

CREATE = """
mutation Create($input: CreateSmsNotificationInput!) {
  createSmsNotification(input: $input) {
    notification { id title status sms { toPhoneNumber deliveryStatus } }
    replayed
    errors { field code }
  }
}
"""
KEY = "retry-me-1b9e"
INPUT = {
    "title": "Table booked",
    "body": "See you at 8 pm.",
    "toPhoneNumber": "+14155550100",
    "idempotencyKey": KEY,
}
CONCURRENT_REQUESTS = 8


def test_concurrent_requests_with_one_key_create_exactly_one(graphql, staff_user):
    """Eight copies of one request at once (a barrier releases them together): one row,
    and every answer names it. On PostgreSQL the unique constraint turns the losers'
    inserts into replays; on SQLite the writers run one after the other."""
    clients = [graphql(staff_user) for _ in range(CONCURRENT_REQUESTS)]
    for client in clients:
        client.csrf_token()  # fetched up front: the barrier then releases only the creates
    barrier = threading.Barrier(CONCURRENT_REQUESTS)

    def send(client: GraphQLClient) -> dict:
        try:
            barrier.wait(30)
            return client.data(CREATE, {"input": INPUT})["createSmsNotification"]
        finally:
            connection.close()

    with ThreadPoolExecutor(CONCURRENT_REQUESTS) as pool:
        answers = list(pool.map(send, clients, timeout=60))

    assert all(answer["errors"] == [] for answer in answers)
    notifications = [answer["notification"] for answer in answers]
    assert notifications == [notifications[0]] * CONCURRENT_REQUESTS
    assert sorted(answer["replayed"] for answer in answers) == [False] + [True] * 7
    assert Notification.objects.count() == 1 and SmsNotification.objects.count() == 1
    assert IdempotencyKey.objects.count() == 1


CREATE_MANY = """
mutation CreateMany($input: [CreateSmsNotificationInput!]!) {
  createSmsNotifications(input: $input) { notifications { id title } errors { code } }
}
"""


def test_concurrent_bulk_retries_sharing_keys_in_any_order(graphql, staff_user):
    """Bulk requests holding the same two keys in opposite orders, all at once: no
    deadlock between their key inserts, and each key names one notification."""
    items = {key: {**INPUT, "title": key, "idempotencyKey": key} for key in ("a", "b")}
    orders = [["a", "b"], ["b", "a"]] * 2
    clients = [graphql(staff_user) for _ in orders]
    for client in clients:
        client.csrf_token()
    barrier = threading.Barrier(len(orders))

    def send(client: GraphQLClient, order: list[str]) -> dict:
        try:
            barrier.wait(30)
            variables = {"input": [items[key] for key in order]}
            return client.data(CREATE_MANY, variables)["createSmsNotifications"]
        finally:
            connection.close()

    with ThreadPoolExecutor(len(orders)) as pool:
        answers = list(pool.map(send, clients, orders, timeout=60))

    assert [answer["errors"] for answer in answers] == [[]] * len(orders)
    ids = {n["title"]: n["id"] for answer in answers for n in answer["notifications"]}
    for answer in answers:
        assert all(ids[n["title"]] == n["id"] for n in answer["notifications"])
    assert Notification.objects.count() == 2 and IdempotencyKey.objects.count() == 2


@pytest.mark.postgres
def test_the_unique_constraint_decides_a_race_the_lookup_cannot_see(staff_user, caplog):
    """The second request looks the key up while the first has inserted it but not yet
    committed: it sees nothing, creates, and its key INSERT waits on the unique index.
    When the first commits, that INSERT fails, its transaction (with its notification)
    is rolled back, and it replays the first request's notification."""
    caplog.set_level(logging.INFO, logger="notification.create.idempotency")
    request = SmsNotificationRequest(
        title="Table booked",
        body="See you at 8 pm.",
        to_phone_number="+14155550100",
        idempotency_key=KEY,
    )
    inserted = threading.Event()
    release = threading.Event()
    first: list = []
    second: list = []

    def create_and_hold_the_commit() -> None:
        try:
            with transaction.atomic():
                first.append(create_sms_notification(request, caller_id=staff_user.pk))
                inserted.set()
                release.wait(30)
        except BaseException as exc:
            first.append(exc)
            inserted.set()
        finally:
            connection.close()

    def retry() -> None:
        try:
            second.append(create_sms_notification(request, caller_id=staff_user.pk))
        except BaseException as exc:
            second.append(exc)
        finally:
            connection.close()

    holder = threading.Thread(target=create_and_hold_the_commit)
    holder.start()
    assert inserted.wait(30)
    retrier = threading.Thread(target=retry)
    retrier.start()
    retrier.join(0.5)
    assert retrier.is_alive(), "the retry's key INSERT should wait for the first transaction"
    release.set()
    holder.join(30)
    retrier.join(30)

    assert not first[0].replayed
    assert second[0].replayed
    assert second[0].notification.pk == first[0].notification.pk
    assert list(Notification.objects.values_list("pk", flat=True)) == [first[0].notification.pk]
    assert SmsNotification.objects.count() == 1
    assert "idempotency key taken by a concurrent request" in caplog.text


@pytest.mark.usefixtures("no_status_callbacks")
def test_a_replayed_create_sends_exactly_one_sms(
    graphql, staff_user, twilio_emulator, subprocess_env, redis
):
    """Create, retry, let a real RQ worker run the scheduled batch against the emulator,
    retry again: one message reached Twilio, and the last retry shows it as sent."""
    gql = graphql(staff_user)
    first = gql.data(CREATE, {"input": INPUT})["createSmsNotification"]
    assert gql.data(CREATE, {"input": INPUT})["createSmsNotification"]["replayed"] is True

    django_rq.get_queue("sms").enqueue(SMS_BATCH_FUNC)
    worker = subprocess.run(
        [sys.executable, "manage.py", "sms_worker", "--burst"],
        cwd=REPO_ROOT,
        env={**subprocess_env, **twilio_emulator.env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worker.returncode == 0, worker.stderr[-3000:]
    late_retry = gql.data(CREATE, {"input": INPUT})["createSmsNotification"]

    assert [(m["to"], m["body"]) for m in twilio_emulator.messages()] == [
        ("+14155550100", "See you at 8 pm.")
    ]
    assert late_retry["replayed"] is True
    assert late_retry["notification"]["id"] == first["notification"]["id"]
    assert late_retry["notification"]["status"] == "SENT"
    assert late_retry["notification"]["sms"]["deliveryStatus"] == "QUEUED"
