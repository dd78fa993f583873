"""A request body limit for every HTTP request, before Django reads the body.

Django checks ``DATA_UPLOAD_MAX_MEMORY_SIZE`` only when a view reads
``request.body`` or ``request.POST``, and under ASGI its handler first reads the
whole body into a temporary file (on disk past 2.5 MB): a client could stream
gigabytes to any URL and each would be spooled before anything refuses it.
uvicorn has no body limit, so this wraps the ASGI application: a declared
``Content-Length`` over the limit is answered 413 at once, and a chunked body
that grows past it is cut off (the application sees the client leave) and
answered 413 as well. The limit is Django's own setting, so the rule lives in
one place; ``None`` (Django's "no limit") turns it off.
"""

from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_TOO_LARGE_BODY = b"Request body too large"


def _declared_length(scope: dict[str, Any]) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_413(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(_TOO_LARGE_BODY)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _TOO_LARGE_BODY})


def limit_request_body(application: Any) -> Any:
    """``application`` with HTTP request bodies capped at ``DATA_UPLOAD_MAX_MEMORY_SIZE``."""

    async def limited(scope: dict[str, Any], receive: Receive, send: Send) -> None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if scope["type"] != "http" or limit is None:
            await application(scope, receive, send)
            return
        declared = _declared_length(scope)
        if declared is not None and declared > limit:
            await _send_413(send)
            return
        received = 0
        cut_off = False
        started = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal received, cut_off
            if cut_off:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    cut_off = True
                    return {"type": "http.disconnect"}
            return message

        async def tracking_send(message: dict[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await application(scope, counting_receive, tracking_send)
        if cut_off and not started:
            await _send_413(send)

    return limited
