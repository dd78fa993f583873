"""Login, logout, CSRF and anonymous access, over HTTP through the real view."""

import pytest

from tests.support.settings_helpers import sms_settings

LOGIN = """
mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password) { id username isStaff }
}
"""
ME = "query { me { username } }"


@sms_settings(GRAPHIQL=True)
def test_graphiql_is_served_in_a_browser_and_sets_the_csrf_cookie(graphql):
    client = graphql().client
    response = client.get("/graphql/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert b"graphiql" in response.content.lower()
    assert "csrftoken" in response.cookies


def test_login_sets_a_session_that_later_requests_use(graphql, staff_user):
    gql = graphql()
    user = gql.data(LOGIN, {"username": "staff", "password": "staff-password"})["login"]
    assert user == {"id": str(staff_user.pk), "username": "staff", "isStaff": True}
    assert "sessionid" in gql.client.cookies
    assert gql.data(ME) == {"me": {"username": "staff"}}


def test_wrong_password_is_an_error_and_logs_nobody_in(graphql, staff_user):
    gql = graphql()
    result = gql.execute(LOGIN, {"username": "staff", "password": "wrong"})
    assert result["data"] is None
    assert "Incorrect username/password" in result["errors"][0]["message"]
    assert gql.execute(ME)["data"] is None


def test_logout_ends_the_session(graphql, staff_user):
    gql = graphql(staff_user)
    assert gql.data("mutation { logout }") == {"logout": True}
    assert gql.execute(ME)["data"] is None


def test_cookie_authenticated_post_without_csrf_token_is_refused(graphql, staff_user):
    gql = graphql(staff_user)
    gql.csrf_token()  # the browser has the cookie; a forged cross-site POST lacks the header
    response = gql.post(ME, csrf=False)
    assert response.status_code == 403
    response = gql.post(ME, csrf=True)
    assert response.status_code == 200
    assert response.json()["data"] == {"me": {"username": "staff"}}


def test_cookie_authenticated_post_with_a_wrong_csrf_token_is_refused(graphql, staff_user):
    gql = graphql(staff_user)
    gql.csrf_token()
    response = gql.client.post(
        "/graphql/",
        {"query": ME},
        content_type="application/json",
        headers={"X-CSRFToken": "x" * 32},
    )
    assert response.status_code == 403


def test_login_post_without_csrf_token_is_refused(graphql, staff_user):
    gql = graphql()
    gql.csrf_token()
    response = gql.post(LOGIN, {"username": "staff", "password": "staff-password"}, csrf=False)
    assert response.status_code == 403
    assert "sessionid" not in gql.client.cookies


@pytest.mark.parametrize(
    "query",
    [
        "query { notifications { totalCount results { id } } }",
        'query { notification(id: "1") { id } }',
        'query { smsSegments(body: "hi") { segments } }',
        ME,
        'mutation { cancelNotification(id: "1") { errors { code } } }',
    ],
)
def test_anonymous_callers_get_a_graphql_error_not_data(graphql, query):
    result = graphql().execute(query)
    # A nullable field is nulled next to its error; a non-null one nulls all of data.
    assert not any((result["data"] or {}).values())
    assert result["errors"][0]["message"] in (
        "Log in to use this API.",
        "You need the 'notification.change_notification' permission to do this.",
    )
