"""The optimizer's hints kept per selection give the library's queries, for anyone.

``notification/graphql/optimizer_hints.py``: ``CachedHintsOptimizer`` walks a
selection once and applies the kept store afterwards. Every query here must be
the one strawberry-django's own ``DjangoOptimizerExtension`` sends, request after
request (the walk, then the kept store), for users who see different rows, for
variables that change the selection, and for selections whose store reads the
request (an annotation: never kept). A newer library whose optimiser answers
differently fails here.
"""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from notification.graphql import optimizer_hints
from notification.models import Notification, SmsNotification
from schema.schema import schema

LIST = """
query List($withSms: Boolean!, $skip: Boolean!) {
  notifications(pagination: {limit: 50}) {
    totalCount
    results {
      id
      heading: title
      ...Cols
      createdDatetime
      sms @include(if: $withSms) {
        toPhoneNumber deliveryStatus segments twilioSid @skip(if: $skip)
      }
    }
  }
}
fragment Cols on Notification { status url }
"""
ONE = "query One($id: ID!) { notification(id: $id) { id title sms { segments } } }"
ANNOTATED = "{ notifications { results { id sms { segments optedOut } } } }"


@pytest.fixture(autouse=True)
def _fresh_hints():
    optimizer_hints._stores.clear()
    yield
    optimizer_hints._stores.clear()


def _context(user):
    from django.test import RequestFactory
    from strawberry.django.context import StrawberryDjangoContext

    request = RequestFactory().post("/graphql/")
    # A fresh user each time: Django caches permissions on the instance.
    request.user = type(user).objects.get(pk=user.pk)
    return StrawberryDjangoContext(request=request, response=None)


def _library_schema():
    """The project's schema with strawberry-django's own optimizer."""
    import strawberry
    from strawberry_django.optimizer import DjangoOptimizerExtension

    from notification.graphql import parts
    from schema.schema import Mutation

    extensions = [
        DjangoOptimizerExtension if extension is optimizer_hints.CachedHintsOptimizer else extension
        for extension in parts.EXTENSIONS
    ]
    assert DjangoOptimizerExtension in extensions
    (query,) = parts.QUERY_TYPES
    return strawberry.Schema(
        query=query,
        mutation=Mutation,
        extensions=extensions,
        execution_context_class=parts.EXECUTION_CONTEXT_CLASS,
    )


def _queries(used_schema, query, user, variables=None):
    with CaptureQueriesContext(connection) as captured:
        result = used_schema.execute_sync(
            query, variable_values=variables, context_value=_context(user)
        )
    assert result.errors is None, result.errors
    return [entry["sql"] for entry in captured.captured_queries], result.data


def _rows(staff_user, plain_user):
    for index, owner in enumerate([staff_user, plain_user, staff_user]):
        note = Notification.objects.create(title=f"Row {index}", body="b", user=owner)
        SmsNotification.objects.create(notification=note, to_phone_number=f"+1415555010{index}")
    return note


def _kept() -> list:
    return list(optimizer_hints._stores.values())


@pytest.mark.django_db
def test_kept_hints_give_the_librarys_queries_for_every_user_and_selection(staff_user, plain_user):
    _rows(staff_user, plain_user)
    library = _library_schema()
    for variables in (
        {"withSms": True, "skip": False},
        {"withSms": True, "skip": True},
        {"withSms": False, "skip": False},
    ):
        for user in (staff_user, plain_user, staff_user):
            expected = _queries(library, LIST, user, variables)
            assert _queries(schema, LIST, user, variables) == expected
    # One kept store per selection (the variables change it), none per user.
    kept = _kept()
    assert len(kept) == 3 and optimizer_hints._PER_REQUEST not in kept
    with_sms, without_sms = kept[0][0], kept[2][0]
    assert with_sms.select_related == ["sms"] and without_sms.select_related == []


@pytest.mark.django_db
def test_users_see_their_own_rows_through_kept_hints(staff_user, plain_user):
    _rows(staff_user, plain_user)
    variables = {"withSms": True, "skip": False}
    _, for_staff = _queries(schema, LIST, staff_user, variables)
    _, for_plain = _queries(schema, LIST, plain_user, variables)
    assert for_staff["notifications"]["totalCount"] == 3
    assert for_plain["notifications"]["totalCount"] == 1
    assert [row["heading"] for row in for_plain["notifications"]["results"]] == ["Row 1"]


@pytest.mark.django_db
def test_a_single_object_field_gets_the_librarys_queries(staff_user, plain_user):
    note = _rows(staff_user, plain_user)
    library = _library_schema()
    for _ in range(2):
        variables = {"id": str(note.pk)}
        expected = _queries(library, ONE, staff_user, variables)
        assert _queries(schema, ONE, staff_user, variables) == expected


@pytest.mark.django_db
def test_a_store_that_reads_the_request_is_never_kept(staff_user, plain_user):
    """An annotation (``optedOut``) may read the request: the library's path, each time."""
    _rows(staff_user, plain_user)
    library = _library_schema()
    for user in (staff_user, plain_user):
        assert _queries(schema, ANNOTATED, user) == _queries(library, ANNOTATED, user)
    assert _kept() == [optimizer_hints._PER_REQUEST]


def test_variables_that_are_not_plain_json_are_never_keys():
    optimizer = optimizer_hints.CachedHintsOptimizer()
    assert optimizer_hints._variables_key({"a": float("nan")}) is None
    assert optimizer_hints._variables_key({"a": object()}) is None
    assert optimizer_hints._variables_key({"b": 1, "a": True}) == '{"a": true, "b": 1}'
    # Not a queryset (a manager, a list): the library's path.
    assert optimizer._key(Notification.objects, None) is None
    assert optimizer._key([], None) is None


def test_only_queries_are_keyed():
    """A mutation's or subscription's variables change per request: nothing is kept."""
    from types import SimpleNamespace

    from graphql import parse

    optimizer = optimizer_hints.CachedHintsOptimizer()

    def info(document: str) -> SimpleNamespace:
        return SimpleNamespace(
            operation=parse(document).definitions[0],
            variable_values={},
            schema=schema._schema,
            path=None,
            parent_type=SimpleNamespace(name="Query"),
            field_name="notifications",
        )

    queryset = Notification.objects.all()
    assert optimizer._key(queryset, info("query { notifications }")) is not None
    # graphql-core's typed form of the variables: keyed by their coerced values.
    from graphql.execution.values import VariableValues

    typed = info("query { notifications }")
    typed.variable_values = VariableValues(sources={}, coerced={"skip": True})
    assert '{"skip": true}' in optimizer._key(queryset, typed)
    assert optimizer._key(queryset, info("mutation { notifications }")) is None
    assert optimizer._key(queryset, info("subscription { notifications }")) is None
