"""Model attributes resolved by strawberry's plain path: a getattr, not the full resolver chain.

strawberry-django marks every one of its fields "not basic", so each scalar of each
row goes through strawberry's general resolver: an ``Info`` built, the arguments
converted, the field-extension chain assembled, then ``get_result``. Listing 100
notifications resolves ~800 such fields, and that chain was most of the list's
time beyond its floor (issue 21's profile). A field that is a plain model
attribute has nothing for that chain to do, so here strawberry calls
``get_result`` directly (its path for fields without a resolver), which still
reads the value the same way (a deferred column is still loaded, in a thread
under ASGI).

A field is plain only when nothing could need the chain: no resolver, no field
extension (so no permission extension), no permission classes, no arguments, not a
relation. Anything else keeps strawberry-django's behaviour exactly; the query
optimizer still sees every field (it reads the type, not the resolver), and its
per-field hook still runs.

``PlainFieldExecutionContext`` goes one step further for the same fields, inside
graphql-core: a loaded column whose value is not null is read and serialised
directly, and a to-one relation the query's ``select_related`` already cached is
taken from Django's cache, without graphql-core's per-field resolve info, the
middleware chain and the resolver call (issue 21's second profile: graphql-core's
work per field, ~800 of them, was the largest part of listing 100 notifications
left after the basic path; the optimizer's per-field hook alone ran 803 times).
What it skips can change nothing for these fields:

* the resolver: it is the basic path above (the same ``__dict__`` read), or for a
  relation strawberry-django's own read of the same cache;
* the middleware: only when every middleware is strawberry-django's optimizer,
  whose per-field hook acts on querysets and managers only (never a column value
  or a model instance); any other middleware (a host's tracing, say) keeps every
  field on graphql-core's path;
* nulls, unloaded columns, uncached relations, and every field that is not plain
  (resolvers, permissions, arguments, lists) take graphql-core's path unchanged,
  so errors (a null in a non-null field) are raised and located the same way.
"""

import functools
from functools import cached_property
from typing import Any

import strawberry_django
from django.db.models.fields.related_descriptors import (
    ForwardManyToOneDescriptor,
    ReverseOneToOneDescriptor,
)
from django.db.models.query_utils import DeferredAttribute
from graphql import (
    GraphQLField,
    get_nullable_type,
    is_leaf_type,
    is_non_null_type,
)
from graphql.pyutils import Path, Undefined, gather_with_cancel
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import GraphQLCoreConverter
from strawberry_django.fields.field import StrawberryDjangoField
from strawberry_django.optimizer import DjangoOptimizerExtension

from notification.graphql.optimizer_hints import CachedHintsOptimizer
from notification.graphql.plain_rows import PlainRows, direct_kind, exact_model

_NOT_LOADED = object()

#: The middlewares whose per-field hook is strawberry-django's optimizer's, unchanged.
_OPTIMIZERS = (DjangoOptimizerExtension, CachedHintsOptimizer)


class PlainAttributeField(StrawberryDjangoField):
    @property
    def is_basic_field(self) -> bool:
        """Read at schema build, once the type has set ``is_relation``."""
        return (
            self.base_resolver is None
            and not self.extensions
            and not self.permission_classes
            and not self.arguments
            and not self.is_relation
        )

    @cached_property
    def _column_attname(self) -> str | None:
        """The instance ``__dict__`` key of a plain column, else None.

        Only a descriptor that is exactly Django's ``DeferredAttribute`` reads the
        value straight from ``__dict__``; a subclass (file fields, ...) wraps it.
        """
        origin = self.origin_django_type
        model = origin.model if origin is not None else None
        if model is None or not self.is_basic_field:
            return None
        descriptor = model.__dict__.get(self.django_name or self.python_name)
        if type(descriptor) is not DeferredAttribute:
            return None
        return descriptor.field.attname

    def get_result(self, source: Any, info: Any, args: list, kwargs: dict) -> Any:
        """A loaded column's value as the descriptor returns it; else the library's way."""
        attname = self._column_attname
        if attname is not None and source is not None:
            value = source.__dict__.get(attname, _NOT_LOADED)
            if value is not _NOT_LOADED:
                return value
        return super().get_result(source, info, args, kwargs)

    @cached_property
    def _cached_relation(self) -> Any:
        """The Django relation (``FieldCacheMixin``) a plain to-one relation is cached by.

        A relation qualifies when the field has nothing but the read to do (no
        resolver, extension, permission or argument; strawberry-django's
        ``get_result`` then returns the cached object as it is) and is a forward
        foreign key / one-to-one or a reverse one-to-one.
        """
        origin = self.origin_django_type
        model = origin.model if origin is not None else None
        if (
            model is None
            or not self.is_relation
            or self.base_resolver is not None
            or self.extensions
            or self.permission_classes
            or self.arguments
        ):
            return None
        descriptor = model.__dict__.get(self.django_name or self.python_name)
        if type(descriptor) is ReverseOneToOneDescriptor:
            return descriptor.related
        if isinstance(descriptor, ForwardManyToOneDescriptor):
            return descriptor.field
        return None


_NO_PLAN = ("none",)


def _plan(field_def: GraphQLField | None) -> tuple:
    """How ``PlainFieldExecutionContext`` may resolve ``field_def`` (memoised on it):
    ``("column", attname, leaf type, field type)``, ``("relation", relation, field_def)``
    or ``("none",)``."""
    if field_def is None:
        return _NO_PLAN
    plan = field_def.__dict__.get("_plain_plan")
    if plan is not None:
        return plan
    plan = _NO_PLAN
    field = field_def.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if isinstance(field, PlainAttributeField):
        leaf = get_nullable_type(field_def.type)
        if (
            field._column_attname is not None
            and is_leaf_type(leaf)
            # strawberry's basic resolver (no exception handler of the schema applies)
            and getattr(field_def.resolve, "_is_default", False)
        ):
            plan = ("column", field._column_attname, leaf, field_def.type)
        elif field._cached_relation is not None:
            plan = ("relation", field._cached_relation, field_def)
    field_def.__dict__["_plain_plan"] = plan
    return plan


async def _with_awaited_fields(
    results: dict[str, Any], awaitable_fields: list[str]
) -> dict[str, Any]:
    """``results`` once its awaitable fields have resolved (graphql-core's ``get_results``)."""
    awaited = await gather_with_cancel(*(results[field] for field in awaitable_fields))
    results.update(zip(awaitable_fields, awaited, strict=True))
    return results


class PlainFieldExecutionContext(PlainRows, StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor with the plain-field shortcut (see the module docstring).

    Rows: the items of a list whose whole selection is plain are built in one loop,
    the others by graphql-core's path (``notification.graphql.plain_rows.PlainRows``).
    """

    def _row_entries(self, object_type: Any, grouped_field_set: Any) -> tuple | None:
        """The entries of a row plan (``plain_rows.build_row``), or None if one is not plain."""
        entries = []
        for response_name, sub_fields in grouped_field_set.items():
            plan = _plan(self.schema.get_field(object_type, sub_fields[0].node.name.value))
            if plan[0] == "column":
                entries.append((response_name, None, plan[1], (plan[2], *direct_kind(plan[2]))))
            elif plan[0] == "relation":
                field_type = plan[2].type
                nested = self._row_plan(get_nullable_type(field_type), sub_fields)
                if nested is None:
                    return None
                entries.append((response_name, plan[1], is_non_null_type(field_type), nested))
            else:
                return None
        return (object_type.is_type_of, tuple(entries), exact_model(object_type))

    def _plain_allowed(self) -> bool:
        allowed = self.__dict__.get("_plain_allowed_value")
        if allowed is None:
            manager = self.middleware_manager
            middlewares = manager.middlewares if manager is not None else ()
            allowed = all(type(m) in _OPTIMIZERS for m in middlewares)
            self.__dict__["_plain_allowed_value"] = allowed
        return allowed

    def _field_plans(self, parent_type: Any, grouped_field_set: Any) -> list[tuple]:
        """(response name, field group, column plan or None) for each field of the set.

        Memoised per execution on the set's identity (graphql-core collects a
        selection once per type and reuses the set for every row of a list); the
        set is kept alive with its plans so that its id cannot be reused meanwhile.
        """
        memo = self.__dict__.setdefault("_plain_field_plans", {})
        key = (parent_type, id(grouped_field_set))
        found = memo.get(key)
        if found is not None:
            return found[1]
        plans = []
        for response_name, field_details_list in grouped_field_set.items():
            plan = _plan(self.schema.get_field(parent_type, field_details_list[0].node.name.value))
            column = plan[1:] if plan[0] == "column" else None
            plans.append((response_name, field_details_list, column))
        memo[key] = (grouped_field_set, plans)
        return plans

    def execute_fields(
        self,
        parent_type: Any,
        source_value: Any,
        path: Any,
        grouped_field_set: Any,
        position_context: Any,
    ) -> Any:
        """graphql-core's ``execute_fields``, reading loaded non-null columns in the loop.

        Every other field (and a column that is null or not loaded) goes through
        ``execute_field`` exactly as graphql-core's loop does; a column that fails
        to serialise is handled at its own path, as graphql-core would.
        """
        if source_value is None or not self._plain_allowed():
            return super().execute_fields(
                parent_type, source_value, path, grouped_field_set, position_context
            )
        values = getattr(source_value, "__dict__", {})
        complete_leaf_value = self.complete_leaf_value
        is_awaitable = self.is_awaitable
        results: dict[str, Any] = {}
        awaitable_fields: list[str] = []
        try:
            for response_name, field_details_list, column in self._field_plans(
                parent_type, grouped_field_set
            ):
                if column is not None:
                    value = values.get(column[0])
                    if value is not None:
                        try:
                            results[response_name] = complete_leaf_value(column[1], value)
                        except Exception as raw_error:
                            field_path = Path(path, response_name, parent_type.name)
                            self.handle_field_error(
                                raw_error, column[2], field_details_list, field_path
                            )
                            results[response_name] = None
                        continue
                result = self.execute_field(
                    parent_type,
                    source_value,
                    field_details_list,
                    Path(path, response_name, parent_type.name),
                    position_context,
                )
                if result is not Undefined:
                    results[response_name] = result
                    if is_awaitable(result):
                        awaitable_fields.append(response_name)
        except Exception:
            if awaitable_fields:
                self.settle_in_background([results[field] for field in awaitable_fields])
            raise
        if not awaitable_fields:
            return results
        return _with_awaited_fields(results, awaitable_fields)

    def execute_field(
        self,
        parent_type: Any,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        if source is not None and self._plain_allowed():
            plan = _plan(self.schema.get_field(parent_type, field_details_list[0].node.name.value))
            kind = plan[0]
            if kind == "column":
                value = getattr(source, "__dict__", {}).get(plan[1])
                if value is not None:
                    try:
                        return self.complete_leaf_value(plan[2], value)
                    except Exception as raw_error:
                        self.handle_field_error(raw_error, plan[3], field_details_list, path)
                        return None
            elif kind == "relation" and plan[1].is_cached(source):
                return self._complete_cached(
                    plan[2],
                    plan[1].get_cached_value(source),
                    field_details_list,
                    path,
                    parent_type,
                    position_context,
                )
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def _complete_cached(
        self,
        field_def: GraphQLField,
        related: Any,
        field_details_list: Any,
        path: Any,
        parent_type: Any,
        position_context: Any,
    ) -> Any:
        """graphql-core's ``execute_field`` from the resolved value on: same errors."""
        info = self.build_resolve_info(
            field_def, [details.node for details in field_details_list], parent_type, path
        )
        try:
            completed = self.complete_value(
                field_def.type, field_details_list, info, path, related, position_context
            )
        except Exception as raw_error:
            self.handle_field_error(raw_error, field_def.type, field_details_list, path)
            return None
        if not self.is_awaitable(completed):
            return completed

        async def await_completed() -> Any:
            try:
                return await completed
            except Exception as raw_error:
                self.handle_field_error(raw_error, field_def.type, field_details_list, path)
                return None

        return await_completed()


#: ``strawberry_django.field`` for the app's types: plain attributes take the plain path.
field = functools.partial(strawberry_django.field, field_cls=PlainAttributeField)
