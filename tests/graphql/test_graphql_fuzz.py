"""Property-based fuzzing (Hypothesis) of every mutation's input, over the real view.

Whatever a client sends, as variables of the right or the wrong JSON type: never a
500, never Python's exception text as an error message, never half a notification
pair, and every field error carries a code. The rate limits are off here (they are
tested in test_throttles.py) so every example reaches the mutation itself.
"""

import datetime
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notification.models import Notification, SmsNotification
from tests.graphql.test_hostile_graphql import PYTHON_EXCEPTION_TEXT
from tests.support.settings_helpers import set_sms

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Any Unicode code point, lone surrogates and NUL included; the characters that broke
# something once are drawn often (uniformly, a surrogate is 1 code point in 500).
any_text = st.text(
    st.one_of(
        st.characters(codec=None, exclude_categories=()),
        st.sampled_from(["\x00", "\ud800", "\udfff", "²", "é", "😀", "%", "_", "\\"]),
    ),
    max_size=40,
)
long_text = st.text(st.sampled_from("ab €😀\x00\ud800"), min_size=200, max_size=2000)
numbers_as_text = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.sampled_from(["²", "٣", "1e3", " 1", "0x1", "", "9" * 30, "-0"]),
)
json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), any_text
)
any_json = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(any_text, inner, max_size=3),
    max_leaves=6,
)
offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: datetime.timezone(datetime.timedelta(minutes=minutes))
)
datetimes = st.one_of(
    st.datetimes(timezones=offsets).map(lambda value: value.isoformat()),
    st.sampled_from(["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"]),
    st.datetimes().map(lambda value: value.isoformat()),  # naive
    any_text,
)
phone_numbers = st.one_of(
    st.from_regex(r"\+?[0-9 ()\-.]{0,22}(x|ext\.? ?)?[0-9]{0,6}", fullmatch=True), any_text
)


def field(values: st.SearchStrategy) -> st.SearchStrategy:
    """A value of the field's kind, or any JSON at all (the wrong type)."""
    return st.one_of(values, values, values, any_json)


create_item = st.fixed_dictionaries(
    {
        "title": field(st.one_of(any_text, long_text)),
        "body": field(st.one_of(any_text, long_text)),
        "toPhoneNumber": field(phone_numbers),
    },
    optional={
        "url": field(st.one_of(st.just("https://example.com/a"), any_text)),
        "userId": field(numbers_as_text),
        "publishDatetime": field(datetimes),
        "priority": field(st.sampled_from(["LOW", "NORMAL", "HIGH", "URGENT", "low"])),
        "contentType": field(st.sampled_from(["auth.user", "notification.notification", "x.y"])),
        "objectId": field(numbers_as_text),
        "idempotencyKey": field(any_text),
    },
)

CREATE = """
mutation Create($input: CreateSmsNotificationInput!) {
  createSmsNotification(input: $input) {
    notification { id title sms { toPhoneNumber segments } }
    errors { field code message index }
    warnings { code }
  }
}
"""
CREATE_MANY = """
mutation CreateMany($input: [CreateSmsNotificationInput!]!) {
  createSmsNotifications(input: $input) {
    notifications { id }
    errors { field code message index }
  }
}
"""
CANCEL = "mutation($id: ID!) { cancelNotification(id: $id) { errors { field code message } } }"
RESEND = "mutation($id: ID!) { resendNotification(id: $id) { errors { field code message } } }"
LOGIN = "mutation($u: String!, $p: String!) { login(username: $u, password: $p) { id } }"
LOGOUT = "mutation { logout }"


@pytest.fixture
def fuzz_settings(settings):
    set_sms(settings, GRAPHQL_USER_RATE=0)
    set_sms(settings, LOGIN_MAX_FAILURES=0)
    set_sms(settings, SMS_USER_SEGMENTS_PER_HOUR=0)


def check(response) -> dict:
    """The invariants every answer keeps."""
    assert response.status_code in (200, 400), (response.status_code, response.content[:500])
    result = response.json()
    for error in result.get("errors") or []:
        for marker in PYTHON_EXCEPTION_TEXT:
            assert marker not in error["message"], error
    for payload in (result.get("data") or {}).values():
        for error in (payload or {}).get("errors", []) if isinstance(payload, dict) else []:
            assert error["code"], error
    assert Notification.objects.count() == SmsNotification.objects.count()
    return result


@FUZZ
@given(item=create_item)
def test_create_sms_notification(graphql, staff_user, fuzz_settings, item):
    check(graphql(staff_user).post(CREATE, {"input": item}))


@FUZZ
@given(items=st.one_of(st.lists(create_item, max_size=4), any_json))
def test_create_sms_notifications(graphql, staff_user, fuzz_settings, items):
    before = Notification.objects.count()
    result = check(graphql(staff_user).post(CREATE_MANY, {"input": items}))
    payload = (result.get("data") or {}).get("createSmsNotifications")
    if payload and payload["errors"]:  # all or nothing
        assert Notification.objects.count() == before


@FUZZ
@given(value=field(numbers_as_text), mutation=st.sampled_from([CANCEL, RESEND]))
def test_cancel_and_resend(graphql, staff_user, fuzz_settings, value, mutation):
    check(graphql(staff_user).post(mutation, {"id": value}))


@settings(FUZZ, max_examples=30)  # each login runs the password hasher: slow on purpose
@given(username=field(any_text), password=field(any_text))
def test_login_and_logout(graphql, staff_user, fuzz_settings, username, password):
    gql = graphql()
    check(gql.post(LOGIN, {"u": username, "p": password}))
    check(gql.post(LOGOUT, {}))


@FUZZ
@given(body=st.one_of(st.binary(max_size=200), any_json.map(lambda v: json.dumps(v).encode())))
def test_any_request_body(graphql, staff_user, fuzz_settings, body):
    check(graphql(staff_user).post_body(body))
