"""cancelNotification over HTTP: only while pending, never racing the send job."""

import threading

import pytest
from django.db import connection, transaction

from notification.create.changes import NotificationNotCancelable, cancel_notification
from notification.create.creation import SmsNotificationRequest, create_sms_notification
from notification.models import Notification
from tests.support.waiting import wait_until

pytestmark = pytest.mark.db_vendor

CANCEL = """
mutation Cancel($id: ID!) {
  cancelNotification(id: $id) {
    notification { id status statusMessage sms { toPhoneNumber optedOut } }
    errors { field message code }
  }
}
"""


def make_pending() -> Notification:
    return create_sms_notification(
        SmsNotificationRequest(title="t", body="b", to_phone_number="+14155550100")
    ).notification


def test_pending_notification_is_canceled_and_announced_on_commit(
    graphql, staff_user, django_capture_on_commit_callbacks
):
    notification = make_pending()
    with django_capture_on_commit_callbacks() as callbacks:
        payload = graphql(staff_user).data(CANCEL, {"id": str(notification.pk)})
    result = payload["cancelNotification"]
    assert result["errors"] == []
    assert result["notification"]["status"] == "CANCELED"
    assert result["notification"]["sms"] == {"toPhoneNumber": "+14155550100", "optedOut": False}
    notification.refresh_from_db()
    assert notification.status == "canceled"
    assert notification.status_message
    assert len(callbacks) == 1  # notify_status_changed, after the commit


@pytest.mark.parametrize("status", ["processing", "sent", "delivered", "failed", "unknown"])
def test_only_pending_can_be_canceled(
    graphql, staff_user, status, django_capture_on_commit_callbacks
):
    notification = make_pending()
    Notification.objects.filter(pk=notification.pk).update(status=status)
    with django_capture_on_commit_callbacks() as callbacks:
        result = graphql(staff_user).data(CANCEL, {"id": str(notification.pk)})
    payload = result["cancelNotification"]
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("id", "not_pending")]
    assert status in payload["errors"][0]["message"]
    assert payload["notification"]["status"] == status.upper()
    assert Notification.objects.get(pk=notification.pk).status == status
    assert callbacks == []


def test_canceling_twice_says_it_is_already_canceled(graphql, staff_user):
    notification = make_pending()
    gql = graphql(staff_user)
    gql.data(CANCEL, {"id": str(notification.pk)})
    again = gql.data(CANCEL, {"id": str(notification.pk)})["cancelNotification"]
    assert again["errors"][0]["code"] == "not_pending"
    assert "canceled" in again["errors"][0]["message"]


@pytest.mark.parametrize("bad_id", ["999999", "abc"])
def test_unknown_id_is_a_not_found_error(graphql, staff_user, bad_id):
    payload = graphql(staff_user).data(CANCEL, {"id": bad_id})["cancelNotification"]
    assert payload["notification"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("id", "not_found")]


def test_cancel_needs_change_permission(graphql, make_user, plain_user):
    notification = make_pending()
    adder = make_user("adder", perms=["notification.add_notification"])
    for user in (plain_user, adder):
        result = graphql(user).execute(CANCEL, {"id": str(notification.pk)})
        assert result["data"] is None
        assert "notification.change_notification" in result["errors"][0]["message"]
    assert Notification.objects.get(pk=notification.pk).status == "pending"


def backends_waiting_for_a_lock() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(DISTINCT pid) FROM pg_locks WHERE NOT granted")
        return cursor.fetchone()[0]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_cancel_waits_for_a_concurrent_claim_and_then_refuses():
    """The send job's claim holds the row lock; cancel's conditional UPDATE waits for it,
    re-reads the row, finds it no longer pending, and changes nothing."""
    notification = make_pending()
    claimed = threading.Event()
    release = threading.Event()

    def claim_like_the_send_job():
        try:
            with transaction.atomic():
                Notification.objects.filter(pk=notification.pk, status="pending").update(
                    status="processing"
                )
                claimed.set()
                release.wait(10)
        finally:
            connection.close()

    worker = threading.Thread(target=claim_like_the_send_job)
    worker.start()
    assert claimed.wait(10)
    outcome: list[BaseException | Notification] = []

    def cancel():
        try:
            outcome.append(cancel_notification(notification.pk))
        except BaseException as exc:  # reported by the assertion below
            outcome.append(exc)
        finally:
            connection.close()

    canceler = threading.Thread(target=cancel)
    canceler.start()
    # PostgreSQL shows the cancel's UPDATE queued behind the claim's row lock.
    wait_until(lambda: backends_waiting_for_a_lock() == 1, what="cancel waiting for the lock")
    assert canceler.is_alive() and outcome == []
    release.set()
    worker.join(10)
    canceler.join(10)
    assert isinstance(outcome[0], NotificationNotCancelable)
    assert Notification.objects.get(pk=notification.pk).status == "processing"


HUGE_ID = "99999999999999999999999"


@pytest.mark.parametrize("bad_id", [HUGE_ID, str(2**63), "0", "-1"])
def test_impossible_ids_are_not_found_not_a_database_error(graphql, staff_user, bad_id):
    payload = graphql(staff_user).data(CANCEL, {"id": bad_id})["cancelNotification"]
    assert payload["notification"] is None
    assert [(e["field"], e["code"]) for e in payload["errors"]] == [("id", "not_found")]


def test_change_permission_without_view_cannot_read_or_cancel_others(graphql, make_user):
    """change_notification alone must not read (or probe) notifications it cannot see."""
    changer = make_user("changer", perms=["notification.change_notification"])
    someone_elses = make_pending()
    missing_id = str(someone_elses.pk + 1000)

    gql = graphql(changer)
    hidden = gql.data(CANCEL, {"id": str(someone_elses.pk)})["cancelNotification"]
    missing = gql.data(CANCEL, {"id": missing_id})["cancelNotification"]

    assert hidden["notification"] is None  # no title, body or phone number
    assert [(e["field"], e["code"]) for e in hidden["errors"]] == [("id", "not_found")]
    # Exactly like an id that does not exist (only the id in the message differs).
    assert hidden["errors"][0]["message"].replace(str(someone_elses.pk), "N") == missing["errors"][
        0
    ]["message"].replace(missing_id, "N")
    assert Notification.objects.get(pk=someone_elses.pk).status == "pending"  # unchanged

    # A notification addressed to them is theirs to see, so theirs to cancel.
    own = create_sms_notification(
        SmsNotificationRequest(
            title="t", body="b", to_phone_number="+14155550100", user_id=changer.pk
        )
    ).notification
    mine = gql.data(CANCEL, {"id": str(own.pk)})["cancelNotification"]
    assert mine["errors"] == [] and mine["notification"]["status"] == "CANCELED"
