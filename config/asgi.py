"""ASGI entry point (uvicorn): Django over HTTP, GraphQL subscriptions over websockets.

HTTP goes to Django, which serves everything including ``/graphql/`` queries
and mutations (``schema.views``); Twilio's status callbacks take a
middleware-free path to the same view (``notification.webhooks.asgi`` says why).
Websockets on ``/graphql/`` go to strawberry's channels consumer with the same
schema, speaking ``graphql-transport-ws`` and the legacy ``graphql-ws``; the
session cookie identifies the user.
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# Set Django up before anything imports models (the schema does).
django_application = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import re_path  # noqa: E402

from notification.webhooks.asgi import with_status_callback_fast_path  # noqa: E402
from schema.schema import schema  # noqa: E402
from schema.websocket import graphql_ws_application  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": with_status_callback_fast_path(django_application),
        "websocket": AuthMiddlewareStack(
            URLRouter([re_path(r"^graphql/?$", graphql_ws_application(schema))])
        ),
    }
)

import gc  # noqa: E402

# EXPERIMENT
gc.freeze()
_t = os.environ.get("GC_THRESHOLD")
if _t:
    gc.set_threshold(*map(int, _t.split(",")))
