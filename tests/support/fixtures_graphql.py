"""Fixtures for GraphQL tests over HTTP through the real ``/graphql/`` view.

- ``graphql`` (function): a ``GraphQLClient`` factory. ``graphql()`` is anonymous,
  ``graphql(user)`` is logged in with a session cookie. Requests carry Django's CSRF
  token exactly as a browser frontend would (the CSRF check is enforced).
- ``make_user`` (function): ``make_user("alice", perms=["notification.add_notification"])``.
- ``staff_user`` / ``plain_user``: a staff user with add, change and view permissions on
  notifications, and a user with none.
"""

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
import redis as redis_py
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.test import Client

from notification.throttle import limits as counters

GRAPHQL_URL = "/graphql/"
NOTIFICATION_PERMISSIONS = (
    "notification.add_notification",
    "notification.change_notification",
    "notification.view_notification",
)


class GraphQLClient:
    """Posts GraphQL documents as JSON, the way a browser frontend does."""

    def __init__(self, client: Client):
        self.client = client

    def csrf_token(self) -> str:
        """The token from the ``csrftoken`` cookie, fetched by a GET first if needed.

        The GET sets the cookie whether GraphiQL is served (200) or not (404).
        """
        if "csrftoken" not in self.client.cookies:
            response = self.client.get(GRAPHQL_URL, HTTP_ACCEPT="text/html")
            assert response.status_code in (200, 404), response.content
        return self.client.cookies["csrftoken"].value

    def post(self, query: str, variables: dict[str, Any] | None = None, *, csrf: bool = True):
        headers = {"X-CSRFToken": self.csrf_token()} if csrf else {}
        return self.client.post(
            GRAPHQL_URL,
            {"query": query, "variables": variables or {}},
            content_type="application/json",
            headers=headers,
        )

    def post_body(self, body: bytes | str):
        """POST ``body`` as it is (JSON or not), with the CSRF header: for hostile bodies."""
        return self.client.post(
            GRAPHQL_URL,
            body,
            content_type="application/json",
            headers={"X-CSRFToken": self.csrf_token()},
        )

    def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The JSON response of a 200 answer (never a 500: that fails the test)."""
        response = self.post(query, variables)
        assert response.status_code == 200, (response.status_code, response.content[:2000])
        return response.json()

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """``data`` of a response that must have no GraphQL errors."""
        result = self.execute(query, variables)
        assert not result.get("errors"), result["errors"]
        return result["data"]


@pytest.fixture(autouse=True)
def fresh_throttles(redis_url: str) -> Iterator[None]:
    """Every test starts with no login failures and no request counted against anyone.

    Test databases reuse user ids and every test client shares one address, so
    counters left by one test would otherwise limit the next.
    """
    client = redis_py.Redis.from_url(redis_url)
    keys = list(client.scan_iter(f"{counters.KEY_PREFIX}*"))
    if keys:
        client.delete(*keys)
    client.close()
    yield


@pytest.fixture
def graphql(db) -> Callable[..., GraphQLClient]:
    def make(user=None) -> GraphQLClient:
        client = Client(enforce_csrf_checks=True)
        if user is not None:
            client.force_login(user)
        return GraphQLClient(client)

    return make


@pytest.fixture
def make_user(db) -> Callable[..., Any]:
    def make(username: str, perms: Iterable[str] = (), **fields: Any):
        user = get_user_model().objects.create_user(
            username=username, password=f"{username}-password", **fields
        )
        for perm in perms:
            app_label, codename = perm.split(".")
            user.user_permissions.add(
                Permission.objects.get(content_type__app_label=app_label, codename=codename)
            )
        return user

    return make


@pytest.fixture
def staff_user(make_user):
    return make_user("staff", perms=NOTIFICATION_PERMISSIONS, is_staff=True)


@pytest.fixture
def plain_user(make_user):
    return make_user("plain")
