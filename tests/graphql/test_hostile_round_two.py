"""Issue 17's defects on the GraphQL-over-HTTP surface, settings and inbound keywords.

Each test failed on the main before it: fragment spreads that multiply the cost
walks (1), lists converted before they are refused (3, 4), "Did you mean"
suggestions with introspection off (5), no HSTS (6), the opt-out words the law
names (7). The connection limits (2) are in ``test_server_head_limits.py`` and
the websocket ones (8) in ``test_ws_abuse.py``.
"""

import asyncio
import logging
import os
import subprocess
import sys
import time

import pytest
from django.test import override_settings

from notification.graphql.ws.authority import websocket_schema
from notification.models import Notification, SmsOptOut
from notification.status.webhooks import HELP_KEYWORDS, START_KEYWORDS, STOP_KEYWORDS
from schema.schema import schema
from tests.support.fixtures_services import REPO_ROOT
from tests.support.settings_helpers import set_sms, sms_settings
from tests.support.webhook_helpers import (
    AUTH_TOKEN,
    INBOUND_PATH,
    PUBLIC_BASE_URL,
    inbound_form,
    post_signed,
)

# --- Defect 1: fragment spread explosion ------------------------------------------------


def fragment_chain(levels: int, *, doubled: bool) -> str:
    """``levels`` fragments, each spreading the next twice (``doubled``) or once.

    Doubled, the document expands to 2**levels fields (20 levels: a million) in a
    few hundred bytes; once, to ``levels`` fields. Both have the same number of
    fragments, spreads and bytes, within a few per cent.
    """
    fragments = [
        f"fragment F{i} on Query {{ ...F{i + 1} {f'...F{i + 1}' if doubled else 'me { id }'} }}"
        for i in range(levels)
    ]
    fragments.append(f"fragment F{levels} on Query {{ __typename }}")
    return "query { ...F0 }\n" + "\n".join(fragments)


def fastest(function, runs: int = 5) -> float:
    """The shortest of ``runs`` timings of ``function()`` (the least disturbed by others)."""
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        timings.append(time.perf_counter() - started)
    return min(timings)


def test_a_fragment_chain_is_refused_as_fast_as_a_plain_document_of_its_size(graphql):
    anonymous = graphql()
    bomb = fragment_chain(20, doubled=True)
    plain = fragment_chain(20, doubled=False)
    assert abs(len(bomb) - len(plain)) < 0.1 * len(plain)

    result = anonymous.execute(bomb)
    assert result["data"] is None
    assert [e["extensions"]["code"] for e in result["errors"]] == ["query_too_complex"]
    assert "1048576 fields" in result["errors"][0]["message"]

    # On the main before this, 20 levels cost the anonymous caller ~10 s of CPU (each
    # level doubles it); refused here, it costs no more than the plain document that
    # is parsed, validated and run.
    bomb_seconds = fastest(lambda: anonymous.execute(bomb))
    plain_seconds = fastest(lambda: anonymous.execute(plain))
    assert bomb_seconds < 3 * plain_seconds, (bomb_seconds, plain_seconds)

    # Any length: 200 levels (2**200 fields; past the token limit, turned off for this)
    # is refused by the field count the same way, at the cost of its size.
    with sms_settings(GRAPHQL_MAX_TOKENS=0):
        longest = anonymous.execute(fragment_chain(200, doubled=True))
    assert [e["extensions"]["code"] for e in longest["errors"]] == ["query_too_complex"]


def test_the_websocket_schema_refuses_the_chain_and_long_lists_too():
    threaded = websocket_schema(schema)
    result = asyncio.run(threaded.execute(fragment_chain(30, doubled=True)))
    assert [e.extensions["code"] for e in result.errors] == ["query_too_complex"]
    result = asyncio.run(threaded.execute(LIST, variable_values={"o": [{"id": "ASC"}] * 5_000}))
    assert [e.extensions for e in result.errors] == [
        {"code": "too_many_items", "field": "variables.o"}
    ]


def test_depth_and_aliases_count_what_fragments_expand_to(graphql, staff_user):
    gql = graphql(staff_user)
    aliased = (
        "query { ...A } fragment A on Query { ...B ...B } fragment B on Query { ...C ...C } "
        "fragment C on Query { a: __typename b: __typename }"
    )  # 8 aliases once expanded
    with sms_settings(GRAPHQL_MAX_ALIASES=7):
        assert gql.execute(aliased)["errors"][0]["extensions"]["code"] == "too_many_aliases"
    with sms_settings(GRAPHQL_MAX_ALIASES=8):
        assert gql.data(aliased) == {"a": "Query", "b": "Query"}

    deep = (
        "query { notifications { ...R } } fragment R on NotificationOffsetPaginated "
        "{ results { ...S } } fragment S on Notification { sms { toPhoneNumber } }"
    )  # toPhoneNumber is 3 levels below the root field
    with sms_settings(GRAPHQL_MAX_DEPTH=2):
        assert gql.execute(deep)["errors"][0]["extensions"]["code"] == "query_too_deep"
    with sms_settings(GRAPHQL_MAX_DEPTH=3):
        assert gql.data(deep) == {"notifications": {"results": []}}


@sms_settings(GRAPHQL_MAX_FIELDS=6)
def test_the_field_limit_counts_expanded_fields(graphql, staff_user):
    gql = graphql(staff_user)
    six = (  # me, id, username, me, email, isStaff
        "query { ...A } fragment A on Query { me { id username } ...B } "
        "fragment B on Query { me { email isStaff } }"
    )
    assert gql.data(six)["me"]["username"] == "staff"
    seven = six.replace("isStaff", "isStaff firstName")
    assert gql.execute(seven)["errors"][0]["extensions"]["code"] == "query_too_complex"


def test_cyclic_and_unknown_fragments_are_validation_errors_not_a_hang(graphql):
    cyclic = "query { ...A } fragment A on Query { ...B } fragment B on Query { ...A }"
    result = graphql().execute(cyclic)
    assert result["data"] is None and "within itself" in result["errors"][0]["message"]
    result = graphql().execute("query { ...Missing }")
    assert result["data"] is None and "Unknown fragment" in result["errors"][0]["message"]


# --- Defects 3 and 4: lists bounded before they are converted ----------------------------

CREATE_MANY = """
mutation CreateMany($input: [CreateSmsNotificationInput!]!) {
  createSmsNotifications(input: $input) { notifications { id } errors { code } }
}
"""
LIST = (
    "query($f: NotificationFilter, $o: [NotificationOrder!]) "
    "{ notifications(filters: $f, order: $o) { totalCount } }"
)


def too_many_items(result: dict) -> str:
    """The ``field`` of the request's one ``too_many_items`` error (fails otherwise)."""
    assert result["data"] is None, result
    assert len(result["errors"]) == 1, result["errors"]
    extensions = result["errors"][0]["extensions"]
    assert extensions["code"] == "too_many_items", result["errors"]
    return extensions["field"]


@pytest.mark.serial  # compares two wall-clock times: never beside another test worker
def test_a_huge_anonymous_bulk_create_is_refused_before_its_items_are_converted(graphql):
    item = {"title": "t", "body": "b", "toPhoneNumber": "+14155550100"}
    # 41,000 items (2.3 MB): 6-7 s of CPU on the main before, then a permission error.
    huge = [item] * 41_000
    assert too_many_items(graphql().execute(CREATE_MANY, {"input": huge})) == "variables.input"
    # As fast as the refusal of a one-item create for lacking permission.
    huge_seconds = fastest(lambda: graphql().execute(CREATE_MANY, {"input": huge}), runs=3)
    one_seconds = fastest(lambda: graphql().execute(CREATE_MANY, {"input": [item]}), runs=3)
    assert huge_seconds < 3 * one_seconds + 0.2, (huge_seconds, one_seconds)
    assert not Notification.objects.exists()


def test_a_huge_order_list_is_refused_for_a_logged_in_user(graphql, staff_user):
    order = [{"id": "ASC"}] * 90_000
    assert too_many_items(graphql(staff_user).execute(LIST, {"o": order})) == "variables.o"


def test_a_huge_in_list_never_reaches_the_database(graphql, staff_user, caplog):
    ids = [str(i) for i in range(260_000)]
    with caplog.at_level(logging.ERROR):
        field = too_many_items(graphql(staff_user).execute(LIST, {"f": {"id": {"inList": ids}}}))
    assert field == "variables.f.id.inList"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_nested_filters_cannot_add_up_to_the_database_parameter_limit(graphql, staff_user):
    ids = [str(i) for i in range(1, 1001)]  # each list at the cap, three of them together over it
    nested = {
        "id": {"inList": ids},
        "OR": {"userId": {"inList": ids}, "OR": {"id": {"inList": ids}}},
    }
    assert too_many_items(graphql(staff_user).execute(LIST, {"f": nested})) == "request"
    two = {"id": {"inList": ids}, "OR": {"userId": {"inList": ids}}}
    assert graphql(staff_user).data(LIST, {"f": two}) == {"notifications": {"totalCount": 0}}


def test_list_literals_in_the_document_are_capped_too(graphql, staff_user):
    with sms_settings(GRAPHQL_MAX_ITEMS=3):
        literal = "query { notifications(filters: {id: {inList: [1, 2, 3, 4]}}) { totalCount } }"
        assert too_many_items(graphql(staff_user).execute(literal)) == "document"
        three = literal.replace(", 4]", "]")
        assert graphql(staff_user).data(three) == {"notifications": {"totalCount": 0}}


# --- Defect 5: no suggestions with introspection off --------------------------------------

PROBES = [
    ("query { notificatons { totalCount } }", None),
    ("mutation { createSmsNotificatio(input: {}) { errors { code } } }", None),
    ("query { notifications(filter: {}) { totalCount } }", None),
    ("query { notifications(filters: {status: {exact: PENDIN}}) { totalCount } }", None),
    (
        "query($f: NotificationFilter) { notifications(filters: $f) { totalCount } }",
        {"f": {"status": {"exact": "PENDIN"}}},
    ),
    (
        "query($f: NotificationFilter) { notifications(filters: $f) { totalCount } }",
        {"f": {"titl": {"exact": "x"}}},
    ),
    ("query($f: NotificationFiltr) { notifications(filters: $f) { totalCount } }", None),
]


@pytest.mark.parametrize(("query", "variables"), PROBES)
def test_typos_get_no_suggestions_with_introspection_off(graphql, staff_user, query, variables):
    with sms_settings(GRAPHQL_INTROSPECTION=False):
        result = graphql(staff_user).execute(query, variables)
    assert result["errors"]
    for error in result["errors"]:
        assert "Did you mean" not in error["message"], error
    with sms_settings(GRAPHQL_INTROSPECTION=True):
        result = graphql(staff_user).execute(query, variables)
    assert any("Did you mean" in e["message"] for e in result["errors"]), result["errors"]


# --- Defect 6: HSTS, and check --deploy clean with the README's production settings ------

PRODUCTION = {
    "DJANGO_DEBUG": "false",
    "DJANGO_SECRET_KEY": "x" * 20 + "-a-long-random-production-key-0123456789-abcdefghij",
    "DJANGO_HTTPS": "true",
    "DJANGO_SSL_REDIRECT": "true",
    "DJANGO_ALLOWED_HOSTS": "sms.example.com",
    # README "Deploying on several machines": the public https:// address Twilio calls.
    "PUBLIC_BASE_URL": "https://sms.example.com",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    environment.update(env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_with_the_readme_production_settings():
    checked = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_https_sends_hsts_for_a_year_without_subdomains_or_preload_unless_set():
    code = (
        "from django.conf import settings as s; print(s.SECURE_HSTS_SECONDS, "
        "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, s.SECURE_SSL_REDIRECT)"
    )
    shown = manage("shell", "-v", "0", "-c", code, **{**PRODUCTION, "DJANGO_SSL_REDIRECT": "false"})
    assert shown.stdout.split() == ["31536000", "False", "False", "False"], shown.stderr
    chosen = {"DJANGO_HSTS_SECONDS": "600", "DJANGO_HSTS_INCLUDE_SUBDOMAINS": "true"}
    shown = manage("shell", "-v", "0", "-c", code, **PRODUCTION, **chosen)
    assert shown.stdout.split() == ["600", "True", "False", "True"], shown.stderr


@override_settings(
    SECURE_HSTS_SECONDS=31_536_000, SECURE_PROXY_SSL_HEADER=("HTTP_X_FORWARDED_PROTO", "https")
)
def test_an_https_response_carries_the_hsts_header(client):
    response = client.get("/graphql/", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


# --- Defect 7: the opt-out words Twilio and the FCC name --------------------------------

PHONE = "+14155550123"


@pytest.fixture
def signed_webhooks(settings):
    set_sms(settings, TWILIO_AUTH_TOKEN=AUTH_TOKEN)
    set_sms(settings, PUBLIC_BASE_URL=PUBLIC_BASE_URL)


@pytest.mark.parametrize(
    "body",
    [
        "REVOKE",
        "Revoke.",
        "OptOut",
        "opt out",
        "Opt-Out!",
        "OPT OUT",
        "stop all",
        "\uff33\uff34\uff2f\uff30",  # full-width STOP (NFKC)
        "S\u200bTOP",  # a zero-width space inside
        "\u200dunsubscribe\ufeff",
        "Cancel",
    ],
)
def test_revocation_words_in_any_reasonable_form_record_an_opt_out(
    client, db, signed_webhooks, body
):
    assert post_signed(client, INBOUND_PATH, inbound_form(body, PHONE)).status_code == 200
    assert SmsOptOut.objects.filter(phone_number=PHONE).exists()


@pytest.mark.parametrize("body", ["stop please", "revoke my order", "opt outside", "STOP 2"])
def test_a_keyword_must_still_be_the_whole_message(client, db, signed_webhooks, body):
    assert post_signed(client, INBOUND_PATH, inbound_form(body, PHONE)).status_code == 200
    assert not SmsOptOut.objects.exists()


def test_the_keyword_lists_are_twilios_defaults_and_the_fcc_words():
    fcc = {"stop", "quit", "end", "revoke", "opt out", "cancel", "unsubscribe"}
    twilio = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
    assert twilio | {w.replace(" ", "") for w in fcc} == STOP_KEYWORDS
    assert {"start", "yes", "unstop"} == START_KEYWORDS
    assert {"help", "info"} == HELP_KEYWORDS


@pytest.mark.parametrize("body", ["Un-Stop", "\uff39\uff25\uff33", "y\u200bes"])
def test_opt_in_is_matched_the_same_way(client, db, signed_webhooks, body):
    SmsOptOut.objects.create(phone_number=PHONE)
    assert post_signed(client, INBOUND_PATH, inbound_form(body, PHONE)).status_code == 200
    assert not SmsOptOut.objects.exists()
