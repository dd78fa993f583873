"""Issue 10's defects on the GraphQL-over-HTTP surface: each test failed on the main
before it (regex filters, malformed bodies, raw exception text, unnamed operations)."""

import datetime

import pytest

from notification.create.creation import SmsNotificationRequest, create_sms_notification
from notification.models import Notification, SmsNotification
from notification.values import NUL_MESSAGE, SURROGATE_MESSAGE
from tests.support.fixtures_graphql import GRAPHQL_URL

CREATE = """
mutation Create($input: CreateSmsNotificationInput!) {
  createSmsNotification(input: $input) {
    notification { id }
    errors { field code message }
  }
}
"""

#: Python's own wording, which must never reach a client as an error message.
PYTHON_EXCEPTION_TEXT = (
    "codec can't",
    "surrogates not allowed",
    "out of range",
    "invalid literal",
    "too large",
    "Negative indexing",
    "has no attribute",
    "NoneType",
    "Traceback",
    "maximum recursion",
)


def no_python_text(response_json: dict) -> None:
    for error in response_json.get("errors") or []:
        for marker in PYTHON_EXCEPTION_TEXT:
            assert marker not in error["message"], error


def valid_input(**overrides):
    return {
        "title": "Order shipped",
        "body": "Your order is on its way.",
        "toPhoneNumber": "+14155550100",
        **overrides,
    }


def make(title: str) -> Notification:
    return create_sms_notification(
        SmsNotificationRequest(title=title, body="b", to_phone_number="+14155550100")
    ).notification


# --- Defect 1: catastrophic regular expressions ------------------------------------


@pytest.mark.parametrize("lookup", ["regex", "iRegex"])
@pytest.mark.parametrize(
    "filters",
    [
        lambda lookup: {"title": {lookup: "((.*)*)*x"}},
        lambda lookup: {"sms": {"toPhoneNumber": {lookup: "((.*)*)*x"}}},
    ],
)
def test_regex_lookups_are_not_offered_so_no_pattern_reaches_a_backtracking_engine(
    graphql, staff_user, lookup, filters
):
    make("aaaaaaaaaaaaa")  # 13 characters: about 5 s of backtracking on SQLite before
    result = graphql(staff_user).execute(
        "query($f: NotificationFilter) { notifications(filters: $f) { totalCount } }",
        {"f": filters(lookup)},
    )
    assert result.get("data") is None
    assert lookup in result["errors"][0]["message"]


def test_linear_text_lookups_still_filter(graphql, staff_user):
    make("Order shipped")
    make("Invoice")
    result = graphql(staff_user).data(
        'query { notifications(filters: {title: {iContains: "ORDER"}}) { totalCount } }'
    )
    assert result["notifications"]["totalCount"] == 1


# --- Defect 5: malformed bodies -----------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"null", b"42", b'"s"', b"true", b"\xff\xfe{}", b"[" * 100_000, b"{" + b'"a":[' * 50_000],
    ids=["null", "number", "string", "true", "invalid-utf8", "deep-array", "deep-object"],
)
def test_malformed_body_is_a_400_with_a_graphql_error(graphql, staff_user, body):
    response = graphql(staff_user).post_body(body)
    assert response.status_code == 400
    result = response.json()
    assert result["data"] is None
    assert result["errors"][0]["extensions"]["code"] == "bad_request"
    no_python_text(result)


def test_deeply_nested_variables_are_refused_cleanly(graphql, staff_user):
    nested = "[" * 5000 + "]" * 5000
    body = f'{{"query": "{{ me {{ id }} }}", "variables": {{"x": {nested}}}}}'
    response = graphql(staff_user).post_body(body)
    assert response.status_code == 400
    no_python_text(response.json())


# --- Defect 7: raw exception text ---------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"title": "a\ud800b"}, "title", SURROGATE_MESSAGE),
        ({"body": "x\udfff"}, "body", SURROGATE_MESSAGE),
        ({"url": "https://example.com/\ud800"}, "url", SURROGATE_MESSAGE),
        ({"contentType": "auth.\ud800"}, "contentType", SURROGATE_MESSAGE),
        ({"title": "a\x00b"}, "title", NUL_MESSAGE),
    ],
)
def test_unstorable_text_is_a_field_error(graphql, staff_user, overrides, field, message):
    result = graphql(staff_user).data(CREATE, {"input": valid_input(**overrides)})
    payload = result["createSmsNotification"]
    assert payload["errors"] == [{"field": field, "code": "invalid", "message": message}]
    assert Notification.objects.count() == SmsNotification.objects.count() == 0


@pytest.mark.parametrize("publish", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_publish_time_outside_utc_years_is_a_field_error(graphql, staff_user, publish):
    result = graphql(staff_user).data(CREATE, {"input": valid_input(publishDatetime=publish)})
    errors = result["createSmsNotification"]["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("publishDatetime", "invalid")]
    assert Notification.objects.count() == 0


def test_extreme_but_valid_publish_time_is_accepted(graphql, staff_user):
    result = graphql(staff_user).data(
        CREATE, {"input": valid_input(publishDatetime="0001-01-01T00:00:00-14:00")}
    )
    assert result["createSmsNotification"]["errors"] == []
    stored = Notification.objects.get().publish_datetime
    assert stored == datetime.datetime(1, 1, 1, 14, 0, tzinfo=datetime.UTC)


def test_negative_offset_is_an_invalid_error(graphql, staff_user):
    make("one")
    result = graphql(staff_user).execute(
        "query { notifications(pagination: {offset: -1}) { totalCount results { id } } }"
    )
    assert result["data"] is None
    assert result["errors"][0]["extensions"] == {"code": "invalid", "field": "pagination.offset"}
    no_python_text(result)


@pytest.mark.parametrize("value", ["\ud800", "a\x00"])
def test_unstorable_filter_text_is_an_invalid_error(graphql, staff_user, value):
    result = graphql(staff_user).execute(
        "query($f: NotificationFilter) { notifications(filters: $f) { totalCount } }",
        {"f": {"title": {"contains": value}}},
    )
    assert result["data"] is None
    assert result["errors"][0]["extensions"]["code"] == "invalid"
    no_python_text(result)


@pytest.mark.parametrize("value", ["9" * 30, "²", "-1", "0"])
def test_impossible_ids_never_surface_python_errors(graphql, staff_user, value):
    gql = graphql(staff_user)
    for query in (
        "query($id: ID!) { notification(id: $id) { id } }",
        "mutation($id: ID!) { cancelNotification(id: $id) { errors { field code } } }",
        "mutation($id: ID!) { resendNotification(id: $id) { errors { field code } } }",
    ):
        result = gql.execute(query, {"id": value})
        no_python_text(result)
        assert not result.get("errors"), result


# --- Defect 8: several operations without operationName -------------------------------

TWO_OPERATIONS = "query A { me { username } } mutation B { logout }"


def test_several_operations_without_a_name_are_refused_not_the_first_run(graphql, staff_user):
    gql = graphql(staff_user)
    result = gql.execute(TWO_OPERATIONS)
    assert result["data"] is None
    assert result["errors"][0]["extensions"]["code"] == "operation_name_required"
    # Naming one runs that one only.
    response = gql.client.post(
        GRAPHQL_URL,
        {"query": TWO_OPERATIONS, "operationName": "A"},
        content_type="application/json",
        headers={"X-CSRFToken": gql.csrf_token()},
    )
    assert response.json() == {"data": {"me": {"username": "staff"}}}
