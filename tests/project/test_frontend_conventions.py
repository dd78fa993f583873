"""What a frontend team's day-one tools expect: GraphQL errors for CSRF failures, and
subscription events a normalized cache (Apollo Client, urql's graphcache) applies by id.

``NormalizedCache`` below is Apollo Client's cache algorithm reduced to what the
test needs: every object with ``__typename`` and ``id`` is stored once under
``"Typename:id"`` (Apollo's default ``dataIdFromObject``), results hold
references, and writing any result, a subscription event included, merges the
fields it carries into those entries. No code here knows what an
``SmsStatusEvent`` means: if the event carries the notification, the query
result read back changes; if not, it stays stale, as it did before (every
frontend then wrote ``cache.modify`` by hand).
"""

import asyncio
import json
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from notification.csrf import CSRF_FAILED_CODE
from notification.models import Notification, SmsNotification
from tests.support.live_support import HttpSession, TransportWsClient, serve_project
from tests.support.webhook_helpers import STATUS_PATH, sign, status_form

PASSWORD = "correct horse battery staple"
SID = "SM" + "7" * 32

NOTIFICATION_QUERY = """
query One($id: ID!) {
  notification(id: $id) { __typename id title status sms { __typename id deliveryStatus } }
}
"""
# What a frontend subscribes with once the event carries the notification.
WATCH_WITH_NOTIFICATION = """
subscription Watch($ids: [ID!]) {
  smsStatus(notificationIds: $ids) {
    notificationId status deliveryStatus
    notification { __typename id status sms { __typename id deliveryStatus } }
  }
}
"""


class NormalizedCache:
    """Apollo Client's normalization: one entry per ``__typename:id``, results hold refs."""

    def __init__(self) -> None:
        self.entities: dict[str, dict[str, Any]] = {}
        self.roots: dict[str, Any] = {}

    def _normalize(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._normalize(item) for item in value]
        if not isinstance(value, dict):
            return value
        fields = {name: self._normalize(field) for name, field in value.items()}
        if "__typename" in value and "id" in value:
            key = f"{value['__typename']}:{value['id']}"
            self.entities.setdefault(key, {}).update(fields)  # merge, as Apollo does
            return {"__ref": key}
        return fields

    def write(self, operation: str, data: dict[str, Any]) -> None:
        self.roots[operation] = self._normalize(data)

    def _denormalize(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self._denormalize(item) for item in value]
        if not isinstance(value, dict):
            return value
        if "__ref" in value:
            value = self.entities[value["__ref"]]
        return {name: self._denormalize(field) for name, field in value.items()}

    def read(self, operation: str) -> dict[str, Any]:
        return self._denormalize(self.roots[operation])


# --- CSRF: a GraphQL error on /graphql/, Django's page elsewhere ------------------------


@pytest.mark.django_db
def test_a_csrf_failure_on_graphql_is_a_graphql_error_with_a_fresh_token():
    user = get_user_model().objects.create_user("ann", password=PASSWORD)
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    body = json.dumps({"query": "{ me { username } }"})

    refused = client.post("/graphql/", body, content_type="application/json")

    assert refused.status_code == 403
    assert refused["Content-Type"] == "application/json"
    error = refused.json()["errors"][0]
    assert error["extensions"] == {"code": CSRF_FAILED_CODE}
    assert "X-CSRFToken" in error["message"]
    # The answer carries the token to retry with (a frontend keeps the last one it saw).
    token = refused["X-CSRFToken"]
    retried = client.post(
        "/graphql/", body, content_type="application/json", headers={"X-CSRFToken": token}
    )
    assert retried.status_code == 200
    assert retried.json() == {"data": {"me": {"username": "ann"}}}


@pytest.mark.django_db
def test_a_stale_csrf_token_on_graphql_is_the_same_graphql_error():
    client = Client(enforce_csrf_checks=True)
    client.get("/graphql/csrf/")  # sets the cookie
    refused = client.post(
        "/graphql/",
        json.dumps({"query": "{ me { username } }"}),
        content_type="application/json",
        headers={"X-CSRFToken": "a" * 32},
    )
    assert refused.status_code == 403
    assert refused.json()["errors"][0]["extensions"]["code"] == CSRF_FAILED_CODE


@pytest.mark.django_db
def test_a_csrf_failure_elsewhere_keeps_djangos_page():
    client = Client(enforce_csrf_checks=True)
    refused = client.post("/admin/login/", {"username": "ann", "password": PASSWORD})
    assert refused.status_code == 403
    assert refused["Content-Type"].startswith("text/html")
    assert b"CSRF verification failed" in refused.content


# --- Subscription events update a normalized cache ----------------------------------------


@pytest.fixture
def live_server_url(transactional_db, django_db_blocker, redis_url):
    with serve_project(django_db_blocker, redis_url) as url:
        yield url


def test_a_normalizing_client_updates_its_cached_notification_from_an_event(live_server_url):
    ann = get_user_model().objects.create_user("ann", password=PASSWORD)
    notification = Notification.objects.create(title="Order 42", body="b", status="sent", user=ann)
    SmsNotification.objects.create(
        notification=notification,
        to_phone_number="+14155550100",
        twilio_sid=SID,
        delivery_status="queued",
    )
    session = HttpSession(live_server_url).login("ann", PASSWORD)
    cache = NormalizedCache()
    variables = {"id": str(notification.pk)}
    try:
        cache.write("One", session.graphql(NOTIFICATION_QUERY, variables)["data"])
        before = cache.read("One")["notification"]
        assert (before["status"], before["sms"]["deliveryStatus"]) == ("SENT", "QUEUED")

        async def scenario() -> None:
            ws = await TransportWsClient.connect(session.ws_url, session.cookie_header)
            await ws.subscribe(WATCH_WITH_NOTIFICATION, {"ids": [str(notification.pk)]})
            cache.write("Watch", {"smsStatus": await ws.next_event()})  # the current status
            form = status_form(SID, "delivered")
            response = await asyncio.to_thread(
                session.client.post,
                STATUS_PATH,
                data=form,
                headers={"X-Twilio-Signature": sign(session.base_url + STATUS_PATH, form)},
            )
            assert response.status_code == 200, response.text
            event = await ws.next_event()
            assert event["notification"]["id"] == str(notification.pk)
            cache.write("Watch", {"smsStatus": event})
            await ws.close()

        asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        session.close()

    after = cache.read("One")["notification"]  # the query's result, never touched by hand
    assert (after["status"], after["sms"]["deliveryStatus"]) == ("DELIVERED", "DELIVERED")
    assert after["title"] == "Order 42"  # fields the event did not carry are kept


@pytest.mark.django_db
def test_the_event_carries_the_notification_in_the_schema():
    """Every earlier field stays (add, don't rename); ``notification`` is the new one."""
    from schema.schema import schema

    event_type = schema.get_type_by_name("SmsStatusEvent")
    names = {field.python_name for field in event_type.fields}
    assert {
        "notification_id",
        "status",
        "delivery_status",
        "error_code",
        "error_message",
        "at",
    } <= names
    assert "notification" in names
