"""strawberry-django's query optimizer, with the hints of a selection found once per document.

``DjangoOptimizerExtension.optimize`` walks a field's whole selection on every
request (each sub-field's hints, GraphQL and model definitions) to find the
queryset's ``only()`` and ``select_related()``: ~0.4 ms of listing 100
notifications with their SMS, the largest GraphQL-only step left after the plain
rows (issue 21's fourth profile). For the same selection the walk gives the same
answer, so here it runs once per (schema, document, operation, variables, field
path, model, optimizer settings) for a query and its result (an ``OptimizerStore``) is
applied as the library applies it (``store.apply``, then the queryset marked
optimized).

Why that answer cannot depend on who asks: the walk reads the document, the
variables (``@skip``/``@include``), the schema, the model and static hints; the
only inputs that can read the request are the callables hints may hold (a
``prefetch_related`` or ``annotate`` callable, a related type's ``get_queryset``
building a ``Prefetch``), and whatever they return lands in the store's
``prefetch_related`` or ``annotate``. So only a store with neither is kept; a
selection whose store has either (a relation the visibility rule must filter, an
annotation) is marked and always optimised by the library's own path, per request.
Also the library's path, uncached: a mutation or subscription (their variables
change with every request: a key per request would only add work), a queryset
already optimised or evaluated, a manager or list, an inheritance queryset, an
initial store, variables that are not plain JSON, a document without source
location. Permissions are untouched: the
store only chooses columns and joins; filtering (``get_queryset``, the visibility
rule) happens before and the permission extensions around it, every request.

``tests/graphql/test_graphql_optimizer_hints.py`` compares every query's SQL with
the library's, cached and not, for several users, documents and variables.
"""

import dataclasses
import hashlib
import json
from typing import Any

from django.db.models import QuerySet
from graphql import GraphQLResolveInfo, OperationType, get_named_type
from graphql.pyutils import Path
from strawberry.types import Info
from strawberry_django.optimizer import (
    DjangoOptimizerExtension,
    OptimizerConfig,
    OptimizerStore,
    _get_gql_definition,
    _get_model_hints,
    is_optimized,
)
from strawberry_django.queryset import get_queryset_config
from strawberry_django.utils.inspect import get_possible_concrete_types, is_inheritance_qs

#: Entries kept (documents x fields); past it the oldest half is dropped. A store is
#: a few short lists; the key holds the document's SHA-256, not its text.
CACHE_SIZE = 512

#: A key whose store the library's path must compute per request.
_PER_REQUEST = object()

_stores: dict[tuple, Any] = {}


def _remember(key: tuple, value: Any) -> None:
    if len(_stores) >= CACHE_SIZE:
        for old in list(_stores)[: CACHE_SIZE // 2]:
            _stores.pop(old, None)
    _stores[key] = value


def _variables_key(variables: Any) -> str | None:
    """The variables as canonical JSON, or None when one is not plain JSON data."""
    try:
        return json.dumps(variables, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError):
        return None


def _field_path(info: GraphQLResolveInfo) -> tuple:
    """The field's response path with its parent types, list indices left out."""
    keys = []
    path: Path | None = info.path
    while path is not None:
        if not isinstance(path.key, int):
            keys.append((path.key, path.typename))
        path = path.prev
    return tuple(keys)


class CachedHintsOptimizer(DjangoOptimizerExtension):
    """``DjangoOptimizerExtension`` with its hints kept per selection (module docstring).

    Its per-field hook (``resolve``) is the library's, unchanged.
    """

    def optimize(
        self,
        qs: Any,
        info: GraphQLResolveInfo | Info,
        *,
        store: OptimizerStore | None = None,
    ) -> Any:
        raw = info._raw_info if isinstance(info, Info) else info
        key = self._key(qs, raw) if store is None and self.enabled.get() else None
        found: Any = _stores.get(key) if key is not None else _PER_REQUEST
        if found is None:  # first time: walk as the library does, keep it if it may be kept
            assert key is not None
            found = self._walk(qs, raw)
            _remember(key, found)
        if found is _PER_REQUEST:
            return super().optimize(qs, info, store=store)
        hints, config = found
        if not hints:  # the library leaves such a queryset as it is
            return qs
        qs = hints.apply(qs, info=raw, config=config)
        get_queryset_config(qs).optimized = True
        return qs

    def _config(self, info: GraphQLResolveInfo) -> OptimizerConfig:
        """The library's (``DjangoOptimizerExtension.optimize``)."""
        return OptimizerConfig(
            enable_only=self.enable_only and info.operation.operation == OperationType.QUERY,
            enable_select_related=self.enable_select_related,
            enable_prefetch_related=self.enable_prefetch_related,
            enable_annotate=self.enable_annotate_optimization,
            prefetch_custom_queryset=self.prefetch_custom_queryset,
        )

    def _key(self, qs: Any, info: GraphQLResolveInfo) -> tuple | None:
        """What the walk reads, or None where the library's path applies uncached."""
        if (
            not isinstance(qs, QuerySet)
            or qs._result_cache is not None
            or is_optimized(qs)
            or is_inheritance_qs(qs)
        ):
            return None
        operation = info.operation
        if operation.operation is not OperationType.QUERY or operation.loc is None:
            return None
        # graphql-core passes the coerced values (typed as ``VariableValues``, whose
        # ``coerced`` they are in its stubs).
        values = info.variable_values
        variables = _variables_key(getattr(values, "coerced", values))
        if variables is None:
            return None
        return (
            info.schema,
            hashlib.sha256(operation.loc.source.body.encode()).digest(),
            operation.loc.start,
            variables,
            _field_path(info),
            info.parent_type.name,
            info.field_name,
            qs.model,
            type(self),
            dataclasses.astuple(self._config(info)),
            self.enable_nested_relations_prefetch,
        )

    def _walk(self, qs: QuerySet, info: GraphQLResolveInfo) -> Any:
        """(store, config) as the library's ``optimize`` finds them, or ``_PER_REQUEST``."""
        config = self._config(info)
        schema = info.schema._strawberry_schema  # type: ignore[attr-defined]
        strawberry_type = schema.get_type_by_name(get_named_type(info.return_type).name)
        if strawberry_type is None:
            return _PER_REQUEST
        store = OptimizerStore()
        for concrete in get_possible_concrete_types(qs.model, schema, strawberry_type):
            new_store = _get_model_hints(
                qs.model,
                schema,
                concrete,
                parent_type=_get_gql_definition(schema, concrete),
                info=info,
                config=config,
                subclass_collection=None,
            )
            if new_store is not None:
                store |= new_store
        if store.prefetch_related or store.annotate:
            return _PER_REQUEST
        return store.copy(), config
