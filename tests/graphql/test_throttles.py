"""Issue 10's limits over HTTP: login lockout (GraphQL and admin), per-user request
rates, the hourly SMS segment quota, and the query cost limits.

Each refusal must be a GraphQL error with a stable code and ``retryAfter`` (or a
plain refusal on the admin form), never a 500, and must leave other users alone.
"""

import pytest
from django.test import Client

from devstack.ports import free_port
from notification.models import Notification, SmsNotification
from notification.throttle import limits as counters
from tests.support.fixtures_graphql import GRAPHQL_URL, GraphQLClient
from tests.support.settings_helpers import sms_settings

LOGIN = """
mutation Login($username: String!, $password: String!) {
  login(username: $username, password: $password) { username }
}
"""
SEGMENTS = 'query { smsSegments(body: "hello") { segments } }'
CREATE = """
mutation Create($input: CreateSmsNotificationInput!) {
  createSmsNotification(input: $input) { notification { id } errors { field code } }
}
"""
CREATE_MANY = """
mutation CreateMany($input: [CreateSmsNotificationInput!]!) {
  createSmsNotifications(input: $input) { notifications { id } errors { field code index } }
}
"""
#: A GSM-7 body of exactly three segments (153 characters each once concatenated).
THREE_SEGMENTS = "x" * 400


def anonymous(address: str = "127.0.0.1") -> GraphQLClient:
    return GraphQLClient(Client(enforce_csrf_checks=True, REMOTE_ADDR=address))


def login(gql: GraphQLClient, username: str, password: str) -> dict:
    return gql.execute(LOGIN, {"username": username, "password": password})


def refusal(result: dict) -> dict:
    assert result["data"] is None, result
    return result["errors"][0]["extensions"]


def item(body: str = "hello", **overrides) -> dict:
    return {"title": "t", "body": body, "toPhoneNumber": "+14155550100", **overrides}


# --- Login lockout ------------------------------------------------------------------


@sms_settings(LOGIN_MAX_FAILURES=3, LOGIN_LOCKOUT_SECONDS=900)
def test_failed_logins_lock_the_account_even_for_the_right_password(graphql, staff_user):
    gql = anonymous()
    for _ in range(3):
        assert "Incorrect" in login(gql, "staff", "wrong")["errors"][0]["message"]
    locked = refusal(login(gql, "staff", "staff-password"))
    assert locked["code"] == "login_locked"
    assert 0 < locked["retryAfter"] <= 900
    assert "sessionid" not in gql.client.cookies
    # From another address too: the account itself is locked.
    assert refusal(login(anonymous("192.0.2.7"), "staff", "staff-password"))["code"] == (
        "login_locked"
    )


@sms_settings(LOGIN_MAX_FAILURES=3)
def test_failed_logins_lock_the_address_for_every_account(graphql, make_user):
    make_user("alice")
    make_user("bob")
    gql = anonymous("192.0.2.1")
    for name in ("alice", "bob", "carol"):  # one guess per account, all from one address
        login(gql, name, "wrong")
    assert refusal(login(gql, "alice", "alice-password"))["code"] == "login_locked"
    # Another address may still log alice in.
    other = anonymous("192.0.2.2")
    assert other.data(LOGIN, {"username": "alice", "password": "alice-password"}) == {
        "login": {"username": "alice"}
    }


@sms_settings(LOGIN_MAX_FAILURES=3)
def test_a_successful_login_forgives_the_accounts_earlier_failures(graphql, staff_user):
    for address in ("192.0.2.1", "192.0.2.2"):
        gql = anonymous(address)
        login(gql, "staff", "wrong")
        login(gql, "staff", "wrong")
        assert gql.data(LOGIN, {"username": "staff", "password": "staff-password"})


@sms_settings(LOGIN_MAX_FAILURES=3, LOGIN_LOCKOUT_SECONDS=120)
def test_the_lockout_is_a_window_that_ends(graphql, staff_user, redis):
    gql = anonymous()
    for _ in range(3):
        login(gql, "staff", "wrong")
    keys = list(redis.scan_iter(f"{counters.KEY_PREFIX}login:*"))
    assert len(keys) == 2  # the account and the address
    assert all(0 < redis.ttl(key) <= 120 for key in keys)
    redis.delete(*keys)  # what the window's end does
    assert gql.data(LOGIN, {"username": "staff", "password": "staff-password"})


@sms_settings(LOGIN_MAX_FAILURES=0)
def test_zero_turns_the_lockout_off(graphql, staff_user):
    gql = anonymous()
    for _ in range(20):
        login(gql, "staff", "wrong")
    assert gql.data(LOGIN, {"username": "staff", "password": "staff-password"})


@sms_settings(LOGIN_MAX_FAILURES=3)
def test_admin_login_shares_the_lockout(graphql, staff_user):
    admin = Client(REMOTE_ADDR="192.0.2.9")
    for _ in range(3):
        response = admin.post(
            "/admin/login/", {"username": "staff", "password": "wrong", "next": "/admin/"}
        )
        assert response.status_code == 200  # the form again, with its error
    response = admin.post(
        "/admin/login/", {"username": "staff", "password": "staff-password", "next": "/admin/"}
    )
    assert response.status_code == 200
    assert "_auth_user_id" not in admin.session
    # The same account is locked for GraphQL too: one counter, whatever the door.
    assert refusal(login(anonymous(), "staff", "staff-password"))["code"] == "login_locked"


@sms_settings(LOGIN_MAX_FAILURES=3)
def test_graphql_failures_lock_the_admin_login(graphql, staff_user):
    gql = anonymous("192.0.2.3")
    for _ in range(3):
        login(gql, "staff", "wrong")
    admin = Client(REMOTE_ADDR="192.0.2.4")
    admin.post("/admin/login/", {"username": "staff", "password": "staff-password"})
    assert "_auth_user_id" not in admin.session


# --- Per-user request rates -----------------------------------------------------------


@sms_settings(GRAPHQL_USER_RATE=3)
def test_sms_segments_is_rate_limited_per_user(graphql, staff_user, plain_user):
    gql = graphql(staff_user)
    for _ in range(3):
        assert gql.data(SEGMENTS) == {"smsSegments": {"segments": 1}}
    limited = refusal(gql.execute(SEGMENTS))
    assert limited["code"] == "rate_limited"
    assert 0 < limited["retryAfter"] <= 60
    # Another user keeps their budget, and so does this user's own create mutation.
    assert graphql(plain_user).data(SEGMENTS) == {"smsSegments": {"segments": 1}}
    assert gql.data(CREATE, {"input": item()})["createSmsNotification"]["errors"] == []


@sms_settings(GRAPHQL_USER_RATE=2)
@pytest.mark.parametrize(
    ("document", "variables"),
    [
        (CREATE, {"input": item()}),
        (CREATE_MANY, {"input": [item(), item()]}),
        ('mutation { resendNotification(id: "1") { errors { code } } }', {}),
    ],
)
def test_sms_sending_mutations_are_rate_limited(graphql, staff_user, document, variables):
    gql = graphql(staff_user)
    for _ in range(2):
        assert not gql.execute(document, variables).get("errors")
    written = Notification.objects.count()
    assert refusal(gql.execute(document, variables))["code"] == "rate_limited"
    assert Notification.objects.count() == written == SmsNotification.objects.count()


@sms_settings(GRAPHQL_USER_RATE=0)
def test_zero_turns_the_rate_limit_off(graphql, staff_user):
    gql = graphql(staff_user)
    for _ in range(100):
        gql.data(SEGMENTS)


# --- Hourly segment quota -------------------------------------------------------------


@sms_settings(SMS_USER_SEGMENTS_PER_HOUR=5, GRAPHQL_USER_RATE=0)
def test_segment_quota_refuses_what_would_pass_the_cap_and_writes_nothing(graphql, staff_user):
    gql = graphql(staff_user)
    assert (
        gql.data(CREATE, {"input": item(THREE_SEGMENTS)})["createSmsNotification"]["errors"] == []
    )
    over = refusal(gql.execute(CREATE, {"input": item(THREE_SEGMENTS)}))
    assert over["code"] == "sms_quota_exceeded"
    assert 0 < over["retryAfter"] <= 3600
    assert Notification.objects.count() == SmsNotification.objects.count() == 1
    # Two segments still fit; the refused request did not use up the quota.
    assert gql.data(CREATE, {"input": item("x" * 300)})["createSmsNotification"]["errors"] == []


@sms_settings(SMS_USER_SEGMENTS_PER_HOUR=5, GRAPHQL_USER_RATE=0)
def test_segment_quota_counts_a_bulk_request_whole(graphql, staff_user):
    gql = graphql(staff_user)
    result = gql.execute(CREATE_MANY, {"input": [item(THREE_SEGMENTS), item(THREE_SEGMENTS)]})
    assert refusal(result)["code"] == "sms_quota_exceeded"
    assert Notification.objects.count() == 0


@sms_settings(SMS_USER_SEGMENTS_PER_HOUR=3, GRAPHQL_USER_RATE=0)
def test_invalid_and_replayed_creates_use_no_quota(graphql, staff_user):
    gql = graphql(staff_user)
    invalid = item(THREE_SEGMENTS, toPhoneNumber="not a number")
    assert gql.data(CREATE, {"input": invalid})["createSmsNotification"]["errors"]
    keyed = item(THREE_SEGMENTS, idempotencyKey="k-1")
    assert gql.data(CREATE, {"input": keyed})["createSmsNotification"]["errors"] == []
    # The replay creates nothing, so it is not refused and costs nothing.
    assert gql.data(CREATE, {"input": keyed})["createSmsNotification"]["errors"] == []
    assert refusal(gql.execute(CREATE, {"input": item()}))["code"] == "sms_quota_exceeded"


@sms_settings(SMS_USER_SEGMENTS_PER_HOUR=0, GRAPHQL_USER_RATE=0)
def test_segment_quota_can_be_turned_off(graphql, staff_user):
    gql = graphql(staff_user)
    result = gql.data(CREATE_MANY, {"input": [item(THREE_SEGMENTS)] * 20})
    assert result["createSmsNotifications"]["errors"] == []


def test_limits_let_requests_through_when_redis_is_unreachable(graphql, staff_user):
    with sms_settings(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", GRAPHQL_USER_RATE=1):
        gql = graphql(staff_user)
        for _ in range(3):
            assert gql.data(SEGMENTS) == {"smsSegments": {"segments": 1}}
        assert anonymous().data(LOGIN, {"username": "staff", "password": "staff-password"})


# --- Query cost -------------------------------------------------------------------------


@sms_settings(GRAPHQL_MAX_DEPTH=2)  # levels below the root field
def test_too_deep_a_query_is_refused_before_it_runs(graphql, staff_user):
    gql = graphql(staff_user)
    deep = "query { notifications { results { sms { toPhoneNumber } } } }"
    assert refusal(gql.execute(deep))["code"] == "query_too_deep"
    assert gql.data("query { notifications { results { id } } }")


@sms_settings(GRAPHQL_MAX_ALIASES=15)
def test_too_many_aliases_are_refused(graphql, staff_user):
    gql = graphql(staff_user)
    fields = " ".join(f"a{i}: __typename" for i in range(16))
    assert refusal(gql.execute(f"query {{ {fields} }}"))["code"] == "too_many_aliases"
    fields = " ".join(f"a{i}: __typename" for i in range(15))
    assert len(gql.data(f"query {{ {fields} }}")) == 15


def test_a_10000_alias_segments_query_stops_at_the_token_limit(graphql, staff_user):
    gql = graphql(staff_user)
    fields = " ".join(f'a{i}: smsSegments(body: "hi") {{ segments }}' for i in range(10_000))
    result = gql.execute(f"query {{ {fields} }}")
    assert refusal(result)["code"] == "too_many_tokens"


@sms_settings(
    GRAPHQL_MAX_DEPTH=0, GRAPHQL_MAX_ALIASES=0, GRAPHQL_MAX_TOKENS=0, GRAPHQL_MAX_FIELDS=0
)
def test_zero_turns_the_cost_limits_off(graphql, staff_user):
    gql = graphql(staff_user)
    fields = " ".join(f"a{i}: __typename" for i in range(2_000))
    assert len(gql.data(f"query {{ {fields} }}")) == 2_000


INTROSPECTION = "query { __schema { queryType { name } } }"


def test_introspection_follows_debug_when_not_set(graphql):
    with sms_settings(DEBUG=False, GRAPHQL_INTROSPECTION=None):
        assert refusal(anonymous().execute(INTROSPECTION))["code"] == "introspection_disabled"
    with sms_settings(DEBUG=True, GRAPHQL_INTROSPECTION=None):
        assert anonymous().data(INTROSPECTION) == {"__schema": {"queryType": {"name": "Query"}}}


def test_introspection_setting_wins_over_debug(graphql):
    with sms_settings(DEBUG=False, GRAPHQL_INTROSPECTION=True):
        assert anonymous().data(INTROSPECTION)
    with sms_settings(DEBUG=True, GRAPHQL_INTROSPECTION=False):
        assert refusal(anonymous().execute(INTROSPECTION))["code"] == "introspection_disabled"


def test_graphiql_page_follows_its_setting_and_the_csrf_cookie_is_always_set(graphql):
    for enabled, status in ((True, 200), (False, 404)):
        with sms_settings(GRAPHIQL=enabled):
            response = Client().get(GRAPHQL_URL, HTTP_ACCEPT="text/html")
            assert response.status_code == status
            assert "csrftoken" in response.cookies
