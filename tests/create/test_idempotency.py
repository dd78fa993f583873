"""Idempotency keys on createSmsNotification(s): replay, conflict, scope, bulk, expiry.

Concurrency and the path to the emulator are in ``test_idempotency_concurrency.py``.
"""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notification.create.creation import SmsNotificationRequest, create_sms_notification
from notification.create.idempotency import forget_expired_keys
from notification.jobs.idempotency import forget_expired_idempotency_keys
from notification.models import IdempotencyKey, Notification, SmsNotification, SmsOptOut
from tests.support.fixtures_graphql import NOTIFICATION_PERMISSIONS
from tests.support.settings_helpers import set_sms

pytestmark = pytest.mark.db_vendor

CREATE = """
mutation Create($input: CreateSmsNotificationInput!) {
  createSmsNotification(input: $input) {
    notification { id title body status sms { toPhoneNumber deliveryStatus twilioSid optedOut } }
    replayed
    errors { field message code index }
    warnings { field message code index }
  }
}
"""

CREATE_MANY = """
mutation CreateMany($input: [CreateSmsNotificationInput!]!) {
  createSmsNotifications(input: $input) {
    notifications { id title }
    errors { field code index }
    warnings { field code index }
  }
}
"""

KEY = "checkout-7f3a9c2e"


def order_input(**overrides):
    return {
        "title": "Your order shipped",
        "body": "Order 42 is on its way.",
        "toPhoneNumber": "+1 415 555 0100",
        "idempotencyKey": KEY,
        **overrides,
    }


def create(gql, **overrides) -> dict:
    return gql.data(CREATE, {"input": order_input(**overrides)})["createSmsNotification"]


def codes(payload: dict, kind: str = "errors") -> list[tuple]:
    return [(e["field"], e["code"], e["index"]) for e in payload[kind]]


def test_a_retry_with_the_same_key_returns_the_first_notification(graphql, staff_user):
    gql = graphql(staff_user)
    first = create(gql)
    retry = create(gql)

    assert first["replayed"] is False and first["warnings"] == []
    assert retry["replayed"] is True
    assert retry["notification"] == first["notification"]
    assert codes(retry, "warnings") == [("idempotencyKey", "replayed", None)]
    assert Notification.objects.count() == 1 and SmsNotification.objects.count() == 1
    assert IdempotencyKey.objects.get().notification_id == int(first["notification"]["id"])


def test_same_input_is_judged_on_what_would_be_stored(graphql, staff_user):
    """Another spelling of the same number, blanks around the title, the same instant in
    another zone: the same notification would be stored, so it is the same request."""
    gql = graphql(staff_user)
    first = create(gql, publishDatetime="2030-01-01T09:00:00+00:00")
    retry = create(
        gql,
        title="  Your order shipped ",
        toPhoneNumber="+14155550100",
        publishDatetime="2030-01-01T11:00:00+02:00",
    )

    assert retry["replayed"] is True
    assert retry["notification"]["id"] == first["notification"]["id"]
    assert Notification.objects.count() == 1


def test_a_replay_reports_the_current_status_and_opt_out(graphql, staff_user):
    gql = graphql(staff_user)
    first = create(gql)
    Notification.objects.filter(pk=first["notification"]["id"]).update(status="canceled")
    SmsOptOut.objects.create(phone_number="+14155550100", source="admin")

    retry = create(gql)

    assert retry["replayed"] is True
    assert retry["notification"]["status"] == "CANCELED"
    assert retry["notification"]["sms"]["optedOut"] is True
    assert codes(retry, "warnings") == [
        ("idempotencyKey", "replayed", None),
        ("toPhoneNumber", "opted_out", None),
    ]


@pytest.mark.parametrize(
    "change",
    [
        {"title": "Your order was delayed"},
        {"body": "Order 43 is on its way."},
        {"toPhoneNumber": "+14155550101"},
        {"url": "https://example.com/orders/42"},
        {"priority": "HIGH"},
        {"publishDatetime": "2030-01-01T09:00:00+00:00"},
        {"contentType": "auth.user"},
    ],
    ids=lambda change: next(iter(change)),
)
def test_the_same_key_with_other_input_is_refused_and_writes_nothing(graphql, staff_user, change):
    gql = graphql(staff_user)
    first = create(gql)

    refused = create(gql, **change)

    assert refused["notification"] is None and refused["replayed"] is False
    assert codes(refused) == [("idempotencyKey", "idempotency_conflict", None)]
    assert "different input" in refused["errors"][0]["message"]
    assert list(Notification.objects.values_list("pk", flat=True)) == [
        int(first["notification"]["id"])
    ]
    assert IdempotencyKey.objects.count() == 1


def test_keys_are_scoped_to_the_caller(graphql, make_user, staff_user):
    other = make_user("other-staff", perms=NOTIFICATION_PERMISSIONS)
    mine = create(graphql(staff_user))
    theirs = create(graphql(other))
    their_retry = create(graphql(other))

    assert mine["replayed"] is False and theirs["replayed"] is False
    assert mine["notification"]["id"] != theirs["notification"]["id"]
    assert their_retry["notification"]["id"] == theirs["notification"]["id"]
    assert their_retry["replayed"] is True
    assert Notification.objects.count() == 2


def test_creates_without_a_key_are_never_deduplicated(graphql, staff_user):
    gql = graphql(staff_user)
    ids = {create(gql, idempotencyKey=None)["notification"]["id"] for _ in range(2)}
    assert len(ids) == 2
    assert IdempotencyKey.objects.count() == 0


@pytest.mark.parametrize(
    ("key", "code"),
    [("", "required"), ("k" * 256, "max_length"), ("line\nbreak", "invalid"), ("\x00", "invalid")],
    ids=["empty", "too-long", "newline", "nul"],
)
def test_malformed_keys_are_field_errors(graphql, staff_user, key, code):
    refused = create(graphql(staff_user), idempotencyKey=key)
    assert refused["notification"] is None
    assert codes(refused) == [("idempotencyKey", code, None)]
    assert Notification.objects.count() == 0


def test_the_longest_key_and_any_printable_text_are_accepted(graphql, staff_user):
    gql = graphql(staff_user)
    for key in ("k" * 255, "äö 🎉 user action #1"):
        assert create(gql, idempotencyKey=key)["errors"] == []
    assert sorted(IdempotencyKey.objects.values_list("key", flat=True)) == sorted(
        ["k" * 255, "äö 🎉 user action #1"]
    )


def test_a_bulk_retry_replays_seen_keys_and_creates_the_rest(graphql, staff_user):
    gql = graphql(staff_user)
    first = gql.data(
        CREATE_MANY,
        {"input": [order_input(idempotencyKey="a"), order_input(idempotencyKey="b", title="B")]},
    )["createSmsNotifications"]
    first_ids = [n["id"] for n in first["notifications"]]

    retry = gql.data(
        CREATE_MANY,
        {
            "input": [
                order_input(idempotencyKey="new", title="New"),
                order_input(idempotencyKey="b", title="B"),
                order_input(idempotencyKey=None, title="Keyless"),
                order_input(idempotencyKey="a"),
            ]
        },
    )["createSmsNotifications"]

    assert retry["errors"] == []
    ids = [n["id"] for n in retry["notifications"]]
    assert ids[1] == first_ids[1] and ids[3] == first_ids[0]
    assert len({*ids, *first_ids}) == 4  # "new" and the keyless item are new rows
    assert [n["title"] for n in retry["notifications"]] == [
        "New",
        "B",
        "Keyless",
        "Your order shipped",
    ]
    assert codes(retry, "warnings") == [
        ("idempotencyKey", "replayed", 1),
        ("idempotencyKey", "replayed", 3),
    ]
    assert Notification.objects.count() == 4
    assert IdempotencyKey.objects.count() == 3


def test_a_conflicting_item_fails_the_whole_bulk_call_with_its_index(graphql, staff_user):
    gql = graphql(staff_user)
    create(gql, idempotencyKey="seen")

    refused = gql.data(
        CREATE_MANY,
        {
            "input": [
                order_input(idempotencyKey="fresh"),
                order_input(idempotencyKey="seen", body="Something else"),
            ]
        },
    )["createSmsNotifications"]

    assert refused["notifications"] == []
    assert codes(refused) == [("idempotencyKey", "idempotency_conflict", 1)]
    assert Notification.objects.count() == 1
    assert list(IdempotencyKey.objects.values_list("key", flat=True)) == ["seen"]


def test_a_key_used_twice_in_one_bulk_call_is_refused(graphql, staff_user):
    refused = graphql(staff_user).data(
        CREATE_MANY, {"input": [order_input(), order_input(), order_input(idempotencyKey="x")]}
    )["createSmsNotifications"]

    assert codes(refused) == [("idempotencyKey", "duplicate_idempotency_key", 1)]
    assert Notification.objects.count() == 0


def test_a_key_is_forgotten_after_the_ttl(graphql, staff_user, settings):
    set_sms(settings, SMS_IDEMPOTENCY_TTL=3600)
    gql = graphql(staff_user)
    first = create(gql)
    IdempotencyKey.objects.update(created_datetime=timezone.now() - timedelta(seconds=3590))
    assert create(gql)["replayed"] is True  # still within the hour

    IdempotencyKey.objects.update(created_datetime=timezone.now() - timedelta(seconds=3601))
    later = create(gql)

    assert later["replayed"] is False
    assert later["notification"]["id"] != first["notification"]["id"]
    # The key now names the new notification, for the next TTL.
    assert IdempotencyKey.objects.get().notification_id == int(later["notification"]["id"])
    assert create(gql)["notification"]["id"] == later["notification"]["id"]


@pytest.mark.parametrize("expired_count", [3, 60])
def test_the_sweep_deletes_expired_keys_in_one_query(staff_user, settings, expired_count):
    set_sms(settings, SMS_IDEMPOTENCY_TTL=60)
    fresh = create_keyed(staff_user, "fresh")
    for index in range(expired_count):
        create_keyed(staff_user, f"old-{index}")
    IdempotencyKey.objects.exclude(key="fresh").update(
        created_datetime=timezone.now() - timedelta(seconds=61)
    )

    with CaptureQueriesContext(connection) as queries:
        forgotten = forget_expired_keys()

    assert forgotten == expired_count
    assert len(queries) == 1
    assert list(IdempotencyKey.objects.values_list("notification", flat=True)) == [fresh.pk]
    assert Notification.objects.count() == expired_count + 1  # notifications are kept


def test_the_scheduled_sweep_job_forgets_expired_keys(staff_user, settings):
    set_sms(settings, SMS_IDEMPOTENCY_TTL=60)
    create_keyed(staff_user, "old", publish=timezone.now() + timedelta(days=1))
    IdempotencyKey.objects.update(created_datetime=timezone.now() - timedelta(seconds=61))

    result = forget_expired_idempotency_keys()

    assert result["forgotten_idempotency_keys"] == 1
    assert IdempotencyKey.objects.count() == 0


def test_the_database_refuses_a_second_row_for_one_user_and_key(staff_user):
    """The guarantee under concurrency is this constraint, on SQLite and PostgreSQL alike."""
    notification = create_keyed(staff_user, "once")
    with pytest.raises(IntegrityError), transaction.atomic():
        IdempotencyKey.objects.create(
            user=staff_user, key="once", fingerprint="0" * 64, notification=notification
        )


@pytest.mark.django_db
def test_a_key_needs_a_caller():
    with pytest.raises(ValidationError) as raised:
        create_sms_notification(
            SmsNotificationRequest(
                title="t", body="b", to_phone_number="+14155550100", idempotency_key="k"
            )
        )
    assert raised.value.error_dict["idempotency_key"][0].code == "requires_user"
    assert Notification.objects.count() == 0


def create_keyed(user, key: str, publish=None) -> Notification:
    return create_sms_notification(
        SmsNotificationRequest(
            title=key,
            body="b",
            to_phone_number="+14155550100",
            publish_datetime=publish,
            idempotency_key=key,
        ),
        caller_id=user.pk,
    ).notification
