"""URL routes: GraphQL (with GraphiQL), Twilio webhooks, admin and the RQ dashboard."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("django-rq/", include("django_rq.urls")),
]
