"""Creating notifications (validated, atomic pairs, bulk) and cancelling them."""

import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, connection

from notification.create.changes import NotificationNotCancelable, cancel_notification
from notification.create.creation import (
    BulkValidationError,
    SmsNotificationRequest,
    create_sms_notification,
    create_sms_notifications,
)
from notification.models import Notification, NotificationPriorityChoices, SmsNotification

pytestmark = pytest.mark.django_db


def request(**overrides) -> SmsNotificationRequest:
    fields = {"title": "Hello", "body": "Hi there", "to_phone_number": "+14155550100"}
    return SmsNotificationRequest(**{**fields, **overrides})


def test_creates_the_pair_with_sms_loaded(django_assert_num_queries):
    created = create_sms_notification(request(priority=NotificationPriorityChoices.HIGH))
    with django_assert_num_queries(0):
        sms = created.notification.sms
    assert sms.pk is not None and sms.notification_id == created.notification.pk
    assert (sms.segments, sms.encoding, sms.to_phone_number) == (1, "gsm7", "+14155550100")
    stored = Notification.objects.select_related("sms").get()
    assert (stored.type, stored.status, stored.priority) == ("sms", "pending", 30)
    assert stored.sms.segments == 1
    assert created.opted_out is False


def test_publish_datetime_defaults_to_now_and_is_kept_in_utc():
    before = datetime.datetime.now(datetime.UTC)
    created = create_sms_notification(request())
    assert created.notification.publish_datetime >= before
    tz = datetime.timezone(datetime.timedelta(hours=-5))
    later = create_sms_notification(
        request(publish_datetime=datetime.datetime(2030, 1, 1, 4, 0, tzinfo=tz))
    ).notification
    assert later.publish_datetime == datetime.datetime(2030, 1, 1, 9, 0, tzinfo=datetime.UTC)
    assert later.publish_datetime.utcoffset() == datetime.timedelta(0)


def test_naive_publish_datetime_is_rejected():
    with pytest.raises(ValidationError) as exc:
        create_sms_notification(request(publish_datetime=datetime.datetime(2030, 1, 1, 9, 0)))
    assert exc.value.error_dict["publish_datetime"][0].code == "naive_datetime"
    assert Notification.objects.count() == 0


def test_errors_are_keyed_by_model_field_names_with_codes():
    with pytest.raises(ValidationError) as exc:
        create_sms_notification(
            request(title="", body="", to_phone_number="x", priority=99, url="nope")
        )
    codes = {field: [e.code for e in errors] for field, errors in exc.value.error_dict.items()}
    assert codes == {
        "title": ["required"],
        "body": ["required"],
        "to_phone_number": ["invalid_phone_number"],
        "priority": ["invalid_choice"],
        "url": ["invalid"],
    }


def test_object_reference_is_checked(django_user_model):
    user = django_user_model.objects.create_user("someone")
    created = create_sms_notification(request(content_type="auth.user", object_id=str(user.pk)))
    assert created.notification.content_object == user
    assert created.notification.content_type.model == "user"
    # A content type alone is allowed: a notification about a kind of thing.
    create_sms_notification(request(content_type="auth.group"))
    with pytest.raises(ValidationError) as exc:
        create_sms_notification(request(content_type="auth.user", object_id=user.pk + 1))
    assert exc.value.error_dict["object_id"][0].code == "does_not_exist"


def test_bulk_is_a_constant_number_of_queries(django_assert_num_queries, django_user_model):
    user = django_user_model.objects.create_user("someone")

    def batch(size):
        return [
            request(user_id=user.pk, content_type="auth.user", object_id=user.pk)
            for _ in range(size)
        ]

    create_sms_notifications(batch(1))  # warm the content type cache
    # users, objects, opt-outs, savepoint, two inserts, release. (SQLite splits an
    # INSERT at its 999-variable limit: every ~40 SMS rows of 24 columns, so stay under.)
    with django_assert_num_queries(7):
        create_sms_notifications(batch(2))
    with django_assert_num_queries(7):
        create_sms_notifications(batch(35))
    assert SmsNotification.objects.count() == 38


def test_bulk_reports_every_invalid_item_and_writes_nothing():
    with pytest.raises(BulkValidationError) as exc:
        create_sms_notifications(
            [request(), request(body=""), request(), request(user_id=999999, title="")]
        )
    assert list(exc.value.errors) == [1, 3]
    assert set(exc.value.errors[3].error_dict) == {"user_id", "title"}
    assert Notification.objects.count() == 0


def test_empty_bulk_request_creates_nothing():
    assert create_sms_notifications([]) == []


def test_a_failing_sms_insert_leaves_no_notification_behind():
    """Both rows or neither: make the database itself refuse the SMS row."""
    table = SmsNotification._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION refuse_sms() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'refused by test'; END $$"
            )
            cursor.execute(
                f"CREATE TRIGGER refuse_sms BEFORE INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION refuse_sms()"
            )
        else:
            cursor.execute(
                f"CREATE TRIGGER refuse_sms BEFORE INSERT ON {table} "
                "BEGIN SELECT RAISE(ABORT, 'refused by test'); END"
            )
    with pytest.raises(DatabaseError, match="refused by test"):
        create_sms_notifications([request(), request()])
    assert Notification.objects.count() == 0
    assert SmsNotification.objects.count() == 0


def test_cancel_only_while_pending():
    notification = create_sms_notification(request()).notification
    canceled = cancel_notification(notification.pk, reason="Changed our mind.")
    assert (canceled.status, canceled.status_message) == ("canceled", "Changed our mind.")
    with pytest.raises(NotificationNotCancelable) as exc:
        cancel_notification(notification.pk)
    assert exc.value.code == "not_pending"
    assert exc.value.notification.status == "canceled"
    with pytest.raises(Notification.DoesNotExist):
        cancel_notification(999999)
