"""ASGI entry point (uvicorn): Django over HTTP, GraphQL subscriptions over websockets.

HTTP bodies are capped first (``config.body_limit``). HTTP goes to Django, which
serves everything including ``/graphql/`` queries and mutations
(``schema.views``); Twilio's status callbacks take a middleware-free path to the
same view (``notification.status.webhooks`` says why).
Websockets on ``/graphql/`` go to strawberry's channels consumer with the same
schema, speaking ``graphql-transport-ws`` and the legacy ``graphql-ws``; the
session cookie identifies the user (``notification.graphql.ws.consumer``).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Set Django up before anything imports models (the schema does).
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from config import statement_timeout  # noqa: E402
from config.body_limit import limit_request_body  # noqa: E402
from config.collector import tune_for_server as tune_collector_for_server  # noqa: E402
from notification.graphql.ws.consumer import graphql_ws_application  # noqa: E402
from notification.status.webhooks import with_status_callback_fast_path  # noqa: E402
from schema.schema import schema  # noqa: E402

# Web requests only: workers import the settings, never this module.
statement_timeout.install()

application = ProtocolTypeRouter(
    {
        "http": limit_request_body(with_status_callback_fast_path(django_application)),
        "websocket": URLRouter([re_path(r"^graphql/?$", graphql_ws_application(schema))]),
    }
)

# Last, once everything that lives for ever is loaded (config.collector says why).
tune_collector_for_server()
