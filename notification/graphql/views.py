"""The GraphQL HTTP view with hostile bodies answered as client errors.

strawberry's Django view assumes a JSON body is an object and valid UTF-8, and
parses it with a recursive decoder: ``null``, ``42``, ``"s"``, bytes that are not
UTF-8 and ``[`` nested 100,000 deep each raised inside its parsing (a 500 and a
traceback per request). Here each is a 400 whose body is a GraphQL response, so a
client reads every refusal the same way:
``{"data": null, "errors": [{"message": ..., "extensions": {"code": "bad_request"}}]}``.

GraphiQL is served when ``GRAPHIQL`` says so (default: ``DEBUG``); otherwise a
browser GET is a 404, which still sets the CSRF cookie (``schema.views``).

Http only (was ``notification.graphql.http_only``):

Fields that only make sense over HTTP: ``login`` and ``logout``.

Over a websocket they do harm: a socket has no session middleware, so
``logout`` answered ``true`` and left the session valid, and ``login`` checked
passwords outside any HTTP throttle (an unthrottled password oracle). A host
project adds ``permission_classes=[HttpOnly]`` to such fields.
"""

import json
from typing import Any

from cross_web import HTTPException
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase, JsonResponse
from strawberry.django.views import GraphQLView
from strawberry.permission import BasePermission
from strawberry.types import Info

from notification.conf import app_settings

# -------- http_only ---------------------------------------------------------------------


class HttpOnly(BasePermission):
    """Refuses the field when the operation came over a websocket."""

    message = "This operation is only available over HTTP (POST /graphql/), not over a websocket."
    error_extensions = {"code": "http_only"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        context = info.context
        return not (isinstance(context, dict) and "ws" in context)


# -------- views -------------------------------------------------------------------------

BAD_REQUEST_CODE = "bad_request"


def graphiql_enabled() -> bool:
    setting = app_settings.GRAPHIQL
    return settings.DEBUG if setting is None else bool(setting)


class HardenedGraphQLView(GraphQLView):
    @property  # type: ignore[override]
    def graphql_ide(self) -> str | None:
        return "graphiql" if graphiql_enabled() else None

    @graphql_ide.setter
    def graphql_ide(self, value: object) -> None:
        """Ignored: whether GraphiQL is served is read from the settings per request."""

    def parse_http_body(self, request: Any) -> Any:
        try:
            return super().parse_http_body(request)
        except UnicodeDecodeError:
            raise HTTPException(400, "The request body is not valid UTF-8.") from None

    def decode_json(self, data: str | bytes) -> object:
        try:
            decoded = json.loads(data)
        except RecursionError:
            raise HTTPException(400, "The request body is nested too deeply.") from None
        if not isinstance(decoded, dict | list):
            raise HTTPException(
                400, "The request body must be a JSON object with a query."
            ) from None
        return decoded

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            return self.run(request=request)
        except HTTPException as exc:
            return JsonResponse(
                {
                    "data": None,
                    "errors": [{"message": exc.reason, "extensions": {"code": BAD_REQUEST_CODE}}],
                },
                status=exc.status_code,
            )
