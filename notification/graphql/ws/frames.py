"""What the direct send lane writes (``ws.lane``): which selections it can produce exactly,
and their ``data`` JSON, computed once per event and selection.

A selection qualifies (``plan_of``) when every field is a plain leaf of the event
type with no resolver, arguments, directives or fragments (aliases and
``__typename`` allowed), so its value is the event's attribute serialised by the
field's own GraphQL type, exactly what graphql-core does for it. The JSON is
encoded as ``consumer.SessionGraphQLWSConsumer.encode_json`` encodes a result's
``data`` (compact separators), so both paths write the same bytes.
"""

import json
from collections import OrderedDict
from typing import Any

from graphql import FieldNode, GraphQLObjectType, get_nullable_type, is_leaf_type, is_non_null_type
from strawberry.schema.schema_converter import GraphQLCoreConverter

#: Attribute of a shared event holding its ``data`` JSON for each selection.
_FRAMES_ATTRIBUTE = "_lane_data"
#: Distinct selections kept for sharing between subscriptions (documents are the client's).
_SELECTIONS_KEPT = 256
_encode_string = json.encoder.encode_basestring_ascii


def encode_value(value: Any) -> str:
    """A message's own small fields (``id``, ``type``), as the consumer encodes them."""
    if type(value) is str:
        return _encode_string(value)
    return json.dumps(value, separators=(",", ":"))


def transport_head(operation_id: Any) -> str:
    """A graphql-transport-ws ``next`` message up to its ``data`` (``message_text``)."""
    return '{"id":' + encode_value(operation_id) + ',"type":"next","payload":{"data":'


def legacy_head(operation_id: Any) -> str:
    """A legacy graphql-ws ``data`` message up to its ``data`` (``message_text``)."""
    return '{"type":"data","id":' + encode_value(operation_id) + ',"payload":{"data":'


def message_text(head: str, data: str) -> str:
    """The whole message: one of the heads above, the event's ``data``, the heads' close."""
    return head + data + "}}"


def plan_of(raw: Any) -> tuple | None:
    """``((response key, attribute, leaf type, non-null), ...)`` for a plain selection."""
    if raw.operation.directives or len(raw.field_nodes) != 1:
        return None
    node = raw.field_nodes[0]
    if node.directives or node.selection_set is None:
        return None
    event_type = get_nullable_type(raw.return_type)
    if not isinstance(event_type, GraphQLObjectType):
        return None
    plan: list[
        tuple[str, str | None, Any, bool]
    ] = []  # (key, attribute, leaf type or name, non-null)
    keys = set()
    for selection in node.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives or selection.arguments:
            return None
        name = selection.name.value
        key = selection.alias.value if selection.alias else name
        if key in keys or selection.selection_set is not None:
            return None
        keys.add(key)
        if name == "__typename":
            plan.append((key, None, event_type.name, True))
            continue
        field = event_type.fields.get(name)
        attribute = _plain_attribute(field)
        if attribute is None:
            return None
        leaf = get_nullable_type(field.type)
        plan.append((key, attribute, leaf, is_non_null_type(field.type)))
    return tuple(plan) if plan else None


def _plain_attribute(field: Any) -> str | None:
    """The event attribute a field reads, when it is a plain leaf with no resolver."""
    if field is None or not is_leaf_type(get_nullable_type(field.type)):
        return None
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if definition is None or definition.base_resolver is not None or definition.extensions:
        return None
    if definition.permission_classes or definition.arguments:
        return None
    return definition.python_name


class _Selection:
    """One selection the lane writes (root key and plan); events keep their ``data`` JSON
    per selection, found by identity (hashing the plan for each subscriber cost more)."""

    __slots__ = ("plan", "root")

    def __init__(self, root: str, plan: tuple) -> None:
        self.root = root
        self.plan = plan


_selections: "OrderedDict[tuple, _Selection]" = OrderedDict()


def selection_of(root: str, plan: tuple) -> _Selection:
    """The shared ``_Selection`` for ``(root, plan)``, so equal selections share results."""
    key = (root, plan)
    selection = _selections.get(key)
    if selection is None:
        selection = _selections[key] = _Selection(root, plan)
        if len(_selections) > _SELECTIONS_KEPT:
            _selections.popitem(last=False)
    return selection


def event_data(event: Any, selection: "_Selection") -> str | None:
    """``{"<root>":{...}}`` for ``event`` as graphql-core would serialise it; computed once
    per event and selection. None when a value cannot be produced exactly."""
    frames = event.__dict__.get(_FRAMES_ATTRIBUTE)
    if frames is None:
        frames = event.__dict__[_FRAMES_ATTRIBUTE] = {}
    elif selection in frames:
        return frames[selection]
    data = frames[selection] = _encode(event, selection.root, selection.plan)
    return data


def _encode(event: Any, root: str, plan: tuple) -> str | None:
    values: dict[str, Any] = {}
    for key, attribute, leaf, non_null in plan:
        if attribute is None:
            values[key] = leaf  # __typename: the type's name
            continue
        value = getattr(event, attribute)
        if value is not None:
            try:
                value = leaf.serialize(value)
            except Exception:  # strawberry's path reports it as a field error
                return None
        if value is None and non_null:
            return None
        values[key] = value
    return json.dumps({root: values}, separators=(",", ":"))
