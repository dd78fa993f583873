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

A request that fails the check gets Django's HTML 403 page, which GraphQL
clients (Apollo, urql) report as a JSON parse error on ``<!DOCTYPE``. With
``CSRF_FAILURE_VIEW = "notification.csrf.csrf_failure"`` a failure on a
strawberry GraphQL view is a GraphQL error instead (code ``csrf_failed``, still
HTTP 403, with the current token in ``X-CSRFToken`` to retry with); every other
route keeps Django's page.
"""

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.middleware.csrf import get_token
from django.views import csrf as django_csrf
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

CSRF_TOKEN_HEADER = "X-CSRFToken"
CSRF_FAILED_CODE = "csrf_failed"
CSRF_FAILED_MESSAGE = (
    "CSRF check failed: send the current CSRF token in the X-CSRFToken header "
    "(this response's X-CSRFToken header, the csrftoken cookie or GET /graphql/csrf/)."
)


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


def _is_graphql_endpoint(request: HttpRequest) -> bool:
    """The URL resolved to a strawberry GraphQL view (ours or a host project's).

    The CSRF middleware checks in ``process_view``, after URL resolution, so
    ``resolver_match`` is known. ``as_view()`` records the class on the view
    function, and ``functools.wraps`` (our decorators, Django's) carries it over.
    """
    from strawberry.django.views import BaseView  # the app's GraphQL views all derive from it

    match = getattr(request, "resolver_match", None)
    view_class = getattr(match.func, "view_class", None) if match is not None else None
    return isinstance(view_class, type) and issubclass(view_class, BaseView)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """``CSRF_FAILURE_VIEW``: a GraphQL error on GraphQL endpoints, Django's page elsewhere."""
    if not _is_graphql_endpoint(request):
        return django_csrf.csrf_failure(request, reason=reason)
    response = JsonResponse(
        {"errors": [{"message": CSRF_FAILED_MESSAGE, "extensions": {"code": CSRF_FAILED_CODE}}]},
        status=403,
    )
    response[CSRF_TOKEN_HEADER] = get_token(request)
    return response
