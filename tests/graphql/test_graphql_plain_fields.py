"""Plain model attributes take strawberry's basic path; everything else keeps its resolver.

``notification/graphql/execution.py``: a field may skip strawberry's resolver chain
only when the chain has nothing to do, and a column that was not loaded is still
read (the library's way), never answered as missing.
"""

import pytest

from notification.models import Notification
from schema.schema import schema


def fields(type_name: str) -> dict:
    return {f.name: f for f in schema.get_type_by_name(type_name).fields}


def test_only_plain_columns_are_basic():
    notification = fields("Notification")
    sms = fields("SmsNotification")
    assert notification["title"].is_basic_field and sms["segments"].is_basic_field
    # A relation, a resolver, and a field with an annotation + resolver keep the chain.
    assert not notification["sms"].is_basic_field
    assert not notification["content_type"].is_basic_field
    assert not sms["opted_out"].is_basic_field
    # The list field (arguments, permission extension) is not touched.
    query = {f.name: f for f in schema.get_type_by_name("Query").fields}
    assert not query["notifications"].is_basic_field


@pytest.mark.django_db
def test_a_column_that_was_not_loaded_is_still_read():
    made = Notification.objects.create(title="Deferred", body="b")
    title = fields("Notification")["title"]
    partial = Notification.objects.only("id").get(pk=made.pk)
    assert "title" not in partial.__dict__
    assert title.get_result(partial, None, [], {}) == "Deferred"
    loaded = Notification.objects.get(pk=made.pk)
    assert title.get_result(loaded, None, [], {}) == "Deferred"


def test_a_renamed_field_reads_its_column():
    assert fields("SmsNotification")["next_attempt_at"]._column_attname == "next_attempt_datetime"


# --- PlainFieldExecutionContext: the same answers as graphql-core's own path -----------

SHAPES = """
query Shapes($skip: Boolean!) {
  notifications(pagination: {limit: 10}) {
    totalCount
    results {
      __typename
      id
      heading: title
      title
      status
      priority
      url
      userId
      createdDatetime
      sentDatetime
      ...More
      sms {
        __typename
        toPhoneNumber
        number: toPhoneNumber
        deliveryStatus
        segments
        errorCode
        twilioSid @skip(if: $skip)
        sentDatetime
        optedOut
      }
      again: sms { segments }
    }
  }
}
fragment More on Notification { body contentType sms { encoding attempts } }
"""


def _context(user):
    from django.test import RequestFactory
    from strawberry.django.context import StrawberryDjangoContext

    request = RequestFactory().post("/graphql/")
    request.user = user
    return StrawberryDjangoContext(request=request, response=None)


def _graphql_core_schema(*extensions):
    """The project's schema types executed by graphql-core's own executor."""
    import strawberry
    from strawberry_django.optimizer import DjangoOptimizerExtension

    from notification.graphql import parts
    from notification.graphql.optimizer_hints import CachedHintsOptimizer
    from schema.schema import Mutation

    library = [
        DjangoOptimizerExtension if extension is CachedHintsOptimizer else extension
        for extension in parts.EXTENSIONS
    ]
    (query,) = parts.QUERY_TYPES
    return strawberry.Schema(query=query, mutation=Mutation, extensions=[*library, *extensions])


def _rows(staff_user):
    from notification.models import SmsNotification, SmsOptOut

    plain = Notification.objects.create(title="No SMS", body="b", user=staff_user)
    sent = Notification.objects.create(
        title="Sent", body="b", url="https://example.com/x", user=staff_user
    )
    SmsNotification.objects.create(
        notification=sent,
        to_phone_number="+14155550100",
        twilio_sid="SM" + "1" * 32,
        error_code=30003,
    )
    SmsOptOut.objects.create(phone_number="+14155550100")
    return plain, sent


@pytest.mark.django_db
@pytest.mark.parametrize("skip", [True, False])
def test_results_match_graphql_cores_own_execution(staff_user, skip):
    from notification.graphql.execution import PlainFieldExecutionContext

    assert isinstance(schema.execution_context_class, type)
    assert issubclass(schema.execution_context_class, PlainFieldExecutionContext)
    _rows(staff_user)
    variables = {"skip": skip}
    fast = schema.execute_sync(
        SHAPES, variable_values=variables, context_value=_context(staff_user)
    )
    reference = _graphql_core_schema().execute_sync(
        SHAPES, variable_values=variables, context_value=_context(staff_user)
    )
    assert fast.errors is None and reference.errors is None, (fast.errors, reference.errors)
    assert fast.data == reference.data
    results = fast.data["notifications"]["results"]
    assert {r["title"]: r["sms"] is None for r in results} == {"No SMS": True, "Sent": False}


@pytest.mark.django_db
def test_errors_are_located_the_same_way(staff_user):
    """A column that cannot be serialised (a status the enum lacks) errs at the same path."""
    plain, _ = _rows(staff_user)
    Notification.objects.filter(pk=plain.pk).update(status="bogus")
    query = "{ notifications { results { id status sms { segments } } } }"
    fast = schema.execute_sync(query, context_value=_context(staff_user))
    reference = _graphql_core_schema().execute_sync(query, context_value=_context(staff_user))
    assert fast.errors and reference.errors
    assert fast.data == reference.data
    assert [(e.path, e.message) for e in fast.errors] == [
        (e.path, e.message) for e in reference.errors
    ]


@pytest.mark.django_db
def test_any_other_middleware_keeps_every_field_on_graphql_cores_path(staff_user):
    """A host's resolve hook (tracing, say) must still see every field."""
    from strawberry.extensions import SchemaExtension

    from notification.graphql.parts import EXECUTION_CONTEXT_CLASS

    seen: list[str] = []

    class Tracing(SchemaExtension):
        def resolve(self, _next, root, info, *args, **kwargs):
            seen.append(info.field_name)
            return _next(root, info, *args, **kwargs)

    import strawberry

    from notification.graphql import parts

    (query,) = parts.QUERY_TYPES
    host = strawberry.Schema(
        query=query,
        extensions=[*parts.EXTENSIONS, Tracing],
        execution_context_class=EXECUTION_CONTEXT_CLASS,
    )
    _rows(staff_user)
    result = host.execute_sync(
        "{ notifications { results { title sms { segments } } } }",
        context_value=_context(staff_user),
    )
    assert result.errors is None, result.errors
    assert seen.count("title") == 2 and seen.count("segments") == 1 and "sms" in seen


# --- Plain rows: a list item built in one loop, byte for byte graphql-core's answer ----

ROWS = """
query Rows($skip: Boolean!) {
  notifications(pagination: {limit: 20}) {
    totalCount
    results {
      id
      heading: title
      ...Cols
      ... on Notification { priority category }
      priority
      createdDatetime
      sentDatetime
      sms {
        number: toPhoneNumber
        deliveryStatus
        encoding
        segments
        errorCode
        twilioSid @skip(if: $skip)
        sentDatetime
      }
      again: sms { segments }
    }
  }
  typed: notifications(pagination: {limit: 20}) {
    results { __typename id sms { __typename segments } }
  }
}
fragment Cols on Notification { title status url }
"""


def _row_variety(staff_user):
    """Rows that take the plain path and rows that must fall back, side by side."""
    from django.utils import timezone

    from notification.models import SmsNotification

    rows = []
    for index, (sent, sid, error) in enumerate(
        [(True, True, True), (True, False, True), (False, True, True)]
    ):
        note = Notification.objects.create(
            title=f"Row {index}",
            body="b",
            url="https://example.com/x",
            user=staff_user,
            sent_datetime=timezone.now() if sent else None,
        )
        SmsNotification.objects.create(
            notification=note,
            to_phone_number=f"+1415555010{index}",
            twilio_sid=("SM" + str(index) * 32) if sid else None,
            error_code=30003 if error else None,
            sent_datetime=timezone.now() if sent else None,
        )
        rows.append(note)
    rows.append(Notification.objects.create(title="No SMS", body="b", user=staff_user))
    return rows


def _counting_schema(plain_rows: list[bool]):
    """The project's schema whose executor records, per notification row it tried,
    whether it built it directly (a spy: the row is returned unchanged)."""
    import strawberry

    from notification.graphql import parts
    from notification.graphql.plain_rows import FALLBACK as _FALLBACK
    from schema.schema import Mutation

    class Counting(parts.EXECUTION_CONTEXT_CLASS):
        def _plain_row(self, plan, item, info):
            row = _FALLBACK
            try:
                row = super()._plain_row(plan, item, info)
            finally:  # a value that fails to serialise raises: not built either
                if type(item) is Notification:
                    plain_rows.append(row is not _FALLBACK)
            return row

    (query,) = parts.QUERY_TYPES
    return strawberry.Schema(
        query=query,
        mutation=Mutation,
        extensions=parts.EXTENSIONS,
        execution_context_class=Counting,
    )


def _response_bytes(result) -> str:
    """What the HTTP view would send: data then errors, key order included."""
    import json

    body = {"data": result.data}
    if result.errors:
        body["errors"] = [error.formatted for error in result.errors]
    return json.dumps(body)


@pytest.mark.django_db
@pytest.mark.parametrize("skip", [True, False])
def test_plain_rows_give_graphql_cores_bytes(staff_user, skip):
    _row_variety(staff_user)
    built: list[bool] = []
    variables = {"skip": skip}
    fast = _counting_schema(built).execute_sync(
        ROWS, variable_values=variables, context_value=_context(staff_user)
    )
    reference = _graphql_core_schema().execute_sync(
        ROWS, variable_values=variables, context_value=_context(staff_user)
    )
    assert fast.errors is None, fast.errors
    assert _response_bytes(fast) == _response_bytes(reference)
    # Newest first: no SMS and unsent (a null sentDatetime) fall back; the sent row
    # without a SID is plain only while twilioSid is skipped; the __typename list
    # is never tried (its plan is not plain).
    assert built == [False, False, skip, True], built
    assert len(fast.data["typed"]["results"]) == 4


@pytest.mark.django_db
def test_plain_rows_err_as_graphql_core_does(staff_user):
    """A value the enum lacks, in a row and in its SMS, and (SQLite, which stores it) an
    Int past 32 bits: same data, errors and paths."""
    from django.db import connection

    from notification.models import SmsNotification

    notes = _row_variety(staff_user)
    # Rows 0 and 1 would otherwise be built directly; row 2 falls back anyway.
    Notification.objects.filter(pk=notes[0].pk).update(status="bogus")
    SmsNotification.objects.filter(notification=notes[2]).update(delivery_status="bogus")
    sms_1 = SmsNotification.objects.filter(notification=notes[1])
    if connection.vendor == "sqlite":  # PostgreSQL's integer column refuses it
        sms_1.update(error_code=2**31)
    else:
        sms_1.update(delivery_status="bogus")
    built: list[bool] = []
    query = ROWS.replace("twilioSid @skip(if: $skip)", "").replace(
        "query Rows($skip: Boolean!)", "query Rows"
    )
    fast = _counting_schema(built).execute_sync(query, context_value=_context(staff_user))
    reference = _graphql_core_schema().execute_sync(query, context_value=_context(staff_user))
    assert fast.errors and len(fast.errors) == 3
    assert _response_bytes(fast) == _response_bytes(reference)
    assert built == [False, False, False, False]  # each erring row: graphql-core's path


BENCH_LIST = """
{ notifications(pagination: {limit: 100}) {
    totalCount
    results { id title status createdDatetime sms { toPhoneNumber deliveryStatus segments } }
} }
"""


@pytest.mark.django_db
def test_a_list_of_only_plain_rows_gives_graphql_cores_bytes(staff_user):
    """bench/api.py's list: every row built ahead, graphql-core's item loop never runs."""
    _row_variety(staff_user)
    built: list[bool] = []
    fast = _counting_schema(built).execute_sync(BENCH_LIST, context_value=_context(staff_user))
    reference = _graphql_core_schema().execute_sync(BENCH_LIST, context_value=_context(staff_user))
    assert fast.errors is None, fast.errors
    assert _response_bytes(fast) == _response_bytes(reference)
    assert built == [True, True, True, True], built
    # Newest first: the row without an SMS is plain too (a null to-one in a nullable field).
    assert [row["sms"] is None for row in fast.data["notifications"]["results"]] == [
        True,
        False,
        False,
        False,
    ]


def test_the_exact_model_shortcut_answers_as_strawberry_djangos_is_type_of():
    """``build_row`` skips ``is_type_of`` for an instance of exactly the type's model
    without a type cast: for every object, its answer must be the library's."""
    import strawberry

    from notification.graphql import types
    from notification.graphql.plain_rows import FALLBACK as _FALLBACK
    from notification.graphql.plain_rows import build_row, exact_model
    from notification.models import SmsNotification

    class Stranger:
        pass

    notification_type = schema._schema.get_type("Notification")
    sms_type = schema._schema.get_type("SmsNotification")
    assert exact_model(notification_type) is Notification  # the shortcut is taken
    assert exact_model(sms_type) is SmsNotification
    objects = [
        Notification(title="t"),
        SmsNotification(),
        strawberry.cast(types.Notification, Notification(title="t")),
        strawberry.cast(types.SmsNotification, Notification(title="t")),
        strawberry.cast(types.Notification, SmsNotification()),
        Stranger(),
    ]
    for object_type in (notification_type, sms_type):
        plan = (object_type.is_type_of, (), exact_model(object_type))
        answers = [build_row(plan, item, None, None) is not _FALLBACK for item in objects]
        assert answers == [object_type.is_type_of(item, None) is True for item in objects]
    assert [
        build_row((notification_type.is_type_of, (), Notification), item, None, None) == {}
        for item in objects[:3]
    ] == [True, False, True]
