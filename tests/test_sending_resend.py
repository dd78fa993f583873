"""Staff resend of ``unknown`` SMS: the ``resendNotification`` mutation and the admin action."""

import pytest
from django.urls import reverse

from notification.models import NotificationStatusChoices, SmsNotification
from tests.sending_helpers import make_sms, reload

pytestmark = pytest.mark.django_db

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
    sms.send_started_at = sms.notification.created_datetime
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
    assert sms.attempts == 0 and sms.send_started_at is None and sms.error_message == ""


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
    assert reload(unknown).send_started_at is None
    assert reload(pending).notification.status == Status.PENDING
    text = response.content.decode()
    assert "Queued 1 SMS to send again." in text
    assert "1 were not unknown or failed SMS" in text
