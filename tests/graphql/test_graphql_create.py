"""createSmsNotification(s) over HTTP: the pair or nothing, field errors, opt-outs."""

import pytest

from notification.create.creation import MAX_BULK_NOTIFICATIONS
from notification.models import Notification, SmsNotification, SmsOptOut
from tests.support.settings_helpers import set_sms, sms_settings

CREATE = """
mutation Create($input: CreateSmsNotificationInput!) {
  createSmsNotification(input: $input) {
    notification {
      id title body url type status priority userId contentType objectId publishDatetime
      sms { toPhoneNumber deliveryStatus segments encoding attempts twilioSid optedOut }
    }
    errors { field message code index }
    warnings { field message code index }
  }
}
"""

CREATE_MANY = """
mutation CreateMany($input: [CreateSmsNotificationInput!]!) {
  createSmsNotifications(input: $input) {
    notifications { id title sms { toPhoneNumber segments optedOut } }
    errors { field message code index }
    warnings { field code index }
  }
}
"""


def valid_input(**overrides):
    return {
        "title": "Your order shipped",
        "body": "Order 42 is on its way.",
        "toPhoneNumber": "+1 415 555 0100",
        **overrides,
    }


def assert_nothing_written():
    assert Notification.objects.count() == 0
    assert SmsNotification.objects.count() == 0


def test_staff_creates_the_pair_with_normalised_number_and_segments(graphql, staff_user):
    result = graphql(staff_user).data(
        CREATE,
        {
            "input": valid_input(
                url="https://example.com/orders/42",
                userId=str(staff_user.pk),
                priority="HIGH",
                publishDatetime="2030-01-01T09:00:00+02:00",
                contentType="auth.user",
                objectId=str(staff_user.pk),
            )
        },
    )["createSmsNotification"]

    assert result["errors"] == [] and result["warnings"] == []
    created = result["notification"]
    assert created["type"] == "SMS"
    assert created["status"] == "PENDING"
    assert created["priority"] == "HIGH"
    assert created["userId"] == str(staff_user.pk)
    assert created["contentType"] == "auth.user"
    assert created["objectId"] == str(staff_user.pk)
    assert created["publishDatetime"] == "2030-01-01T07:00:00+00:00"
    assert created["sms"] == {
        "toPhoneNumber": "+14155550100",
        "deliveryStatus": "NOT_SUBMITTED",
        "segments": 1,
        "encoding": "GSM7",
        "attempts": 0,
        "twilioSid": None,
        "optedOut": False,
    }
    notification = Notification.objects.get(pk=created["id"])
    assert notification.sms.to_phone_number == "+14155550100"
    assert notification.priority == 30
    assert SmsNotification.objects.count() == 1


def test_national_number_uses_default_region(graphql, staff_user, settings):
    # The default allow-list follows the region: a British mainland mobile is allowed.
    set_sms(settings, DEFAULT_PHONE_REGION="GB")
    result = graphql(staff_user).data(CREATE, {"input": valid_input(toPhoneNumber="07400 123456")})
    assert result["createSmsNotification"]["notification"]["sms"]["toPhoneNumber"] == (
        "+447400123456"
    )


def test_segments_and_encoding_are_computed_on_creation(graphql, staff_user):
    result = graphql(staff_user).data(CREATE, {"input": valid_input(body="é" * 10 + "😀" * 36)})
    sms = result["createSmsNotification"]["notification"]["sms"]
    # é is GSM-7 but the emoji is not: 10 + 72 UTF-16 units = 82 > 70 -> 67-unit segments.
    assert sms == {**sms, "encoding": "UCS2", "segments": 2}


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"toPhoneNumber": "12"}, "toPhoneNumber", "invalid_phone_number"),
        ({"toPhoneNumber": "not a number"}, "toPhoneNumber", "invalid_phone_number"),
        # Refused, not silently dropped / not billed (issue 10).
        ({"toPhoneNumber": "+14155550100 ext. 12"}, "toPhoneNumber", "invalid_phone_number"),
        ({"toPhoneNumber": "+19005551234"}, "toPhoneNumber", "invalid_phone_number"),
        ({"toPhoneNumber": ""}, "toPhoneNumber", "required"),
        ({"body": "x" * 1601}, "body", "max_length"),
        ({"body": "   "}, "body", "required"),
        ({"title": ""}, "title", "required"),
        ({"title": "t" * 256}, "title", "max_length"),
        ({"contentType": "nope.nothing"}, "contentType", "does_not_exist"),
        ({"contentType": "auth"}, "contentType", "does_not_exist"),
        ({"objectId": "1"}, "objectId", "requires_content_type"),
        ({"contentType": "auth.user", "objectId": "999999"}, "objectId", "does_not_exist"),
        ({"userId": "999999"}, "userId", "does_not_exist"),
        ({"userId": "abc"}, "userId", "invalid"),
        ({"url": "not a url"}, "url", "invalid"),
        ({"url": "ftp://example.com/x"}, "url", "invalid"),
        ({"publishDatetime": "2030-01-01T09:00:00"}, "publishDatetime", "naive_datetime"),
    ],
)
def test_invalid_field_returns_field_error_and_writes_nothing(
    graphql, staff_user, overrides, field, code
):
    result = graphql(staff_user).data(CREATE, {"input": valid_input(**overrides)})
    payload = result["createSmsNotification"]
    assert payload["notification"] is None
    assert [(e["field"], e["code"], e["index"]) for e in payload["errors"]] == [(field, code, None)]
    assert payload["errors"][0]["message"]
    assert_nothing_written()


def test_body_of_exactly_1600_characters_is_accepted(graphql, staff_user):
    result = graphql(staff_user).data(CREATE, {"input": valid_input(body="x" * 1600)})
    assert result["createSmsNotification"]["notification"]["sms"]["segments"] == 11


def test_every_invalid_field_is_reported_at_once(graphql, staff_user):
    payload = graphql(staff_user).data(
        CREATE, {"input": valid_input(title="", body="x" * 1601, toPhoneNumber="12")}
    )["createSmsNotification"]
    assert {e["field"] for e in payload["errors"]} == {"title", "body", "toPhoneNumber"}
    assert_nothing_written()


@pytest.mark.parametrize("priority", ["URGENT", 5, "high"])
def test_bad_priority_is_an_error_naming_the_field_not_a_500(graphql, staff_user, priority):
    result = graphql(staff_user).execute(CREATE, {"input": valid_input(priority=priority)})
    assert result.get("data") is None
    (error,) = result["errors"]
    assert "priority" in error["message"]
    assert_nothing_written()


def test_bad_priority_literal_in_document_is_an_error(graphql, staff_user):
    result = graphql(staff_user).execute(
        'mutation { createSmsNotification(input: {title: "t", body: "b", '
        'toPhoneNumber: "+14155550100", priority: URGENT}) { errors { field } } }'
    )
    assert result.get("data") is None
    assert "URGENT" in result["errors"][0]["message"]
    assert_nothing_written()


def test_opted_out_number_is_created_with_a_warning(graphql, staff_user):
    SmsOptOut.objects.create(phone_number="+14155550100", source="inbound_stop")
    payload = graphql(staff_user).data(CREATE, {"input": valid_input()})["createSmsNotification"]
    assert payload["notification"]["sms"]["toPhoneNumber"] == "+14155550100"
    assert payload["notification"]["sms"]["optedOut"] is True
    assert [(w["field"], w["code"]) for w in payload["warnings"]] == [
        ("toPhoneNumber", "opted_out")
    ]
    assert Notification.objects.count() == 1


# --- permissions ----------------------------------------------------------------


def test_anonymous_gets_an_error_and_nothing_is_written(graphql):
    result = graphql().execute(CREATE, {"input": valid_input()})
    assert result["data"] is None
    assert result["errors"][0]["path"] == ["createSmsNotification"]
    assert_nothing_written()


def test_user_without_add_permission_gets_an_error(graphql, plain_user):
    result = graphql(plain_user).execute(CREATE, {"input": valid_input()})
    assert result["data"] is None
    assert "notification.add_notification" in result["errors"][0]["message"]
    assert_nothing_written()


def test_add_permission_alone_is_enough_to_create(graphql, make_user):
    sender = make_user("sender", perms=["notification.add_notification"])
    payload = graphql(sender).data(CREATE, {"input": valid_input()})["createSmsNotification"]
    assert payload["errors"] == []
    assert Notification.objects.count() == 1


# --- bulk -----------------------------------------------------------------------


def test_bulk_creates_all_in_input_order(graphql, staff_user, django_assert_max_num_queries):
    items = [valid_input(title=f"n{i}", toPhoneNumber=f"+1415555{i:04d}") for i in range(200)]
    items[7]["userId"] = str(staff_user.pk)
    SmsOptOut.objects.create(phone_number="+14155550003", source="admin")
    client = graphql(staff_user)
    client.csrf_token()
    # Session, user, permissions, the user check, opt-outs, savepoint and the inserts
    # (one per table on PostgreSQL; SQLite splits them at 999 parameters, every ~40 SMS
    # rows): not one per item.
    with django_assert_max_num_queries(17):
        payload = client.data(CREATE_MANY, {"input": items})["createSmsNotifications"]
    assert payload["errors"] == []
    assert [n["title"] for n in payload["notifications"]] == [f"n{i}" for i in range(200)]
    assert payload["notifications"][3]["sms"]["toPhoneNumber"] == "+14155550003"
    assert [n["sms"]["optedOut"] for n in payload["notifications"]].count(True) == 1
    assert payload["notifications"][3]["sms"]["optedOut"] is True
    assert payload["warnings"] == [{"field": "toPhoneNumber", "code": "opted_out", "index": 3}]
    assert Notification.objects.count() == 200
    assert SmsNotification.objects.count() == 200
    assert set(SmsNotification.objects.values_list("segments", flat=True)) == {1}


def test_bulk_is_all_or_nothing_with_errors_naming_index_and_field(graphql, staff_user):
    items = [valid_input() for _ in range(5)]
    items[1]["toPhoneNumber"] = "12"
    items[3]["body"] = "x" * 1601
    items[3]["userId"] = "999999"
    payload = graphql(staff_user).data(CREATE_MANY, {"input": items})["createSmsNotifications"]
    assert payload["notifications"] == []
    assert sorted((e["index"], e["field"], e["code"]) for e in payload["errors"]) == [
        (1, "toPhoneNumber", "invalid_phone_number"),
        (3, "body", "max_length"),
        (3, "userId", "does_not_exist"),
    ]
    assert_nothing_written()


def test_bulk_over_the_limit_is_refused_before_its_items_are_converted(graphql, staff_user):
    items = [valid_input()] * (MAX_BULK_NOTIFICATIONS + 1)
    result = graphql(staff_user).execute(CREATE_MANY, {"input": items})
    assert result["data"] is None
    assert [e["extensions"] for e in result["errors"]] == [
        {"code": "too_many_items", "field": "variables.input"}
    ]
    assert_nothing_written()


@sms_settings(GRAPHQL_MAX_ITEMS=0)
def test_bulk_over_the_limit_is_refused_by_the_mutation_with_the_list_cap_off(graphql, staff_user):
    items = [valid_input()] * (MAX_BULK_NOTIFICATIONS + 1)
    payload = graphql(staff_user).data(CREATE_MANY, {"input": items})["createSmsNotifications"]
    assert [(e["field"], e["code"], e["index"]) for e in payload["errors"]] == [
        (None, "too_many", None)
    ]
    assert_nothing_written()


def test_bulk_of_exactly_the_limit_is_accepted(graphql, staff_user):
    items = [valid_input(toPhoneNumber=f"+1415555{i:04d}") for i in range(MAX_BULK_NOTIFICATIONS)]
    payload = graphql(staff_user).data(CREATE_MANY, {"input": items})["createSmsNotifications"]
    assert payload["errors"] == []
    assert SmsNotification.objects.count() == MAX_BULK_NOTIFICATIONS


def test_bulk_requires_add_permission(graphql, plain_user):
    result = graphql(plain_user).execute(CREATE_MANY, {"input": [valid_input()]})
    assert result["data"] is None and result["errors"]
    assert_nothing_written()


HUGE_ID = "99999999999999999999999"


@pytest.mark.parametrize(
    ("overrides", "field", "code"),
    [
        ({"userId": HUGE_ID}, "userId", "invalid"),
        ({"userId": str(2**63)}, "userId", "invalid"),
        ({"userId": "0"}, "userId", "invalid"),
        ({"contentType": "auth.user", "objectId": HUGE_ID}, "objectId", "invalid"),
        ({"title": "bad\x00title"}, "title", "invalid"),
        ({"body": "bad\x00body"}, "body", "invalid"),
        ({"url": "https://example.com/\x00"}, "url", "invalid"),
        ({"contentType": "auth.\x00user"}, "contentType", "invalid"),
    ],
)
def test_input_the_database_would_refuse_is_a_field_error(
    graphql, staff_user, overrides, field, code
):
    """Huge ids (beyond bigint) and NUL characters (PostgreSQL refuses them) are field
    errors on both databases, never a raw database error."""
    result = graphql(staff_user).data(CREATE, {"input": valid_input(**overrides)})
    payload = result["createSmsNotification"]
    assert payload["notification"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [(field, code)]
    assert_nothing_written()


def test_bulk_reports_huge_ids_per_item(graphql, staff_user):
    result = graphql(staff_user).data(
        CREATE_MANY, {"input": [valid_input(), valid_input(userId=HUGE_ID)]}
    )
    payload = result["createSmsNotifications"]
    assert [(e["field"], e["code"], e["index"]) for e in payload["errors"]] == [
        ("userId", "invalid", 1)
    ]
    assert_nothing_written()
