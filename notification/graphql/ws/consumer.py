"""The GraphQL websocket endpoint: strawberry's channels consumer, logged-in users only.

The user comes from the session cookie, looked up once when the socket opens
(``SessionUserMiddleware``). Anonymous sockets are refused at the handshake
(HTTP 403), before any GraphQL protocol starts. Cross-site pages are refused by
strawberry's origin check: same-origin pages and non-browser clients (no
``Origin``) may connect, other origins only when listed in
``DJANGO_CSRF_TRUSTED_ORIGINS`` or ``DJANGO_CORS_ALLOWED_ORIGINS`` (the settings merge them).

Built for fan-out: one status change goes to every subscriber in the process,
so per-message work on the way out is kept small (see ``SessionUserMiddleware``
and ``SessionGraphQLWSConsumer.encode_json``).
"""

import json
from collections import OrderedDict
from typing import Any

from django.conf import settings
from strawberry.channels import GraphQLWSConsumer
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

from notification.connections import run_in_db_thread
from notification.graphql.ws.authority import session_key, user_for_session, websocket_schema
from notification.graphql.ws.frames import encode_value
from notification.graphql.ws.guard import AllowedHostsMiddleware, SocketGuardMixin
from notification.graphql.ws.lane import LaneTransportWSHandler, LaneWSHandler

#: Distinct recent ``data`` objects whose JSON is kept for reuse.
_ENCODED_DATA_KEPT = 256


class SessionUserMiddleware:
    """Sets ``scope["user"]`` from the session cookie, once, when the socket opens.

    channels' ``AuthMiddlewareStack`` finds the same user, but its session
    middleware also wraps every outgoing message (to save a modified session),
    which at 1,000 subscribers was about 5% of the CPU per published change.
    Nothing on these sockets modifies the session, so the lookup is all that is
    needed; it runs in the webhook's database thread (a kept connection).
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        user = await run_in_db_thread(user_for_session, session_key(scope))
        return await self.inner({**scope, "user": user}, receive, send)


_encoded_data: "OrderedDict[int, tuple[Any, str]]" = OrderedDict()
_encode_string = json.encoder.encode_basestring_ascii


def _encode_data(data: Any) -> str:
    """JSON of a result's ``data``, computed once per object (subscribers share results)."""
    entry = _encoded_data.get(id(data))
    if entry is not None and entry[0] is data:
        return entry[1]
    encoded = json.dumps(data, separators=(",", ":"))
    # Keeping ``data`` alive in the entry keeps its id from being reused meanwhile.
    _encoded_data[id(data)] = (data, encoded)
    if len(_encoded_data) > _ENCODED_DATA_KEPT:
        _encoded_data.popitem(last=False)
    return encoded


class SessionGraphQLWSConsumer(SocketGuardMixin, GraphQLWSConsumer):
    """Refuses the handshake unless the session cookie belongs to a logged-in user.

    ``SocketGuardMixin`` adds the limits and the authority re-checks (``ws_guard``);
    the handlers let subscriptions write their events directly (``ws.lane``).
    """

    graphql_transport_ws_handler_class = LaneTransportWSHandler
    graphql_ws_handler_class = LaneWSHandler

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

    def encode_json(self, data: object) -> str | bytes:
        """As strawberry encodes, but a result's ``data`` shared by many subscribers is
        encoded once (``notification.graphql.ws.subscriptions.SharedEventExecutionContext``)."""
        payload = data.get("payload") if isinstance(data, dict) else None
        if (
            isinstance(data, dict)
            and type(payload) is dict
            and len(data) > 1
            and len(payload) == 1
            and isinstance(payload.get("data"), dict)
            and list(data)[-1] == "payload"
        ):
            head = ",".join(
                f"{_encode_string(key)}:{encode_value(value)}"
                for key, value in data.items()
                if key != "payload"
            )
            return f'{{{head},"payload":{{"data":{_encode_data(payload["data"])}}}}}'
        return super().encode_json(data)


def trusted_origins() -> list[str]:
    """``CSRF_TRUSTED_ORIGINS`` without wildcard entries (strawberry matches exact origins)."""
    return [origin for origin in settings.CSRF_TRUSTED_ORIGINS if "*" not in origin]


def graphql_ws_application(schema: Any) -> Any:
    """The ASGI app for ``/graphql/`` websockets, both subscription protocols."""
    return AllowedHostsMiddleware(
        SessionUserMiddleware(
            SessionGraphQLWSConsumer.as_asgi(
                schema=websocket_schema(schema),
                subscription_protocols=(GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL),
                allowed_origins=trusted_origins(),
            )
        )
    )
