from django.urls import include, path
from strawberry.django.views import GraphQLView

from tests.host_project.schema import schema

urlpatterns = [
    path("graphql/", GraphQLView.as_view(schema=schema)),
    path("", include("notification.urls")),
    path("", include("notification.ops.urls")),
]
