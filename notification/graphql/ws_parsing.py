"""Parsing and validating websocket operations off the event loop.

Every websocket of a server process shares one event loop with every HTTP
request and status callback it serves under ASGI. graphql-core parses and
validates synchronously, so one large document (600,000 aliases in 11 MB)
held the loop for 24 s. Here both run in a worker thread: the loop keeps
serving while a big document is parsed (the GIL is handed back and forth
every few milliseconds). The size cap (``GRAPHQL_WS_MAX_MESSAGE_BYTES``)
bounds how big a document can be in the first place, and the schema's other
extensions (token, depth and alias limits) still apply: their parse options
and validation rules are on the execution context this extension reads.

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


class ParseAndValidateInThread(SchemaExtension):
    """Fills ``graphql_document`` and ``pre_execution_errors`` from a worker thread.

    strawberry then skips its own parse and validation (it checks both). A
    document that does not parse is left to strawberry, which parses it again
    on the loop to report the syntax error its usual way: the size cap keeps
    that cheap.
    """

    async def on_parse(self) -> AsyncIterator[None]:  # type: ignore[override]
        context = self.execution_context
        if context.graphql_document is None and context.query:
            with contextlib.suppress(GraphQLError):
                context.graphql_document = await asyncio.to_thread(
                    parse, context.query, **context.parse_options
                )
        yield

    async def on_validate(self) -> AsyncIterator[None]:  # type: ignore[override]
        context = self.execution_context
        if (
            context.graphql_document is not None
            and context.validation_rules
            and context.pre_execution_errors is None
        ):
            context.pre_execution_errors = await asyncio.to_thread(
                validate_document,
                context.schema._schema,
                context.graphql_document,
                context.validation_rules,
            )
        yield


def websocket_schema(schema: Any) -> Any:
    """A shallow copy of ``schema`` whose operations parse and validate in a thread."""
    threaded = copy.copy(schema)
    threaded.extensions = (*schema.extensions, ParseAndValidateInThread)
    return threaded
