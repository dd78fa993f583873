"""Every public exception class of the app derives from ``SmsNotificationError``,
and keeps the base it had before (callers catching ``ValueError`` etc. still do)."""

import importlib
import inspect
import pkgutil

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

import notification
from notification.exceptions import SmsNotificationError


def public_exception_classes() -> dict[str, type[BaseException]]:
    """Every exception class defined in the app (migrations aside), by dotted name."""
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(notification.__path__, "notification."):
        if ".migrations" in module_info.name:
            continue
        module = importlib.import_module(module_info.name)
        for name, value in vars(module).items():
            if (
                inspect.isclass(value)
                and issubclass(value, BaseException)
                and value.__module__ == module.__name__
                and not name.startswith("_")
            ):
                found[f"{module.__name__}.{name}"] = value
    return found


def test_every_public_exception_derives_from_the_base():
    classes = public_exception_classes()
    assert len(classes) >= 13, sorted(classes)  # the thirteen of issue 20, at least
    outside = sorted(
        name
        for name, cls in classes.items()
        if cls is not SmsNotificationError and not issubclass(cls, SmsNotificationError)
    )
    assert outside == []


@pytest.mark.parametrize(
    ("dotted", "old_base"),
    [
        ("notification.backends.twilio_payloads.MalformedWebhook", ValueError),
        ("notification.create.changes.NotificationNotCancelable", ValidationError),
        ("notification.create.changes.ResendError", ValueError),
        ("notification.create.changes.NotificationNotFound", ValueError),
        ("notification.send.dispatch.DispatchLogError", RuntimeError),
        ("notification.connections.ResultsNotWritten", RuntimeError),
        ("notification.throttle.login.LoginLockedOut", PermissionDenied),
    ],
)
def test_each_keeps_its_module_and_its_old_base(dotted, old_base):
    module, _, name = dotted.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    assert issubclass(cls, old_base) and issubclass(cls, SmsNotificationError)


def test_a_validation_error_subclass_still_behaves_as_one():
    from notification.create.changes import NotificationNotCancelable
    from notification.models import Notification

    error = NotificationNotCancelable(Notification(status="sent"))
    assert error.code == "not_pending"
    assert error.messages == ["Only pending notifications can be canceled; this one is sent."]
