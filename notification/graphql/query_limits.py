"""What one GraphQL request may cost before it runs, checked before anything is converted.

``QueryLimits`` (in ``parts.EXTENSIONS``) applies, from the settings of the moment:

* ``GRAPHQL_MAX_TOKENS``: the parser stops counting past it (a 120,000-alias
  document is refused after 2,000 tokens, not parsed whole);
* ``GRAPHQL_MAX_ITEMS``: the length of every list in the raw variables and the
  document's list literals (``list_caps``), before strawberry converts any
  argument into input objects;
* ``GRAPHQL_MAX_DEPTH``, ``GRAPHQL_MAX_ALIASES`` and ``GRAPHQL_MAX_FIELDS``: the
  document's expanded depth, aliases and fields, from one walk that visits each
  fragment once (``document_cost``), checked before the rest of validation, so
  a document costs one pass in proportion to its size, however its fragments
  multiply;
* ``GRAPHQL_INTROSPECTION`` (default: ``DEBUG``): graphql-core's rule refusing
  ``__schema`` and ``__type``; ``schema.graphql`` (``make schema``) stays the
  frontend's source of the schema, since the export does not introspect over HTTP;
* a document with several operations must name the one to run (``operationName``),
  as the GraphQL spec says; strawberry would otherwise run the first;
* with introspection off, no error says "Did you mean …": graphql-core suggests
  the names of fields, arguments, types and enum values close to a typo, which
  hands the schema to anyone who probes it (strawberry's
  ``disable_field_suggestions`` only covers fields, and only when a host's
  schema sets it; this extension is in ``parts.EXTENSIONS``, so a host project
  merging the app's parts gets it too).

A query text that parsed, passed every limit and validated before is taken from
``document_cache`` (no parse, no validation, its cost walk memoised); every limit
above is still compared, per request, with the settings of the moment.

0 turns a numeric limit off. Each refusal is a GraphQL error with a stable code:
``too_many_tokens``, ``too_many_items`` (with the ``field`` it found, e.g.
``variables.input``), ``query_too_deep``, ``too_many_aliases``,
``query_too_complex``, ``introspection_disabled``, ``operation_name_required``.
"""

import re
from collections.abc import Iterator

from django.conf import settings
from graphql import GraphQLError, NoSchemaIntrospectionCustomRule, validate
from graphql.language import DocumentNode, OperationDefinitionNode
from strawberry.extensions import SchemaExtension

from notification.conf import app_settings
from notification.graphql.cost import (
    VALID_DOCUMENTS,
    Cost,
    ValidDocument,
    cache_key,
    list_over_cap,
    literal_list_lengths,
    operation_costs,
)

# graphql-core ends a message with its suggestions: " Did you mean 'x' or 'y'?",
# " Did you mean the enum value 'X'?" (names never contain a question mark).
_SUGGESTION = re.compile(r"\s*Did you mean [^?]*\?")


def introspection_enabled() -> bool:
    setting = app_settings.GRAPHQL_INTROSPECTION
    return settings.DEBUG if setting is None else bool(setting)


def without_suggestions(errors: list[GraphQLError] | None) -> None:
    """Drop graphql-core's "Did you mean …" from ``errors`` unless introspection is on."""
    if not errors or introspection_enabled():
        return
    for error in errors:
        if "Did you mean" in error.message:
            error.message = _SUGGESTION.sub("", error.message)


class QueryLimits(SchemaExtension):
    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        max_tokens = app_settings.GRAPHQL_MAX_TOKENS
        if max_tokens:
            context.parse_options["max_tokens"] = max_tokens
        self._key = None
        self._valid: ValidDocument | None = None
        if context.graphql_document is None:
            self._key = cache_key(
                context.schema._schema,
                context.query,
                max_tokens,
                introspection_enabled(),
                tuple(context.validation_rules),
            )
            self._valid = VALID_DOCUMENTS.get(self._key) if self._key is not None else None
            if self._valid is not None:
                # strawberry skips its parse when the document is already there.
                context.graphql_document = self._valid.document
        yield
        # graphql-core's only way to say it stopped at the token limit is its message.
        for error in context.pre_execution_errors or []:
            if "tokens. Parsing aborted" in error.message:
                error.extensions = {**(error.extensions or {}), "code": "too_many_tokens"}

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # Already checked (and validated) with the document, off the event loop, on the
        # websocket schema (``ws_parsing``).
        checked = document is not None and context.pre_execution_errors is None
        costs = None
        if checked and document is not None:
            valid = getattr(self, "_valid", None)
            if valid is None:
                costs = _costs(document)
            errors = limit_errors(
                context,
                valid.costs if valid else costs,
                memoised=valid is not None,
                list_lengths=valid.list_lengths if valid else None,
            )
            if errors:
                # Set before validation runs: strawberry then skips the full validation.
                context.pre_execution_errors = errors
            elif valid is not None:
                # Validated before, with the same schema, rules and introspection switch:
                # no error then, none now (strawberry skips validation when this is set).
                context.pre_execution_errors = []
        yield
        key = getattr(self, "_key", None)
        if (
            checked
            and document is not None
            and key is not None
            and getattr(self, "_valid", None) is None
            and context.pre_execution_errors == []
            and isinstance(costs, tuple)
        ):
            VALID_DOCUMENTS.put(key, ValidDocument(document, costs, literal_list_lengths(document)))
        without_suggestions(context.pre_execution_errors)

    def on_execute(self) -> Iterator[None]:
        yield
        # Variables are coerced at execution: a misspelt enum value or input field in
        # them is suggested there.
        result = self.execution_context.result
        without_suggestions(getattr(result, "errors", None))


def limit_errors(
    context,
    costs: "tuple | RecursionError | None" = None,
    *,
    memoised: bool = False,
    list_lengths: tuple[int, ...] | None = None,
) -> list[GraphQLError]:
    """The first limit this context's document exceeds, as coded errors (none: []).

    ``costs``: the document's ``_costs`` when the caller already has them. ``memoised``:
    the document comes from ``VALID_DOCUMENTS``, so it passed the introspection rule
    under the same switch (part of the key) and that walk is not run again.
    ``list_lengths``: its ``literal_list_lengths`` when memoised with it.
    """
    if costs is None:
        costs = _costs(context.graphql_document)
    document = context.graphql_document
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) > 1 and context._provided_operation_name is None:
        return [
            GraphQLError(
                "This document has several operations: say which to run (operationName).",
                extensions={"code": "operation_name_required"},
            )
        ]
    error = _items_error(document, context.variables, list_lengths) or _cost_error(costs)
    if error is not None:
        return [error]
    if not memoised and not introspection_enabled():
        errors = validate(context.schema._schema, document, [NoSchemaIntrospectionCustomRule])
        for error in errors:
            error.extensions = {**(error.extensions or {}), "code": "introspection_disabled"}
        return list(errors)
    return []


def _items_error(
    document: DocumentNode, variables: object, list_lengths: tuple[int, ...] | None = None
) -> GraphQLError | None:
    cap = app_settings.GRAPHQL_MAX_ITEMS
    found = list_over_cap(document, variables, cap, list_lengths) if cap else None
    if found is None:
        return None
    if found.total:
        message = f"This request's lists hold {found.items} items together; at most {2 * cap}."
    else:
        message = f"{found.where}: a list of {found.items} items; at most {cap}."
    return GraphQLError(message, extensions={"code": "too_many_items", "field": found.where})


def _costs(
    document: DocumentNode,
) -> tuple[tuple[OperationDefinitionNode, Cost], ...] | RecursionError:
    """Each operation's expanded cost (one walk); what the limits of the moment are compared to."""
    try:
        return tuple(operation_costs(document))
    except RecursionError as error:
        # Only a document nested deeper than Python's stack gets here (the token
        # limit off): it is deeper than any depth limit.
        return error


def _cost_error(
    costs: tuple[tuple[OperationDefinitionNode, Cost], ...] | RecursionError,
) -> GraphQLError | None:
    max_depth = app_settings.GRAPHQL_MAX_DEPTH
    max_aliases = app_settings.GRAPHQL_MAX_ALIASES
    max_fields = app_settings.GRAPHQL_MAX_FIELDS
    if isinstance(costs, RecursionError):
        return GraphQLError(
            "This document is nested too deeply.", extensions={"code": "query_too_deep"}
        )
    for operation, cost in costs:
        if max_depth and cost.depth > max_depth:
            name = operation.name.value if operation.name else "anonymous"
            return GraphQLError(
                f"'{name}' exceeds maximum operation depth of {max_depth}",
                [operation],
                extensions={"code": "query_too_deep"},
            )
    aliases = sum(cost.aliases for _, cost in costs)
    if max_aliases and aliases > max_aliases:
        return GraphQLError(
            f"{aliases} aliases found. Allowed: {max_aliases}",
            extensions={"code": "too_many_aliases"},
        )
    fields = sum(cost.fields for _, cost in costs)
    if max_fields and fields > max_fields:
        return GraphQLError(
            f"This document selects {fields} fields once its fragments are expanded; "
            f"at most {max_fields} are allowed.",
            extensions={"code": "query_too_complex"},
        )
    return None
