"""URL routes: GraphQL (with GraphiQL), Twilio webhooks, admin, the RQ dashboard, probes
and metrics."""

import warnings

from django.contrib import admin
from django.urls import include, path

from notification.csrf import csrf_token_view
from schema.views import graphql_view

urlpatterns = [
    path("graphql/", graphql_view, name="graphql"),
    path("graphql/csrf/", csrf_token_view, name="graphql-csrf"),
    path("admin/", admin.site.urls),
    path("django-rq/", include("django_rq.urls")),
    path("", include("notification.urls")),
    # /healthz, /readyz, /metrics (README "Operations").
    path("", include("notification.ops.urls")),
]

# Static files are WhiteNoise's (a middleware, config/settings.py), DEBUG on or off.
# It streams files with a synchronous iterator, and under ASGI every file served
# warned about it: harmless (the files are small and read from disk), not shown.
warnings.filterwarnings(
    "ignore", message="StreamingHttpResponse must consume synchronous iterators"
)
