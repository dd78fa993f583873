"""Parsing and validating websocket operations off the event loop.

Every websocket of a server process shares one event loop with every HTTP
request and status callback it serves under ASGI. graphql-core parses and
validates synchronously, so one large document (600,000 aliases in 11 MB)
held the loop for 24 s. Here both run in a worker thread: the loop keeps
serving while a big document is parsed (the GIL is handed back and forth
every few milliseconds). The size cap (``GRAPHQL_WS_MAX_MESSAGE_BYTES``)
bounds how big a document can be in the first place. The cost limits
(``query_limits``: token limit at parse, then depth, aliases, introspection)
are checked in the same thread: each walks the whole document, and a check
left on the loop stalled it for a third of the parse time.

Only the websocket consumer's copy of the schema carries the extension
(``websocket_schema``): its hooks are async, and the HTTP view executes
synchronously, where strawberry refuses async hooks.
"""

import asyncio
import contextlib
import copy
from collections.abc import AsyncIterator
from typing import Any

from graphql import GraphQLError, parse
from strawberry.extensions import SchemaExtension
from strawberry.schema.schema import validate_document

from notification.graphql.query_limits import limit_errors


class ParseAndValidateInThread(SchemaExtension):
    """Fills ``graphql_document`` and ``pre_execution_errors`` from a worker thread.

    strawberry then skips its own parse and validation (it checks both). A
    document that does not parse is left to strawberry, which parses it again
    on the loop to report the syntax error its usual way: the size cap keeps
    that cheap.
    """

    async def on_parse(self) -> AsyncIterator[None]:
        # Runs after ``QueryLimits.on_parse`` has set the token limit, and does the cost
        # checks and the validation in the same thread: each walks the whole document,
        # and a walk left on the loop stalls it as long as parsing would.
        context = self.execution_context
        if context.graphql_document is None and context.query:
            with contextlib.suppress(GraphQLError):
                await asyncio.to_thread(_parse_and_validate, context)
        yield


def _parse_and_validate(context: Any) -> None:
    """Parse, check the cost limits, then validate (strawberry skips what is filled in)."""
    context.graphql_document = parse(context.query, **context.parse_options)
    if context.validation_rules and context.pre_execution_errors is None:
        context.pre_execution_errors = limit_errors(context) or validate_document(
            context.schema._schema, context.graphql_document, context.validation_rules
        )


def websocket_schema(schema: Any) -> Any:
    """A shallow copy of ``schema`` whose operations parse and validate in a thread."""
    threaded = copy.copy(schema)
    threaded.extensions = (*schema.extensions, ParseAndValidateInThread)
    return threaded
