"""A lean ASGI path for Twilio's status callbacks: the same view, without the middleware.

Under ASGI, each of Django's classic middlewares (sessions, CSRF, auth, messages,
...) runs its hooks through ``sync_to_async``: some fourteen thread hops per
request, which caps one uvicorn process near 100 requests/s on two cores. None
of them means anything to Twilio (no cookies, no CSRF token, no user; the
signature is the authentication), so ``config.asgi`` routes the status callback
path here: Django's own ASGI handler with an empty middleware chain, resolving
the same URLconf to the same view. Everything else still goes through the full
stack, and so does this path under the test client or WSGI.
"""

from typing import Any

from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.exception import convert_exception_to_response

STATUS_CALLBACK_PATH = "/twilio/sms/status/"


class MiddlewareFreeASGIHandler(ASGIHandler):
    """Django's ``ASGIHandler`` as if ``MIDDLEWARE`` were empty."""

    def load_middleware(self, is_async: bool = False) -> None:
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        get_response = self._get_response_async if is_async else self._get_response
        self._middleware_chain = convert_exception_to_response(get_response)


def with_status_callback_fast_path(django_application: Any) -> Any:
    """Wrap Django's ASGI app so the status callback path skips the middleware stack."""
    status_callbacks = MiddlewareFreeASGIHandler()

    async def application(scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == STATUS_CALLBACK_PATH:
            await status_callbacks(scope, receive, send)
        else:
            await django_application(scope, receive, send)

    return application
