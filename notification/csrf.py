"""The CSRF token for browser frontends, including those on other origins.

Django checks ``X-CSRFToken`` on every cookie-authenticated POST, and ``login``
rotates the token (Django's defence against session fixation). A page on the
API's own host reads the ``csrftoken`` cookie before each request (GraphiQL
does). A page on another host (``app.example.com`` calling ``api.example.com``)
cannot read that cookie, so the token also travels in a response header:
``GET /graphql/csrf/`` returns it to start with, and every ``/graphql/``
response repeats the *current* one, so a frontend that keeps the last value it
saw stays right across login and logout. CORS exposes the header
(``CORS_EXPOSE_HEADERS`` in the settings).
"""

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

CSRF_TOKEN_HEADER = "X-CSRFToken"


def with_csrf_token_header(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Add the request's current CSRF token (after the view ran: after a rotation)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response[CSRF_TOKEN_HEADER] = get_token(request)
        return response

    return wrapped


@require_GET
@ensure_csrf_cookie
@with_csrf_token_header
def csrf_token_view(request: HttpRequest) -> JsonResponse:
    """``GET /graphql/csrf/``: ``{"csrfToken": ...}``, for a page's first POST."""
    return JsonResponse({"csrfToken": get_token(request)})
