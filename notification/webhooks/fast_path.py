"""A lean ASGI path for Twilio's status callbacks: the same view, without the handler's extras.

Under ASGI, Django's handler does per-request work that means nothing to
Twilio's callbacks but costs threads: each classic middleware (sessions, CSRF,
auth, messages...) runs through ``sync_to_async``, the ``request_started`` and
``request_finished`` signals and ``response.close()`` run in a per-request
thread that is created, then joined by yet another thread, and a second task
listens for the client's disconnect. Under load that machinery cost more CPU
than the callback itself (README, "Profiling notes"). None of it applies here: no cookies, no
CSRF token, no user (the signature is the authentication), and the view's
database work manages its own connection (``notification.db_threads``).

So ``config.asgi`` sends this one path here: the body is read, Django's own
``ASGIRequest`` is built and the URLconf's view for the path is awaited, with
Django's exception-to-response conversion (a bug is still a logged 500); a
body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is refused with 413 before parsing.
Everything else goes through the full stack, and so does this path under the
test client or WSGI.
"""

import io
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.exception import convert_exception_to_response
from django.http import HttpResponse
from django.urls import resolve, reverse

from notification.delivery.reports import STATUS_CALLBACK_ROUTE

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class _Disconnected(Exception):
    pass


class _TooLarge(Exception):
    pass


async def _read_body(receive: Receive, limit: int | None) -> bytes:
    """The whole request body; ``_TooLarge`` past ``limit`` bytes (Twilio's forms are ~1 KB)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            raise _TooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_response(send: Send, response: HttpResponse) -> None:
    headers = [(name.encode("ascii"), value.encode("latin1")) for name, value in response.items()]
    await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": response.content})


class StatusCallbackApp:
    """ASGI app serving only the status callback's path with the URLconf's view for it."""

    def __init__(self) -> None:
        self.path = reverse(STATUS_CALLBACK_ROUTE)
        self._view = convert_exception_to_response(resolve(self.path).func)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        try:
            body = await _read_body(receive, settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        except _Disconnected:
            return
        except _TooLarge:
            too_large = HttpResponse(
                "Request body too large", status=413, content_type="text/plain"
            )
            await _send_response(send, too_large)
            return
        request = ASGIRequest(scope, io.BytesIO(body))
        # The status view is async, so its exception-converting wrapper is too.
        await _send_response(send, await self._view(request))  # type: ignore[misc]


def with_status_callback_fast_path(django_application: Any) -> Any:
    """Wrap Django's ASGI app so the status callback path takes ``StatusCallbackApp``."""
    status_callbacks = StatusCallbackApp()

    async def application(scope: dict, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == status_callbacks.path:
            await status_callbacks(scope, receive, send)
        else:
            await django_application(scope, receive, send)

    return application
