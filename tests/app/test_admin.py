"""Admin pages through the Django test client: filters, search, permissions, locked fields."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from notification.models import (
    Notification,
    NotificationPriorityChoices,
    NotificationStatusChoices,
    SmsNotification,
    SmsOptOut,
)

pytestmark = [pytest.mark.django_db, pytest.mark.db_vendor]

NOTIFICATION_CHANGELIST = reverse("admin:notification_notification_changelist")
SMS_CHANGELIST = reverse("admin:notification_smsnotification_changelist")
OPT_OUT_CHANGELIST = reverse("admin:notification_smsoptout_changelist")


def make_sms(title: str, phone: str, **notification_fields) -> SmsNotification:
    notification = Notification.objects.create(
        title=title, body=f"{title} body", **notification_fields
    )
    return SmsNotification.objects.create(notification=notification, to_phone_number=phone)


@pytest.fixture
def notifications():
    delivered = make_sms(
        "Invoice ready", "+14155550100", status=NotificationStatusChoices.SENT,
        priority=NotificationPriorityChoices.HIGH,
    )  # fmt: skip
    delivered.delivery_status = "delivered"
    delivered.twilio_sid = "SM" + "a" * 32
    delivered.save()
    pending = make_sms("Password reset", "+14155550101")
    return {"delivered": delivered.notification, "pending": pending.notification}


def changelist_titles(response) -> set[str]:
    return {notification.title for notification in response.context["cl"].result_list}


def test_anonymous_is_sent_to_login(client, notifications):
    for url in (NOTIFICATION_CHANGELIST, SMS_CHANGELIST, OPT_OUT_CHANGELIST):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))


def test_plain_user_is_refused(client, django_user_model, notifications):
    user = django_user_model.objects.create_user("plain", password="pw-plain-123")
    client.force_login(user)
    response = client.get(NOTIFICATION_CHANGELIST)
    assert response.status_code == 302  # not staff: back to the admin login


def test_changelist_filters_by_status_priority_and_delivery_status(admin_client, notifications):
    response = admin_client.get(NOTIFICATION_CHANGELIST)
    assert response.status_code == 200
    assert changelist_titles(response) == {"Invoice ready", "Password reset"}

    by_status = admin_client.get(NOTIFICATION_CHANGELIST, {"status__exact": "pending"})
    assert changelist_titles(by_status) == {"Password reset"}

    by_priority = admin_client.get(NOTIFICATION_CHANGELIST, {"priority__exact": "30"})
    assert changelist_titles(by_priority) == {"Invoice ready"}

    by_delivery = admin_client.get(
        NOTIFICATION_CHANGELIST, {"sms__delivery_status__exact": "delivered"}
    )
    assert changelist_titles(by_delivery) == {"Invoice ready"}

    by_type = admin_client.get(NOTIFICATION_CHANGELIST, {"type__exact": "email"})
    assert changelist_titles(by_type) == set()


def test_changelist_searches_phone_number_and_title(admin_client, notifications):
    by_phone = admin_client.get(NOTIFICATION_CHANGELIST, {"q": "+14155550101"})
    assert changelist_titles(by_phone) == {"Password reset"}

    by_title = admin_client.get(NOTIFICATION_CHANGELIST, {"q": "invoice"})
    assert changelist_titles(by_title) == {"Invoice ready"}


def test_sms_changelist_filters_and_searches(admin_client, notifications):
    response = admin_client.get(SMS_CHANGELIST, {"delivery_status__exact": "delivered"})
    assert response.status_code == 200
    assert [sms.to_phone_number for sms in response.context["cl"].result_list] == ["+14155550100"]

    by_title = admin_client.get(SMS_CHANGELIST, {"q": "Password"})
    assert [sms.to_phone_number for sms in by_title.context["cl"].result_list] == ["+14155550101"]


def test_change_pages_render_and_delivery_fields_are_read_only(admin_client, notifications):
    sent = notifications["delivered"]
    response = admin_client.get(reverse("admin:notification_notification_change", args=[sent.pk]))
    assert response.status_code == 200
    assert "SM" + "a" * 32 in response.content.decode()  # shown, as text
    assert 'name="sms-0-twilio_sid"' not in response.content.decode()  # not an input

    sms_page = admin_client.get(
        reverse("admin:notification_smsnotification_change", args=[sent.sms.pk])
    )
    assert sms_page.status_code == 200
    assert 'name="delivery_status"' not in sms_page.content.decode()


ADD_URL = reverse("admin:notification_notification_add")


def add_form(**overrides) -> dict[str, str]:
    """The admin add form for an SMS notification with one (empty) SMS row, plus overrides."""
    return {
        "title": "Hello",
        "body": "Hi there",
        "url": "",
        "type": "sms",
        "publish_datetime_0": "2030-01-01",
        "publish_datetime_1": "10:00:00",
        "priority": "20",
        "category": "transactional",
        "sms-TOTAL_FORMS": "1",
        "sms-INITIAL_FORMS": "0",
        "sms-MIN_NUM_FORMS": "0",
        "sms-MAX_NUM_FORMS": "1",
        "sms-0-to_phone_number": "",
        **overrides,
    }


def test_add_normalises_phone_and_rejects_bad_numbers(admin_client):
    bad = admin_client.post(ADD_URL, add_form(**{"sms-0-to_phone_number": "not a number"}))
    assert bad.status_code == 200  # the form again, with an error, nothing written
    assert "not a phone number" in bad.content.decode()
    assert not Notification.objects.exists()

    good = admin_client.post(ADD_URL, add_form(**{"sms-0-to_phone_number": "(415) 555-0100"}))
    assert good.status_code == 302
    sms = SmsNotification.objects.select_related("notification").get()
    assert sms.to_phone_number == "+14155550100"
    assert sms.segments == 1
    assert sms.notification.status == NotificationStatusChoices.PENDING


def test_cancel_action_cancels_only_pending(admin_client, notifications):
    response = admin_client.post(
        NOTIFICATION_CHANGELIST,
        {
            "action": "cancel_pending_notifications",
            "_selected_action": [notifications["pending"].pk, notifications["delivered"].pk],
        },
        follow=True,
    )
    assert response.status_code == 200
    notifications["pending"].refresh_from_db()
    notifications["delivered"].refresh_from_db()
    assert notifications["pending"].status == NotificationStatusChoices.CANCELED
    assert notifications["delivered"].status == NotificationStatusChoices.SENT


def test_opt_out_admin_normalises_and_searches(admin_client):
    response = admin_client.post(
        reverse("admin:notification_smsoptout_add"),
        {"phone_number": "415-555-0123", "source": "admin"},
    )
    assert response.status_code == 302
    assert SmsOptOut.objects.get().phone_number == "+14155550123"

    found = admin_client.get(OPT_OUT_CHANGELIST, {"q": "5550123"})
    assert [o.phone_number for o in found.context["cl"].result_list] == ["+14155550123"]


def test_rq_dashboard_is_for_staff_only(client, admin_client):
    assert admin_client.get("/django-rq/").status_code == 200
    assert client.get("/django-rq/").status_code == 302


def test_add_rejects_body_over_1600_characters(admin_client):
    response = admin_client.post(
        reverse("admin:notification_notification_add"),
        {
            "title": "Too long",
            "body": "x" * 1601,
            "type": "sms",
            "publish_datetime_0": "2030-01-01",
            "publish_datetime_1": "10:00:00",
            "priority": "20",
            "category": "transactional",
            "sms-TOTAL_FORMS": "0",
            "sms-INITIAL_FORMS": "0",
            "sms-MIN_NUM_FORMS": "0",
            "sms-MAX_NUM_FORMS": "1",
        },
    )
    assert response.status_code == 200
    assert "at most 1600" in response.content.decode()
    assert not Notification.objects.exists()


def test_sent_notification_content_and_status_are_locked(admin_client, notifications):
    sent = notifications["delivered"]
    url = reverse("admin:notification_notification_change", args=[sent.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="title"' not in page and 'name="status"' not in page
    assert 'name="sms-0-to_phone_number"' not in page

    pending_page = admin_client.get(
        reverse("admin:notification_notification_change", args=[notifications["pending"].pk])
    ).content.decode()
    assert 'name="title"' in pending_page and 'name="status"' not in pending_page


def test_add_sms_notification_without_its_sms_is_refused(admin_client):
    """Never half a pair: an SMS notification is saved with its SMS row or not at all."""
    response = admin_client.post(ADD_URL, add_form())
    assert response.status_code == 200
    assert "needs a phone number" in response.content.decode()
    assert not Notification.objects.exists()


def test_a_type_nothing_sends_cannot_be_chosen(admin_client):
    """Only SMS is delivered, so only SMS can be created: an "app" notification would be
    saved and then silently never go anywhere."""
    response = admin_client.post(ADD_URL, add_form(type="app"))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Notification.objects.exists()


def change_form(sms: SmsNotification, **overrides) -> dict[str, str]:
    """The change page's form as a browser posts it (rendered while pending)."""
    notification = sms.notification
    return {
        "title": notification.title,
        "body": notification.body,
        "url": notification.url,
        "type": notification.type,
        "user": "",
        "publish_datetime_0": notification.publish_datetime.strftime("%Y-%m-%d"),
        "publish_datetime_1": notification.publish_datetime.strftime("%H:%M:%S"),
        "priority": str(notification.priority),
        "category": notification.category,
        "content_type": "",
        "object_id": "",
        "editing_status": "pending",
        "sms-TOTAL_FORMS": "1",
        "sms-INITIAL_FORMS": "1",
        "sms-MIN_NUM_FORMS": "0",
        "sms-MAX_NUM_FORMS": "1",
        "sms-0-id": str(sms.pk),
        "sms-0-notification": str(notification.pk),
        "sms-0-to_phone_number": sms.to_phone_number,
        "sms-0-recipient_time_zone": sms.recipient_time_zone,
        **overrides,
    }


@pytest.mark.django_db(transaction=True)
def test_save_refuses_when_a_worker_claimed_the_row_while_editing(admin_client):
    """Change page loaded while pending, a send worker claims the row, then the POST:
    it is refused, and the claim (status, claimed_datetime, claim_token) survives."""
    from notification.send.claim import claim_batch

    sms = make_sms("Reminder", "+14155550100", publish_datetime=timezone.now())
    url = reverse("admin:notification_notification_change", args=[sms.notification_id])
    page = admin_client.get(url).content.decode()
    assert 'name="editing_status"' in page and 'value="pending"' in page

    batch = claim_batch(
        now=timezone.now(), sender="+15005550006", batch_segments=10, queue_limit=100
    )
    assert [claimed.pk for claimed in batch.to_send] == [sms.pk]

    response = admin_client.post(
        url, change_form(sms, title="Edited", **{"sms-0-to_phone_number": "+14155550199"})
    )

    assert response.status_code == 200
    assert "picked up for sending" in response.content.decode()
    sms.refresh_from_db()
    sms.notification.refresh_from_db()
    assert sms.notification.status == NotificationStatusChoices.PROCESSING
    assert sms.notification.title == "Reminder"
    assert (sms.claim_token, sms.to_phone_number) == (batch.token, "+14155550100")
    assert sms.claimed_datetime is not None


def test_saving_a_pending_row_never_writes_send_job_fields(admin_client):
    """The page's stale copy of attempts/backoff/claim fields is never written back."""
    sms = make_sms("Reminder", "+14155550100")
    url = reverse("admin:notification_notification_change", args=[sms.notification_id])
    admin_client.get(url)
    # Meanwhile a failed attempt was recorded and the notification's message updated.
    retry_at = timezone.now() + datetime.timedelta(minutes=5)
    SmsNotification.objects.filter(pk=sms.pk).update(
        attempts=2, next_attempt_datetime=retry_at, error_message="Twilio error 20429"
    )
    Notification.objects.filter(pk=sms.notification_id).update(status_message="will retry")

    response = admin_client.post(
        url,
        change_form(sms, body="A new body", **{"sms-0-to_phone_number": "+14155550199"}),
    )

    assert response.status_code == 302
    sms.refresh_from_db()
    sms.notification.refresh_from_db()
    assert (sms.to_phone_number, sms.notification.body) == ("+14155550199", "A new body")
    assert (sms.attempts, sms.next_attempt_datetime, sms.error_message) == (
        2,
        retry_at,
        "Twilio error 20429",
    )
    assert sms.notification.status_message == "will retry"


def test_editing_the_body_alone_recounts_the_segments(admin_client):
    sms = make_sms("Reminder", "+14155550100")
    assert (sms.segments, sms.encoding) == (1, "gsm7")
    url = reverse("admin:notification_notification_change", args=[sms.notification_id])
    form = change_form(sms, body="x" * 200 + "😀")
    response = admin_client.post(url, form)
    assert response.status_code == 302
    sms.refresh_from_db()
    assert (sms.segments, sms.encoding) == (4, "ucs2")  # 202 UTF-16 units / 67


def test_add_records_the_creator_and_the_list_shows_it(admin_client, admin_user):
    response = admin_client.post(ADD_URL, add_form(**{"sms-0-to_phone_number": "+14155550100"}))
    assert response.status_code == 302
    notification = Notification.objects.get()
    assert notification.created_by == admin_user
    listing = admin_client.get(NOTIFICATION_CHANGELIST)
    assert "created_by" in listing.context["cl"].list_display
    cell = listing.content.decode().split("field-created_by")[1].split("</td>")[0]
    assert cell.endswith(f">{admin_user.username}"), cell


def test_admin_adds_marketing_with_a_time_zone_and_refuses_other_countries(admin_client):
    """Issue 18: category and recipient time zone in the admin, and the allow-list."""
    abroad = admin_client.post(ADD_URL, add_form(**{"sms-0-to_phone_number": "+998901234567"}))
    assert abroad.status_code == 200
    assert "SMS_ALLOWED_COUNTRIES allows only US" in abroad.content.decode()
    bad_zone = admin_client.post(
        ADD_URL,
        add_form(
            **{"sms-0-to_phone_number": "+14155550100", "sms-0-recipient_time_zone": "Mars/Base"}
        ),
    )
    assert bad_zone.status_code == 200 and "IANA time zone" in bad_zone.content.decode()
    assert Notification.objects.count() == 0

    good = admin_client.post(
        ADD_URL,
        add_form(
            category="marketing",
            **{
                "sms-0-to_phone_number": "+14155550100",
                "sms-0-recipient_time_zone": "America/Chicago",
            },
        ),
    )
    assert good.status_code == 302
    notification = Notification.objects.get()
    assert notification.category == "marketing"
    assert notification.sms.recipient_time_zone == "America/Chicago"
    marketing = admin_client.get(NOTIFICATION_CHANGELIST, {"category__exact": "marketing"})
    assert changelist_titles(marketing) == {"Hello"}
    assert (
        changelist_titles(
            admin_client.get(NOTIFICATION_CHANGELIST, {"category__exact": "transactional"})
        )
        == set()
    )
