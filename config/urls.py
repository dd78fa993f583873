"""URL routes: GraphQL (with GraphiQL), Twilio webhooks, admin and the RQ dashboard."""

from django.contrib import admin
from django.contrib.staticfiles.urls import staticfiles_urlpatterns
from django.urls import include, path

from notification.csrf import csrf_token_view
from schema.views import graphql_view

urlpatterns = [
    path("graphql/", graphql_view, name="graphql"),
    path("graphql/csrf/", csrf_token_view, name="graphql-csrf"),
    path("admin/", admin.site.urls),
    path("django-rq/", include("django_rq.urls")),
    path("", include("notification.urls")),
]

# DEBUG only (empty otherwise): admin and GraphiQL assets under uvicorn in `make run`.
urlpatterns += staticfiles_urlpatterns()
