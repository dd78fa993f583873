"""The ``/graphql/`` HTTP view class: strawberry's, refusing subscriptions with a clear error.

Subscriptions run over the websocket at the same path (``config/asgi.py``).
Sent over HTTP, strawberry's synchronous view executed them anyway and answered
"Cannot return null for non-nullable field Subscription.smsStatus." with a
traceback in the log. Here they get a GraphQL error (code ``use_websocket``)
saying where to go, and one log line.
"""

import logging
from typing import Any

from graphql import GraphQLError, OperationType, get_operation_ast, parse
from strawberry.django.views import GraphQLView
from strawberry.types import ExecutionResult

logger = logging.getLogger("schema.client_errors")

SUBSCRIPTION_OVER_HTTP_MESSAGE = (
    "Subscriptions need a websocket: connect to /graphql/ with ws:// (wss:// over HTTPS) "
    "using the graphql-transport-ws protocol (GraphiQL does this itself)."
)


def is_subscription(query: str | None, operation_name: str | None) -> bool:
    """Whether the operation that would run is a subscription.

    Only documents mentioning "subscription" are parsed here; a document that
    does not parse is left to strawberry, which reports the syntax error.
    """
    if not query or "subscription" not in query:
        return False
    try:
        operation = get_operation_ast(parse(query), operation_name)
    except GraphQLError:
        return False
    return operation is not None and operation.operation == OperationType.SUBSCRIPTION


class HttpGraphQLView(GraphQLView):
    def execute_single(self, **kwargs: Any) -> ExecutionResult:
        data = kwargs["request_data"]
        if is_subscription(data.query, data.operation_name):
            logger.info("GraphQL client error: request: subscription sent over HTTP")
            return ExecutionResult(
                data=None,
                errors=[
                    GraphQLError(
                        SUBSCRIPTION_OVER_HTTP_MESSAGE, extensions={"code": "use_websocket"}
                    )
                ],
            )
        return super().execute_single(**kwargs)
