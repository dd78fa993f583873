"""The front door (``notification.api``): a host project's calls, end to end, through
the names it imports from there only; the locmem backend sends and answers lookups."""

import re
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.module_loading import import_string

from notification import api
from notification.backends import locmem
from notification.models import Notification, NotificationStatusChoices
from notification.send.batch import run_batch
from tests.support.settings_helpers import set_sms

Status = NotificationStatusChoices
TO = "+14155550100"


def request(**overrides) -> api.SmsNotificationRequest:
    fields = {"title": "Order", "body": "Order 42 shipped", "to_phone_number": TO}
    return api.SmsNotificationRequest(**{**fields, **overrides})


@pytest.mark.django_db
def test_create_one_then_cancel_it():
    created = api.create_sms_notification(request())
    assert created.notification.status == Status.PENDING
    assert created.notification.sms.to_phone_number == TO
    canceled = api.cancel_notification(str(created.notification.pk))
    assert canceled.status == Status.CANCELED
    with pytest.raises(api.NotificationNotCancelable) as refused:
        api.cancel_notification(created.notification.pk)
    assert isinstance(refused.value, api.SmsNotificationError)


@pytest.mark.django_db
def test_create_one_refuses_bad_input_with_field_errors_and_writes_nothing():
    with pytest.raises(ValidationError) as refused:
        api.create_sms_notification(request(url="ftp://example.com/x", to_phone_number="x"))
    assert set(refused.value.error_dict) == {"url", "to_phone_number"}
    assert Notification.objects.count() == 0


@pytest.mark.django_db
def test_create_many_is_all_or_nothing():
    created = api.create_sms_notifications([request(), request(to_phone_number="+14155550101")])
    assert [c.notification.sms.to_phone_number for c in created] == [TO, "+14155550101"]
    with pytest.raises(api.BulkValidationError) as refused:
        api.create_sms_notifications([request(), request(body="")])
    assert list(refused.value.errors) == [1]
    assert isinstance(refused.value, api.SmsNotificationError)
    assert Notification.objects.count() == 2


@pytest.mark.django_db
def test_resend_requeues_a_failed_notification_and_refuses_a_pending_one():
    failed = api.create_sms_notification(request()).notification
    Notification.objects.filter(pk=failed.pk).update(status=Status.FAILED)
    assert api.resend_notification(failed.pk).status == Status.PENDING
    with pytest.raises(api.ResendError, match="unknown or failed"):
        api.resend_notification(failed.pk)
    with pytest.raises(api.NotificationNotFound):
        api.resend_notification(10**9)
    assert api.resend_notifications([failed.pk]) == []  # pending again: nothing to resend


@pytest.mark.django_db(transaction=True)
def test_reconcile_applies_the_providers_final_status(settings, redis):
    set_sms(settings, SMS_BACKEND="notification.backends.locmem.LocmemBackend")
    locmem.reset()
    heard = []

    def on_status(sender, notification_id, event, **kwargs):
        heard.append((notification_id, event["status"]))

    api.sms_status_changed.connect(on_status)
    try:
        created = api.create_sms_notification(request()).notification
        assert run_batch().sent == 1
        sid = Notification.objects.select_related("sms").get(pk=created.pk).sms.twilio_sid
        locmem.set_provider_status(sid, "delivered")
        report = api.reconcile(now=timezone.now() + timedelta(hours=1))
        assert isinstance(report, api.ReconcileReport) and report.updated == 1
        assert Notification.objects.get(pk=created.pk).status == Status.DELIVERED
        assert (created.pk, "delivered") in heard
    finally:
        api.sms_status_changed.disconnect(on_status)
        locmem.reset()


def test_the_dotted_paths_it_names_import():
    from notification.csrf import csrf_failure
    from notification.throttle.login import LoginLockoutBackend

    assert import_string(api.CSRF_FAILURE_VIEW) is csrf_failure
    assert import_string(api.LOGIN_LOCKOUT_BACKEND) is LoginLockoutBackend


def test_everything_it_lists_exists():
    missing = [name for name in api.__all__ if not hasattr(api, name)]
    assert missing == []


def test_the_readme_host_section_imports_only_from_documented_modules():
    from tests.support.fixtures_services import REPO_ROOT

    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("## Use it in your own Django project", 1)[1].split("\n## ", 1)[0]
    imported = set(re.findall(r"^\s*from (notification[\w.]*) import", section, re.MULTILINE))
    imported |= set(re.findall(r"^\s*import (notification[\w.]*)", section, re.MULTILINE))
    assert imported, "the section shows no import at all"
    assert imported <= {"notification", "notification.api", "notification.signals"}, imported
