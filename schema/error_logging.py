"""Log GraphQL errors by whose fault they are: the client's in one line, ours with a traceback.

strawberry logs every error at ERROR with the exception's traceback, so a
caller who is not logged in, lacks a permission or sends a bad id produced a
40-line traceback indistinguishable from a bug. Errors the client caused and
can fix are expected traffic: one INFO line each. Everything else (an
exception from our code) keeps strawberry's ERROR with traceback, so real
faults still stand out.
"""

import logging

import strawberry
from django.core.exceptions import PermissionDenied, ValidationError
from graphql import GraphQLError
from strawberry.types import ExecutionContext

logger = logging.getLogger("schema.client_errors")

#: Raised on purpose for the caller's mistakes: permissions (strawberry-django's
#: ``PermissionDenied``, the subscriptions' ``PermissionError``), invalid input
#: (``ValidationError``), and ``GraphQLError`` raised by a resolver with a code.
CLIENT_ERROR_TYPES: tuple[type[BaseException], ...] = (
    PermissionDenied,
    PermissionError,
    ValidationError,
    GraphQLError,
)


def is_client_error(error: GraphQLError) -> bool:
    """True for errors the caller caused: syntax, validation, variables, refusals, bad input.

    Errors without an original exception and without a path come from parsing,
    validation or variable coercion (the request itself is wrong); those with a
    path but no exception (a null where the schema promises a value) are ours.
    """
    original = error.original_error
    if original is None:
        return error.path is None
    return isinstance(original, CLIENT_ERROR_TYPES)


def _describe(error: GraphQLError) -> str:
    where = ".".join(str(key) for key in error.path) if error.path else "request"
    code = (error.extensions or {}).get("code")
    return f"{where}: {error.message}" + (f" (code {code})" if code else "")


class Schema(strawberry.Schema):
    """strawberry's schema, logging client errors as one line (see the module docstring)."""

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        ours = []
        for error in errors:
            if is_client_error(error):
                logger.info("GraphQL client error: %s", _describe(error))
            else:
                ours.append(error)
        super().process_errors(ours, execution_context)
