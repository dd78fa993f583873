"""The memo of valid documents (``document_cache``) never lets a request past a limit.

A repeated query text skips parsing and validation (issue 21's latency work); each
test here first has the document memoised, then changes what the request or the
settings of the moment allow, and checks the limit still refuses it.
"""

import json

import pytest

from notification.graphql.cost import MAX_QUERY_CHARS, VALID_DOCUMENTS, DocumentCache, ValidDocument
from tests.support.settings_helpers import sms_settings

LIST = "query { notifications { results { sms { toPhoneNumber } } } }"  # depth 3


@pytest.fixture(autouse=True)
def empty_memo():
    VALID_DOCUMENTS.clear()
    yield
    VALID_DOCUMENTS.clear()


def code(result: dict) -> str:
    return result["errors"][0]["extensions"]["code"]


def test_a_valid_document_is_memoised_once_and_served_again(graphql, staff_user):
    gql = graphql(staff_user)
    assert gql.data(LIST) == {"notifications": {"results": []}}
    assert len(VALID_DOCUMENTS) == 1
    assert gql.data(LIST) == {"notifications": {"results": []}}
    assert len(VALID_DOCUMENTS) == 1


def test_lower_cost_limits_still_refuse_a_memoised_document(graphql, staff_user):
    gql = graphql(staff_user)
    gql.data(LIST)
    with sms_settings(GRAPHQL_MAX_DEPTH=2):
        assert code(gql.execute(LIST)) == "query_too_deep"
    with sms_settings(GRAPHQL_MAX_FIELDS=3):
        assert code(gql.execute(LIST)) == "query_too_complex"
    aliased = "query { a: me { id } b: me { id } }"
    gql.data(aliased)
    with sms_settings(GRAPHQL_MAX_ALIASES=1):
        assert code(gql.execute(aliased)) == "too_many_aliases"


def test_a_lower_token_limit_is_not_bypassed_by_a_document_parsed_under_a_higher_one(
    graphql, staff_user
):
    gql = graphql(staff_user)
    gql.data(LIST)
    with sms_settings(GRAPHQL_MAX_TOKENS=5):
        assert code(gql.execute(LIST)) == "too_many_tokens"


def test_the_item_cap_applies_to_each_requests_variables(graphql, staff_user):
    gql = graphql(staff_user)
    query = "query($ids: [ID!]) { notifications(filters: {id: {inList: $ids}}) { totalCount } }"
    with sms_settings(GRAPHQL_MAX_ITEMS=3):
        assert gql.data(query, {"ids": ["1", "2"]}) == {"notifications": {"totalCount": 0}}
        assert len(VALID_DOCUMENTS) == 1
        assert code(gql.execute(query, {"ids": ["1", "2", "3", "4"]})) == "too_many_items"


def test_the_item_cap_applies_to_a_memoised_documents_own_lists(graphql, staff_user):
    """The memo keeps the document's list lengths; the cap of the moment judges them."""
    gql = graphql(staff_user)
    query = '{ notifications(filters: {id: {inList: ["1", "2", "3"]}}) { totalCount } }'
    assert gql.data(query) == {"notifications": {"totalCount": 0}}
    ((entry,),) = [list(VALID_DOCUMENTS._entries.values())]
    assert entry.list_lengths == (3,)
    with sms_settings(GRAPHQL_MAX_ITEMS=2):
        refused = gql.execute(query)
        assert code(refused) == "too_many_items"
        assert refused["errors"][0]["extensions"]["field"] == "document"
    assert gql.data(query) == {"notifications": {"totalCount": 0}}


def test_introspection_switched_off_refuses_a_document_memoised_with_it_on(graphql, staff_user):
    gql = graphql(staff_user)
    query = "query { __schema { queryType { name } } }"
    with sms_settings(GRAPHQL_INTROSPECTION=True):
        assert gql.data(query) == {"__schema": {"queryType": {"name": "Query"}}}
    with sms_settings(GRAPHQL_INTROSPECTION=False):
        assert code(gql.execute(query)) == "introspection_disabled"
        assert code(gql.execute(query)) == "introspection_disabled"


def test_several_operations_still_need_a_name_each_time(graphql, staff_user):
    gql = graphql(staff_user)
    two = "query A { me { id } } query B { me { username } }"
    named = {"query": two, "operationName": "B"}
    for _ in range(2):
        reply = gql.post_body(json.dumps(named)).json()
        assert reply == {"data": {"me": {"username": "staff"}}}, reply
    assert len(VALID_DOCUMENTS) == 1
    assert code(gql.execute(two)) == "operation_name_required"


def test_refused_documents_are_not_memoised_and_get_the_same_errors_each_time(graphql, staff_user):
    gql = graphql(staff_user)
    typo = "query { notificatons { totalCount } }"
    with sms_settings(GRAPHQL_INTROSPECTION=False):
        first = gql.execute(typo)["errors"]
        second = gql.execute(typo)["errors"]
    assert first == second and first
    assert all("Did you mean" not in error["message"] for error in first)
    with sms_settings(GRAPHQL_MAX_DEPTH=2):
        assert code(gql.execute(LIST)) == "query_too_deep"
    assert len(VALID_DOCUMENTS) == 0


def test_long_query_texts_are_not_memoised(graphql, staff_user):
    padded = LIST + "#" + "x" * MAX_QUERY_CHARS
    assert graphql(staff_user).data(padded) == {"notifications": {"results": []}}
    assert len(VALID_DOCUMENTS) == 0


def test_the_memo_keeps_at_most_its_size_dropping_the_least_recently_used():
    memo = DocumentCache(max_entries=3)
    entry = ValidDocument(document=None, costs=())  # type: ignore[arg-type]
    for key in "abc":
        memo.put(key, entry)
    assert memo.get("a") is entry  # "a" is now the most recently used
    memo.put("d", entry)
    assert len(memo) == 3
    assert memo.get("b") is None
    assert memo.get("a") is entry and memo.get("d") is entry
