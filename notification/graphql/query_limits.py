"""What one GraphQL document may cost before it runs: strawberry's own limiters, per request.

``QueryLimits`` (in ``parts.EXTENSIONS``) applies, from the settings of the moment:

* ``GRAPHQL_MAX_TOKENS``: the parser stops counting past it (a 120,000-alias
  document is refused after 2,000 tokens, not parsed whole);
* ``GRAPHQL_MAX_DEPTH`` and ``GRAPHQL_MAX_ALIASES``: strawberry's
  ``QueryDepthLimiter`` and ``MaxAliasesLimiter`` rules, checked before the rest
  of validation, so an oversized document costs one cheap pass;
* ``GRAPHQL_INTROSPECTION`` (default: ``DEBUG``): graphql-core's rule refusing
  ``__schema`` and ``__type``; ``schema.graphql`` (``make schema``) stays the
  frontend's source of the schema, since the export does not introspect over HTTP;
* a document with several operations must name the one to run (``operationName``),
  as the GraphQL spec says; strawberry would otherwise run the first.

0 turns a numeric limit off. Each refusal is a GraphQL error with a stable code:
``too_many_tokens``, ``query_too_deep``, ``too_many_aliases``,
``introspection_disabled``, ``operation_name_required``.
"""

import functools
from collections.abc import Iterator

from django.conf import settings
from graphql import ASTValidationRule, GraphQLError, NoSchemaIntrospectionCustomRule, validate
from graphql.language import OperationDefinitionNode
from strawberry.extensions import SchemaExtension
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import IgnoreContext
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule

from notification.conf import app_settings


def introspection_enabled() -> bool:
    setting = app_settings.GRAPHQL_INTROSPECTION
    return settings.DEBUG if setting is None else bool(setting)


def _is_introspection(ignore: IgnoreContext) -> bool:
    # Introspection has its own switch; its nested ofType selections are not a cost.
    return ignore.field_name.startswith("__")


@functools.lru_cache(maxsize=8)
def _depth_rule(max_depth: int) -> type[ASTValidationRule]:
    return depth_rule(max_depth, _is_introspection)


@functools.lru_cache(maxsize=8)
def _aliases_rule(max_aliases: int) -> type[ASTValidationRule]:
    return aliases_rule(max_aliases)


def _coded(errors: list[GraphQLError], code: str) -> list[GraphQLError]:
    for error in errors:
        error.extensions = {**(error.extensions or {}), "code": code}
    return errors


class QueryLimits(SchemaExtension):
    def on_parse(self) -> Iterator[None]:
        context = self.execution_context
        max_tokens = app_settings.GRAPHQL_MAX_TOKENS
        if max_tokens:
            context.parse_options["max_tokens"] = max_tokens
        yield
        # graphql-core's only way to say it stopped at the token limit is its message.
        for error in context.pre_execution_errors or []:
            if "tokens. Parsing aborted" in error.message:
                _coded([error], "too_many_tokens")

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        # Already checked (and validated) with the document, off the event loop, on the
        # websocket schema (``ws_parsing``).
        if document is not None and context.pre_execution_errors is None:
            errors = limit_errors(context)
            if errors:
                # Set before validation runs: strawberry then skips the full validation.
                context.pre_execution_errors = errors
        yield


def limit_errors(context) -> list[GraphQLError]:
    """The first limit this context's document exceeds, as coded errors (none: [])."""
    document = context.graphql_document
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if len(operations) > 1 and context._provided_operation_name is None:
        return [
            GraphQLError(
                "This document has several operations: say which to run (operationName).",
                extensions={"code": "operation_name_required"},
            )
        ]
    schema = context.schema._schema
    checks: list[tuple[type[ASTValidationRule], str]] = []
    if app_settings.GRAPHQL_MAX_DEPTH:
        checks.append((_depth_rule(app_settings.GRAPHQL_MAX_DEPTH), "query_too_deep"))
    if app_settings.GRAPHQL_MAX_ALIASES:
        checks.append((_aliases_rule(app_settings.GRAPHQL_MAX_ALIASES), "too_many_aliases"))
    if not introspection_enabled():
        checks.append((NoSchemaIntrospectionCustomRule, "introspection_disabled"))
    for rule, code in checks:
        errors = validate(schema, document, [rule])
        if errors:
            return _coded(list(errors), code)
    return []
