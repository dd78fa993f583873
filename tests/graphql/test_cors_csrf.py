"""Frontends on other origins: CORS preflight, the CSRF token across login, one setting.

The browser half (a page on another origin logging in, creating and watching
over a websocket) is ``tests/project/test_browser.py``; here are the HTTP rules.
"""

import importlib

import pytest
from django.test import Client

import config.settings

FRONTEND = "http://localhost:3000"
LOGIN = 'mutation { login(username: "ann", password: "ann-password") { username } }'
ME = "query { me { username } }"


@pytest.fixture
def frontend_allowed(settings):
    settings.CORS_ALLOWED_ORIGINS = [FRONTEND]
    settings.CSRF_TRUSTED_ORIGINS = [FRONTEND]
    return settings


def post(client: Client, query: str, token: str, origin: str = FRONTEND):
    return client.post(
        "/graphql/",
        {"query": query},
        content_type="application/json",
        headers={"X-CSRFToken": token, "Origin": origin},
    )


def test_cors_origins_are_trusted_for_csrf_too(monkeypatch):
    """One variable: the settings add the CORS origins to CSRF_TRUSTED_ORIGINS (and the
    websocket handshake trusts those, ``notification.graphql.ws.consumer.trusted_origins``)."""
    monkeypatch.setenv("DJANGO_CORS_ALLOWED_ORIGINS", f"{FRONTEND}, https://app.example.com")
    monkeypatch.setenv("DJANGO_CSRF_TRUSTED_ORIGINS", "https://admin.example.com")
    try:
        reloaded = importlib.reload(config.settings)
        assert reloaded.CORS_ALLOWED_ORIGINS == [FRONTEND, "https://app.example.com"]
        assert reloaded.CSRF_TRUSTED_ORIGINS == [
            "https://admin.example.com",
            FRONTEND,
            "https://app.example.com",
        ]
    finally:
        monkeypatch.undo()
        importlib.reload(config.settings)


def test_preflight_allows_post_with_credentials_and_csrf_header(frontend_allowed, db):
    response = Client().options(
        "/graphql/",
        headers={
            "Origin": FRONTEND,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,x-csrftoken",
        },
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == FRONTEND
    assert response["Access-Control-Allow-Credentials"] == "true"
    allowed = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"content-type", "x-csrftoken"} <= allowed
    assert "POST" in response["Access-Control-Allow-Methods"]


def test_other_origins_get_no_cors_headers_and_cannot_post(frontend_allowed, make_user):
    make_user("ann")
    client = Client(enforce_csrf_checks=True)
    preflight = client.options(
        "/graphql/",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "Access-Control-Allow-Origin" not in preflight
    token = client.get("/graphql/csrf/").json()["csrfToken"]
    response = post(client, LOGIN, token, origin="http://evil.example")
    assert response.status_code == 403
    assert "sessionid" not in client.cookies


def test_a_page_on_another_origin_keeps_the_current_token_across_login(frontend_allowed, make_user):
    """The page cannot read our cookie; it gets the token from /graphql/csrf/ and then
    from each response's X-CSRFToken header, which follows login's rotation."""
    make_user("ann")
    client = Client(enforce_csrf_checks=True)
    start = client.get("/graphql/csrf/", headers={"Origin": FRONTEND})
    assert start.status_code == 200
    assert start["Access-Control-Allow-Origin"] == FRONTEND
    token = start.json()["csrfToken"]
    assert start["X-CSRFToken"]

    login = post(client, LOGIN, token)
    assert login.status_code == 200, login.content
    assert login.json()["data"]["login"] == {"username": "ann"}
    assert login["Access-Control-Allow-Credentials"] == "true"
    assert "x-csrftoken" in login["Access-Control-Expose-Headers"].lower()
    rotated = login["X-CSRFToken"]

    # Login rotated the token: the one from before is refused, the header's works.
    assert post(client, ME, token).status_code == 403
    me = post(client, ME, rotated)
    assert me.status_code == 200
    assert me.json()["data"]["me"] == {"username": "ann"}
