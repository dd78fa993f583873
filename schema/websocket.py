"""The GraphQL websocket endpoint: strawberry's channels consumer, logged-in users only.

The user comes from the session cookie (``channels.auth.AuthMiddlewareStack``
around this consumer). Anonymous sockets are refused at the handshake (HTTP 403),
before any GraphQL protocol starts. Cross-site pages are refused by strawberry's
origin check: same-origin pages and non-browser clients (no ``Origin``) may
connect, other origins only when listed in ``DJANGO_CSRF_TRUSTED_ORIGINS``.
"""

from typing import Any

from django.conf import settings
from strawberry.channels import GraphQLWSConsumer
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL


class SessionGraphQLWSConsumer(GraphQLWSConsumer):
    """Refuses the handshake unless the session cookie belongs to a logged-in user."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close()  # before accept(): the handshake is answered 403
            return
        await super().connect()

    async def disconnect(self, code: int) -> None:
        if self.run_task is None:  # refused in connect(): nothing was started
            return
        await super().disconnect(code)


def trusted_origins() -> list[str]:
    """``CSRF_TRUSTED_ORIGINS`` without wildcard entries (strawberry matches exact origins)."""
    return [origin for origin in settings.CSRF_TRUSTED_ORIGINS if "*" not in origin]


def graphql_ws_application(schema: Any) -> Any:
    """The ASGI app for ``/graphql/`` websockets, both subscription protocols."""
    return SessionGraphQLWSConsumer.as_asgi(
        schema=schema,
        subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
        allowed_origins=trusted_origins(),
    )
