"""A list row whose whole selection is plain, completed as a dict in one loop.

``PlainFieldExecutionContext`` (``execution.py``) reads plain columns inside
graphql-core's field loop; graphql-core still completed every object of a list
on its own: ``complete_value`` twice (non-null, then the object),
``complete_object_value`` with its ``is_type_of`` check, sub-field collection,
a path per field and, for a nested relation, a resolve info. Listing 100
notifications with their SMS completed 200 objects that way, the largest part of
graphql-core's cost left after the field shortcut (issue 21's third profile).

Here a row is built directly when its type's whole selection is plain columns
and cached to-one relations to types whose selection is plain too (the plan:
``execution.PlainFieldExecutionContext._row_plan``). ``build_row`` reads and
serialises only, so the moment anything is not plain it answers ``FALLBACK``
and the caller completes the row again, whole, through graphql-core's path,
which then gives its usual answer, error and error path:

* a null or unloaded column (so a null in a non-null field errs as before);
* an uncached relation, or a null one in a non-null field;
* a value that fails to serialise (an enum value the enum lacks, an Int past
  32 bits): ``build_row`` raises, the caller falls back;
* an ``is_type_of`` check that does not pass (a plan is only made when the
  check is strawberry-django's own, which reads the object and not the resolve
  info, so the list field's info may be passed to it, also for a nested row).

The response is the same bytes as graphql-core's: the same keys in the same
order (the grouped field set's), the same serialised values (for the column
kinds ``direct_kind`` names, exactly what the type's serialiser returns, for
exactly the Python types named; any other value goes through
``complete_leaf_value``).
``tests/graphql/test_graphql_plain_fields.py`` compares the two.
"""

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    GraphQLEnumType,
    GraphQLID,
    GraphQLInt,
    GraphQLString,
    get_nullable_type,
    is_object_type,
)
from strawberry.schema.schema_converter import CustomGraphQLEnumType
from strawberry.schema.types.base_scalars import isoformat as strawberry_isoformat
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE

#: ``build_row``'s answer when a row needs graphql-core's own path.
FALLBACK = object()

# Column kinds whose commonest values are written without ``complete_leaf_value``:
# a ``str`` for String and ID as it is, an ``int`` for Int within 32 bits as it is,
# an ``int`` for ID as its decimal string (graphql-core's ``serialize_string``,
# ``serialize_int`` and ``serialize_id``), a plain ``str``/``int`` that an enum
# has, as the enum's name (its ``_value_lookup``); a ``datetime`` for strawberry's
# DateTime as its ``isoformat()`` (the scalar's serialiser is that call).
_STR, _INT, _ID, _ENUM, _ISO = "str", "int", "id", "enum", "iso"
_AS_IS_STR = (_STR, _ID)
_ENUM_VALUE_TYPES = (str, int)  # exactly these: not bool (an int), not an enum member

#: Enum serialisers that map a plain value through ``_value_lookup``: graphql-core's,
#: and strawberry's (which differs only for enum members).
_ENUM_COERCIONS = (GraphQLEnumType.coerce_output_value, CustomGraphQLEnumType.coerce_output_value)


def direct_kind(leaf: Any) -> tuple[str | None, dict]:
    """(kind, enum value -> name) for a column of type ``leaf`` (None: always the call)."""
    if leaf is GraphQLString:
        return _STR, {}
    if leaf is GraphQLInt:
        return _INT, {}
    if leaf is GraphQLID:
        return _ID, {}
    if getattr(leaf, "coerce_output_value", None) is strawberry_isoformat:
        return _ISO, {}
    if isinstance(leaf, GraphQLEnumType) and type(leaf).coerce_output_value in _ENUM_COERCIONS:
        return _ENUM, dict(leaf._value_lookup)
    return None, {}


def plain_is_type_of(object_type: Any) -> bool:
    """Whether ``object_type``'s check may run with another field's resolve info.

    strawberry-django's generated ``is_type_of`` reads only the object (a type cast,
    an ``isinstance``); a host's own might read the info, so it keeps the full path.
    """
    check = object_type.is_type_of
    return check is None or (
        getattr(check, "__module__", None) == "strawberry_django.type"
        and getattr(check, "__qualname__", "").endswith("<locals>.is_type_of")
    )


def exact_model(object_type: Any) -> type | None:
    """The model whose exact instances ``object_type``'s check accepts unasked, or None.

    strawberry-django's ``is_type_of`` (``plain_is_type_of``) answers, for an object
    without a strawberry type cast (the ``TYPE_CAST_ATTRIBUTE`` attribute), the base
    class's check (none here: no class after the type in its MRO has one) and
    ``isinstance(obj, (type, model))``: True for an instance of exactly ``model``.
    So ``build_row`` skips the call (~1 µs, twice per listed notification) for such
    an instance, and asks the check for anything else: a subclass, a proxy, a cast
    object. None when the check is another or the model could hide a cast from the
    instance's ``__dict__`` (a class attribute, its own attribute look-up).
    ``tests/graphql/test_graphql_plain_fields.py`` compares both answers.
    """
    check = object_type.is_type_of
    cls = getattr(check, "__self__", None)
    definition = getattr(cls, "__strawberry_django_definition__", None)
    model = getattr(definition, "model", None)
    if (
        not isinstance(cls, type)
        or not isinstance(model, type)
        or not plain_is_type_of(object_type)
        or cls.__dict__.get("is_type_of") is None
        or any("is_type_of" in base.__dict__ for base in cls.__mro__[1:])
        or hasattr(model, TYPE_CAST_ATTRIBUTE)
        or hasattr(model, "__getattr__")
        or model.__getattribute__ is not object.__getattribute__
    ):
        return None
    return model


def build_row(plan: tuple, item: Any, info: Any, complete_leaf_value: Any) -> Any:
    """The completed dict for ``item``, or ``FALLBACK`` (see the module docstring).

    ``plan`` is ``(is_type_of, entries, exact model or None)``; each entry ``(name,
    None, attname, (leaf, kind, enum names))`` for a column, ``(name, relation,
    non-null, plan)`` for a cached to-one relation.
    """
    is_type_of, entries, model = plan
    values = item.__dict__
    if (type(item) is not model or TYPE_CAST_ATTRIBUTE in values) and (
        is_type_of is not None and is_type_of(item, info) is not True
    ):
        return FALLBACK
    row: dict[str, Any] = {}
    for response_name, relation, detail, sub in entries:
        if relation is None:
            value = values.get(detail)
            if value is None:
                return FALLBACK
            leaf, kind, names = sub
            value_type = type(value)
            if (value_type is str and kind in _AS_IS_STR) or (
                value_type is int and kind is _INT and GRAPHQL_MIN_INT <= value <= GRAPHQL_MAX_INT
            ):
                row[response_name] = value
            elif value_type is int and kind is _ID:
                row[response_name] = str(value)
            elif value_type is datetime and kind is _ISO:
                row[response_name] = value.isoformat()
            elif kind is _ENUM and value_type in _ENUM_VALUE_TYPES and value in names:
                row[response_name] = names[value]
            else:
                row[response_name] = complete_leaf_value(leaf, value)
            continue
        if not relation.is_cached(item):
            return FALLBACK
        related = relation.get_cached_value(item)
        if related is None:
            if detail:
                return FALLBACK
            row[response_name] = None
            continue
        nested = build_row(sub, related, info, complete_leaf_value)
        if nested is FALLBACK:
            return FALLBACK
        row[response_name] = nested
    return row


#: Lists ``PlainRows`` builds ahead: sequences, and querysets (graphql-core's own
#: ``iter()`` would load them whole anyway); any other iterable is consumed lazily.
_ROW_SOURCES = (list, tuple, QuerySet)

if TYPE_CHECKING:
    from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext as _Executor
else:
    _Executor = object


class PlainRows(_Executor):
    """The list hooks of ``execution.PlainFieldExecutionContext`` (module docstring).

    A list's rows are built in one loop ahead of graphql-core's per-item loop, which
    then only runs (with its own paths, awaitables and errors) when a row needs it,
    taking the rows already built as they are. ``_row_entries`` and ``_plain_allowed``
    are the executor's.
    """

    def complete_iterable_value(
        self,
        item_type: Any,
        field_details_list: Any,
        info: Any,
        path: Any,
        items: Any,
        position_context: Any,
    ) -> Any:
        """graphql-core's, after building the plain rows (``build_row``) in one loop."""
        plan = None
        if (
            position_context is None
            and isinstance(items, _ROW_SOURCES)
            and self._plain_allowed()
            and self.get_stream_usage(field_details_list, path) is None
        ):
            plan = self._row_plan(get_nullable_type(item_type), field_details_list)
        if plan is None:
            return super().complete_iterable_value(
                item_type, field_details_list, info, path, items, position_context
            )
        items = items if type(items) is list else list(items)
        rows, every_row = self._plain_rows(plan, items, info)
        if every_row:
            return rows
        # graphql-core's loop, for the rows that need it (``complete_list_item_value``).
        prebuilt = self.__dict__.setdefault("_prebuilt_rows", {})
        prebuilt[id(path)] = (path, rows)
        try:
            return super().complete_iterable_value(
                item_type, field_details_list, info, path, items, position_context
            )
        finally:
            del prebuilt[id(path)]

    def complete_list_item_value(
        self,
        item: Any,
        complete_results: list[Any],
        item_type: Any,
        field_details_list: Any,
        info: Any,
        item_path: Any,
        position_context: Any,
    ) -> bool:
        """graphql-core's, or the row ``complete_iterable_value`` built for this item."""
        found = self.__dict__.get("_prebuilt_rows", {}).get(id(item_path.prev))
        if found is not None and found[0] is item_path.prev:
            row = found[1][item_path.key]
            if row is not FALLBACK:
                complete_results.append(row)
                return False
        return super().complete_list_item_value(
            item,
            complete_results,
            item_type,
            field_details_list,
            info,
            item_path,
            position_context,
        )

    def _plain_rows(self, plan: tuple, items: list[Any], info: Any) -> tuple[list[Any], bool]:
        """Each item's row or ``FALLBACK``, and whether every item has its row."""
        rows: list[Any] = []
        every_row = True
        for item in items:
            try:
                row = FALLBACK if item is None else self._plain_row(plan, item, info)
            except Exception:  # graphql-core's path raises and locates it
                row = FALLBACK
            if row is FALLBACK:
                every_row = False
            rows.append(row)
        return rows, every_row

    def _row_plan(self, object_type: Any, field_details_list: Any) -> tuple | None:
        """A plain selection's plan, else None; memoised as ``collect_subfields`` is."""
        memo = self.__dict__.setdefault("_plain_row_plans", {})
        key = (object_type, id(field_details_list))
        found = memo.get(key)
        if found is not None:
            return found[1]
        plan = None
        if is_object_type(object_type) and plain_is_type_of(object_type):
            grouped_field_set, new_defer_usages, _ = self.collect_subfields(
                object_type, field_details_list
            )
            if not new_defer_usages:
                plan = self._row_entries(object_type, grouped_field_set)
        memo[key] = (field_details_list, plan)
        return plan

    def _plain_row(self, plan: tuple, item: Any, info: Any) -> Any:
        """The completed dict for ``item``, or ``FALLBACK`` (``build_row``)."""
        return build_row(plan, item, info, self.complete_leaf_value)

    def _plain_allowed(self) -> bool:
        raise NotImplementedError  # the executor's

    def _row_entries(self, object_type: Any, grouped_field_set: Any) -> tuple | None:
        raise NotImplementedError  # the executor's
