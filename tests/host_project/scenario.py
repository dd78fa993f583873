"""The README's host-project steps, run in a process of their own; prints what happened as JSON.

``python -m tests.host_project.scenario`` with ``DJANGO_SETTINGS_MODULE`` set to
``tests.host_project.settings``: migrate, create a user, create a notification
through the host's merged schema over HTTP, run one send batch, report.
"""

import json

import django


def main() -> dict:
    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client

    from notification.backends import locmem
    from notification.models import Notification
    from notification.sending.batch import run_batch

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
    return {
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
