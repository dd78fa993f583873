"""The ``/graphql/`` HTTP view: queries and mutations, GraphiQL in a browser.

CSRF is Django's, unchanged: the view is not exempt, so a cookie-authenticated POST
must carry the ``X-CSRFToken`` header. Every response (including GET /graphql/, which
frontends can call first) sets the ``csrftoken`` cookie to read the token from, and
repeats the current token in the ``X-CSRFToken`` header for pages on other origins
(``notification.csrf``). GraphiQL reads the cookie before every request.

This is the synchronous view: under ASGI (uvicorn) Django runs it in a worker thread
per request, and the ORM stays in sync code. Websocket subscriptions are served by
strawberry's channels consumers with the same schema (``config/asgi.py``).
"""

from django.views.decorators.csrf import ensure_csrf_cookie

from notification.csrf import with_csrf_token_header
from schema.http import HttpGraphQLView
from schema.schema import schema

graphql_view = ensure_csrf_cookie(with_csrf_token_header(HttpGraphQLView.as_view(schema=schema)))
