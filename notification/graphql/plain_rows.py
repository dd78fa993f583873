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
from typing import Any

from graphql import (
    GRAPHQL_MAX_INT,
    GRAPHQL_MIN_INT,
    GraphQLEnumType,
    GraphQLID,
    GraphQLInt,
    GraphQLString,
)
from strawberry.schema.schema_converter import CustomGraphQLEnumType
from strawberry.schema.types.base_scalars import isoformat as strawberry_isoformat

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


def build_row(plan: tuple, item: Any, info: Any, complete_leaf_value: Any) -> Any:
    """The completed dict for ``item``, or ``FALLBACK`` (see the module docstring).

    ``plan`` is ``(is_type_of, entries)``; each entry ``(name, None, attname,
    (leaf, kind, enum names))`` for a column, ``(name, relation, non-null, plan)``
    for a cached to-one relation.
    """
    is_type_of, entries = plan
    if is_type_of is not None and is_type_of(item, info) is not True:
        return FALLBACK
    values = item.__dict__
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
