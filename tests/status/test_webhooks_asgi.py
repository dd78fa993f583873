"""The status callback's lean ASGI path (``notification.status.webhooks``), in process.

uvicorn routes ``/twilio/sms/status/`` around Django's handler; the rules must
not change on the way: signature, method, form checks, forward-only writes. The
end-to-end tests cover the same path under a real uvicorn.
"""

import asyncio

import httpx
import pytest

from notification.models import Notification, SmsNotification
from notification.status.webhooks import with_status_callback_fast_path
from tests.support.webhook_helpers import (
    PUBLIC_BASE_URL,
    STATUS_PATH,
    short_lived_db_connections,
    sign,
    status_form,
    use_test_signing,
)

SID = "SM" + "e" * 32

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def twilio_settings(settings, redis):
    use_test_signing(settings)
    with short_lived_db_connections():
        yield settings


@pytest.fixture
def sms() -> SmsNotification:
    notification = Notification.objects.create(title="t", body="b", status="sent")
    return SmsNotification.objects.create(
        notification=notification,
        to_phone_number="+14155550100",
        twilio_sid=SID,
        delivery_status="queued",
    )


async def other_paths(scope, receive, send) -> None:
    """Stands in for Django's full ASGI app."""
    await send({"type": "http.response.start", "status": 418, "headers": []})
    await send({"type": "http.response.body", "body": b"full stack"})


def request(method: str, path: str, **kwargs) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=with_status_callback_fast_path(other_paths))
        async with httpx.AsyncClient(transport=transport, base_url="http://internal") as client:
            return await client.request(method, path, **kwargs)

    return asyncio.run(go())


def signed_post(form: dict[str, str], signature: str | None = None) -> httpx.Response:
    signature = signature or sign(PUBLIC_BASE_URL + STATUS_PATH, form)
    return request("POST", STATUS_PATH, data=form, headers={"X-Twilio-Signature": signature})


def test_signed_callback_is_applied_and_answered(sms):
    response = signed_post(status_form(SID, "delivered"))
    assert (response.status_code, response.text) == (200, "updated")
    assert response.headers["content-type"].startswith("text/plain")
    sms.refresh_from_db()
    assert sms.delivery_status == "delivered"
    assert Notification.objects.get(pk=sms.notification_id).status == "delivered"
    # Replayed: answered, nothing changes.
    assert signed_post(status_form(SID, "delivered")).text == "stale"


def test_forged_missing_signature_and_wrong_method_are_refused(sms):
    form = status_form(SID, "delivered")
    assert signed_post(form, signature="forged").status_code == 403
    assert request("POST", STATUS_PATH, data=form).status_code == 403
    assert request("GET", STATUS_PATH).status_code == 405
    sms.refresh_from_db()
    assert sms.delivery_status == "queued"


def test_signed_form_without_sid_is_a_bad_request(sms):
    form = status_form(SID, "delivered")
    del form["MessageSid"], form["SmsSid"]
    assert signed_post(form).status_code == 400


def test_oversized_body_is_refused_before_parsing(sms, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    form = status_form(SID, "delivered", Padding="x" * 2000)
    assert signed_post(form).status_code == 413
    sms.refresh_from_db()
    assert sms.delivery_status == "queued"


def test_other_paths_take_the_full_stack():
    assert request("POST", "/twilio/sms/inbound/").text == "full stack"
    assert request("GET", "/graphql/").status_code == 418
