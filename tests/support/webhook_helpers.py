"""Posting Twilio-signed webhooks to the Django test client.

Signatures come from the SDK's own ``RequestValidator.compute_signature``, the
same code Twilio's documentation points to, so the test signs exactly as Twilio.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections
from django.test import Client
from twilio.request_validator import RequestValidator

from notification.connections import close_connections as close_webhook_db_connections
from notification.models import Notification, NotificationStatusChoices, SmsNotification
from tests.support.settings_helpers import set_sms

AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
PUBLIC_BASE_URL = "https://sms.example.org"
STATUS_PATH = "/twilio/sms/status/"
INBOUND_PATH = "/twilio/sms/inbound/"


def use_test_signing(settings) -> None:
    """Have the app check signatures with ``AUTH_TOKEN`` for ``PUBLIC_BASE_URL``.

    Those are what ``sign`` and ``post_signed`` sign with, so a test's settings
    must match them for a correctly signed callback to be accepted.
    """
    set_sms(settings, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    set_sms(settings, PUBLIC_BASE_URL=PUBLIC_BASE_URL)


def sign(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def post_signed(
    client: Client,
    path: str,
    params: dict[str, str],
    *,
    signed_url: str | None = None,
    token: str = AUTH_TOKEN,
    signature: str | None = None,
    **extra,
):
    """POST ``params`` form-encoded with a valid signature unless told otherwise."""
    url = signed_url if signed_url is not None else PUBLIC_BASE_URL + path
    if signature is None:
        signature = sign(url, params, token)
    return client.post(path, data=params, HTTP_X_TWILIO_SIGNATURE=signature, **extra)


def status_form(sid: str, status: str, error_code: int | None = None, **more: str) -> dict:
    form = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "From": "+15005550006",
        "MessageSid": sid,
        "MessageStatus": status,
        "SmsSid": sid,
        "SmsStatus": status,
        "To": "+14155550100",
    }
    if error_code is not None:
        form["ErrorCode"] = str(error_code)
    form.update(more)
    return form


def inbound_form(body: str, from_: str = "+14155550123") -> dict:
    return {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "Body": body,
        "From": from_,
        "MessageSid": "SM" + "f" * 32,
        "NumMedia": "0",
        "SmsStatus": "received",
        "To": "+15005550006",
    }


@contextmanager
def short_lived_db_connections() -> Iterator[None]:
    """CONN_MAX_AGE=0 for connections opened meanwhile, in any thread.

    Threads that do database work for async code keep their connections (as
    they should in a server); in a test process they would keep the test
    database busy when pytest-django drops it. Thread connections share this
    settings dict, so with 0 each is closed right after its use; the status
    view's own database threads ignore 0 (``notification.connections``) and are
    closed explicitly at the end.
    """
    settings_dict = connections["default"].settings_dict
    saved = settings_dict.get("CONN_MAX_AGE", 0)
    settings_dict["CONN_MAX_AGE"] = 0
    try:
        yield
    finally:
        settings_dict["CONN_MAX_AGE"] = saved
        # The status view's database threads keep their connections by design.
        close_webhook_db_connections()


def queued_sms(sid: str) -> SmsNotification:
    """An SMS Twilio accepted (``queued``) whose notification the send job marked sent."""
    notification = Notification.objects.create(
        title="Hello", body="Your parcel is on its way", status=NotificationStatusChoices.SENT
    )
    return SmsNotification.objects.create(
        notification=notification,
        to_phone_number="+14155550100",
        twilio_sid=sid,
        delivery_status="queued",
    )
