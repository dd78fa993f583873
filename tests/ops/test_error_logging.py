"""Clear errors and quiet logs: the client's mistakes are one line, ours a traceback."""

import logging

import pytest
from graphql import GraphQLError

from schema.error_logging import is_client_error
from schema.http import SUBSCRIPTION_OVER_HTTP_MESSAGE

pytestmark = pytest.mark.django_db


def error_records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


def test_subscription_over_http_says_to_use_the_websocket(graphql, staff_user, caplog):
    caplog.set_level(logging.INFO)
    result = graphql(staff_user).execute(
        'subscription { smsStatus(notificationIds: ["1"]) { status } }'
    )
    assert result["data"] is None
    (error,) = result["errors"]
    assert error["message"] == SUBSCRIPTION_OVER_HTTP_MESSAGE
    assert error["extensions"]["code"] == "use_websocket"
    assert error_records(caplog) == []
    assert "subscription sent over HTTP" in caplog.text


def test_the_operation_that_runs_decides_not_the_word_subscription(graphql, staff_user):
    document = "query Q { me { username } } subscription S { myNotifications { status } }"
    client = graphql(staff_user)

    def run(operation_name: str) -> dict:
        return client.client.post(
            "/graphql/",
            {"query": document, "operationName": operation_name},
            content_type="application/json",
            headers={"X-CSRFToken": client.csrf_token()},
        ).json()

    assert run("S")["errors"][0]["extensions"]["code"] == "use_websocket"
    assert run("Q") == {"data": {"me": {"username": "staff"}}}


@pytest.mark.parametrize(
    ("who", "query", "expected"),
    [
        ("anonymous", "query { me { username } }", "Log in to use this API."),
        ("plain", 'mutation { cancelNotification(id: "1") { errors { code } } }', "permission"),
        ("plain", 'query { notifications(filters: {id: {exact: "x"}}) { totalCount } }', "id"),
        ("plain", "query { nope }", "Cannot query field 'nope'"),
    ],
)
def test_client_errors_log_one_line_and_no_traceback(
    graphql, plain_user, caplog, who, query, expected
):
    caplog.set_level(logging.INFO)
    client = graphql(plain_user if who == "plain" else None)
    result = client.execute(query)
    assert expected in result["errors"][0]["message"]
    assert error_records(caplog) == []
    lines = [r for r in caplog.records if r.name == "schema.client_errors"]
    assert len(lines) == 1, caplog.text
    assert lines[0].levelno == logging.INFO
    assert "\n" not in lines[0].getMessage()


def test_our_own_faults_still_count_as_ours():
    assert not is_client_error(GraphQLError("boom", original_error=RuntimeError("boom")))
    assert not is_client_error(GraphQLError("Cannot return null", path=["a"]))
    assert is_client_error(GraphQLError("Syntax Error"))
