"""Staff resend of ``unknown`` SMS: the ``resendNotification`` mutation and the admin action."""

import pytest
from django.urls import reverse

from notification.models import NotificationStatusChoices, SmsNotification
from tests.support.sending_helpers import make_sms, reload

pytestmark = [pytest.mark.django_db, pytest.mark.db_vendor]

Status = NotificationStatusChoices

RESEND = """
mutation Resend($id: ID!) {
  resendNotification(id: $id) {
    notification { id status }
    errors { field code message }
  }
}
"""


def make_unknown(body: str = "lost in the wire") -> SmsNotification:
    """An SMS left ``unknown`` by a timeout, as the send job writes it."""
    sms = make_sms(body=body)
    sms.attempts = 1
    sms.error_message = "Timed out waiting for Twilio's answer"
    sms.send_started_datetime = sms.notification.created_datetime
    sms.save()
    sms.notification.status = Status.UNKNOWN
    sms.notification.save(update_fields=["status"])
    return sms


def test_resend_mutation_requeues_an_unknown_sms(graphql, staff_user):
    sms = make_unknown()

    result = graphql(staff_user).data(RESEND, {"id": str(sms.notification_id)})

    payload = result["resendNotification"]
    assert payload["errors"] == []
    assert payload["notification"]["status"].lower() == "pending"
    sms = reload(sms)
    assert sms.notification.status == Status.PENDING
    assert sms.attempts == 0 and sms.send_started_datetime is None and sms.error_message == ""


def test_resend_mutation_refuses_what_is_not_unknown_or_failed(graphql, staff_user):
    sms = make_sms(body="still pending")

    result = graphql(staff_user).data(RESEND, {"id": str(sms.notification_id)})
    assert result["resendNotification"]["errors"][0]["code"] == "not_resendable"
    assert result["resendNotification"]["errors"][0]["field"] == "id"

    result = graphql(staff_user).data(RESEND, {"id": "999999"})
    assert result["resendNotification"]["errors"][0]["code"] == "not_found"
    assert result["resendNotification"]["notification"] is None


def test_resend_mutation_needs_the_change_permission(graphql, plain_user):
    sms = make_unknown()
    result = graphql(plain_user).execute(RESEND, {"id": str(sms.notification_id)})
    assert result["errors"]
    assert reload(sms).notification.status == Status.UNKNOWN


def test_admin_action_resends_only_unknown_or_failed(admin_client):
    unknown = make_unknown()
    pending = make_sms(body="pending")

    response = admin_client.post(
        reverse("admin:notification_notification_changelist"),
        {
            "action": "resend_sms",
            "_selected_action": [unknown.notification_id, pending.notification_id],
        },
        follow=True,
    )

    assert response.status_code == 200
    assert reload(unknown).notification.status == Status.PENDING
    assert reload(unknown).send_started_datetime is None
    assert reload(pending).notification.status == Status.PENDING
    text = response.content.decode()
    assert "Queued 1 SMS to send again." in text
    assert "1 were not unknown or failed SMS" in text


def test_resend_needs_visibility_and_answers_hidden_ids_like_missing_ones(graphql, make_user):
    """change_notification alone must not read (or probe) notifications it cannot see."""
    changer = make_user("changer", perms=["notification.change_notification"])
    sms = make_unknown()
    missing_id = str(sms.notification_id + 1000)

    gql = graphql(changer)
    hidden = gql.data(RESEND, {"id": str(sms.notification_id)})["resendNotification"]
    missing = gql.data(RESEND, {"id": missing_id})["resendNotification"]

    assert hidden["notification"] is None
    assert [(e["field"], e["code"]) for e in hidden["errors"]] == [("id", "not_found")]
    assert hidden["errors"][0]["message"].replace(str(sms.notification_id), "N") == missing[
        "errors"
    ][0]["message"].replace(missing_id, "N")
    assert reload(sms).notification.status == Status.UNKNOWN  # nothing changed

    # Not resendable but hidden: still not_found, never the notification itself.
    pending = make_sms(body="someone else's, pending")
    other = gql.data(RESEND, {"id": str(pending.notification_id)})["resendNotification"]
    assert other["notification"] is None and other["errors"][0]["code"] == "not_found"


@pytest.mark.parametrize("bad_id", ["99999999999999999999999", str(2**63), "0", "x"])
def test_resend_of_an_impossible_id_is_not_found(graphql, staff_user, bad_id):
    result = graphql(staff_user).data(RESEND, {"id": bad_id})["resendNotification"]
    assert result["notification"] is None
    assert [(e["field"], e["code"]) for e in result["errors"]] == [("id", "not_found")]
