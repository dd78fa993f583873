"""Fields that only make sense over HTTP: ``login`` and ``logout``.

Over a websocket they do harm: a socket has no session middleware, so
``logout`` answered ``true`` and left the session valid, and ``login`` checked
passwords outside any HTTP throttle (an unthrottled password oracle). A host
project adds ``permission_classes=[HttpOnly]`` to such fields.
"""

from typing import Any

from strawberry.permission import BasePermission
from strawberry.types import Info


class HttpOnly(BasePermission):
    """Refuses the field when the operation came over a websocket."""

    message = "This operation is only available over HTTP (POST /graphql/), not over a websocket."
    error_extensions = {"code": "http_only"}

    def has_permission(self, source: Any, info: Info, **kwargs: Any) -> bool:
        context = info.context
        return not (isinstance(context, dict) and "ws" in context)
