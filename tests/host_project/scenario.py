"""The README's host-project steps, run in a process of their own; prints what happened as JSON.

``python -m tests.host_project.scenario`` with ``DJANGO_SETTINGS_MODULE`` set to
``tests.host_project.settings``: migrate, create a user, create a notification
through the host's merged schema over HTTP, run one send batch, subscribe to the
notification's status over the app's websocket consumer and post Twilio's signed
"delivered" callback to the app's webhook URL, report.
"""

import asyncio
import json
import os

import django
from twilio.request_validator import RequestValidator

WATCH = """
subscription Watch($ids: [ID!]) {
  smsStatus(notificationIds: $ids) {
    notificationId status deliveryStatus notification { id status }
  }
}
"""


def post_delivered_callback(sid: str) -> int:
    """What Twilio does when the handset confirms: a signed form POST to the status URL."""
    from django.db import connection
    from django.test import Client

    from notification.conf import app_settings

    path = "/twilio/sms/status/"
    form = {
        "AccountSid": app_settings.TWILIO_ACCOUNT_SID,
        "MessageSid": sid,
        "MessageStatus": "delivered",
        "SmsSid": sid,
        "SmsStatus": "delivered",
        "To": "+14155550100",
    }
    signature = RequestValidator(app_settings.TWILIO_AUTH_TOKEN).compute_signature(
        app_settings.PUBLIC_BASE_URL + path, form
    )
    try:
        return Client().post(path, data=form, HTTP_X_TWILIO_SIGNATURE=signature).status_code
    finally:
        connection.close()  # this thread's own connection


class Socket:
    """An ASGI websocket client on the host's websocket app (asgiref's communicator:
    channels' own needs daphne, which a host project need not install)."""

    def __init__(self, application, headers: list[tuple[bytes, bytes]]) -> None:
        from asgiref.testing import ApplicationCommunicator

        scope = {
            "type": "websocket",
            "path": "/graphql/",
            "query_string": b"",
            "headers": headers,
            "subprotocols": ["graphql-transport-ws"],
            "client": ("127.0.0.1", 50000),
            "server": ("testserver", 80),
        }
        self.communicator = ApplicationCommunicator(application, scope)

    async def connect(self) -> None:
        await self.communicator.send_input({"type": "websocket.connect"})
        answer = await self.communicator.receive_output(timeout=10)
        assert answer["type"] == "websocket.accept", answer

    async def send(self, message: dict) -> None:
        await self.communicator.send_input(
            {"type": "websocket.receive", "text": json.dumps(message)}
        )

    async def receive(self) -> dict:
        answer = await self.communicator.receive_output(timeout=10)
        assert answer["type"] == "websocket.send", answer
        return json.loads(answer["text"])

    async def close(self) -> None:
        await self.communicator.send_input({"type": "websocket.disconnect", "code": 1000})
        await self.communicator.wait(timeout=10)


async def watch_until_delivered(notification_id: str, session_cookie: str, sid: str) -> dict:
    """Subscribe over the app's websocket consumer, then make the status change."""
    from notification.api import graphql_ws_application
    from tests.host_project.schema import schema

    socket = Socket(
        graphql_ws_application(schema),
        headers=[(b"host", b"testserver"), (b"cookie", session_cookie.encode())],
    )
    await socket.connect()
    await socket.send({"type": "connection_init"})
    assert (await socket.receive())["type"] == "connection_ack"
    subscribe = {"query": WATCH, "variables": {"ids": [notification_id]}}
    await socket.send({"id": "1", "type": "subscribe", "payload": subscribe})
    current = await socket.receive()
    callback_status = await asyncio.to_thread(post_delivered_callback, sid)
    changed = await socket.receive()
    await socket.close()
    return {
        "callback_status": callback_status,
        "events": [message["payload"]["data"]["smsStatus"] for message in (current, changed)],
    }


def main() -> dict:
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from notification.backends import locmem
    from notification.models import Notification
    from notification.send.batch import run_batch

    call_command("migrate", verbosity=0)
    staff = get_user_model().objects.create_superuser("host-admin", password="x")
    client = Client()
    client.force_login(staff)
    query = """
      mutation Create($input: CreateSmsNotificationInput!) {
        createSmsNotification(input: $input) { notification { id status } errors { code } }
      }
    """
    variables = {
        "input": {"title": "Hi", "body": "Hello from the host", "toPhoneNumber": "+14155550100"}
    }
    created = client.post(
        "/graphql/", {"query": query, "variables": variables}, content_type="application/json"
    ).json()
    shop = client.post("/graphql/", {"query": "{ shopName }"}, content_type="application/json")
    # Typos next to the host's own field and the app's: with introspection off (DEBUG
    # is off here) no answer may suggest the names it was close to.
    probes = [
        client.post("/graphql/", {"query": q}, content_type="application/json").json()
        for q in ("{ shopNam }", "{ notificatons { totalCount } }")
    ]
    report = run_batch()
    notification = Notification.objects.select_related("sms").get()
    watched = asyncio.run(
        watch_until_delivered(
            str(notification.pk),
            f"sessionid={client.cookies['sessionid'].value}",
            notification.sms.twilio_sid,
        )
    )
    readyz = Client().get("/readyz")
    import notification as app_package

    return {
        "django": django.get_version(),
        "app_installed_at": os.path.dirname(app_package.__file__),
        **watched,
        "healthz": Client().get("/healthz").status_code,
        "readyz": [readyz.status_code, readyz.json()],
        "metrics": Client().get("/metrics").status_code,
        "created": created,
        "shop_name": shop.json()["data"]["shopName"],
        "probe_errors": [e["message"] for probe in probes for e in probe["errors"]],
        "sent": report.sent,
        "outbox": [{"to": m.to, "body": m.body} for m in locmem.outbox],
        "status": notification.status,
        "delivery_status": notification.sms.delivery_status,
        "sid": notification.sms.twilio_sid,
    }


if __name__ == "__main__":
    print(json.dumps(main()))
