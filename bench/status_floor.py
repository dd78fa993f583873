"""The floors ``bench/status.py`` measures the live-status path against.

* ``urlpatterns`` (with ``bench/settings_status.py``): the project's URLs plus
  ``/floor/status/``, a plain Django view doing what any status webhook must do,
  and nothing else: Twilio's signature check (the twilio SDK's
  ``RequestValidator``, HMAC-SHA1 over the URL and sorted parameters) and one
  ``UPDATE`` of the message's delivery status, behind Django's own ASGI handler and
  the project's middleware. Served by the same uvicorn process as the real webhook.
* ``application``: a bare ASGI app for uvicorn with no Django, channels or GraphQL:
  websockets that are accepted and kept, and ``POST /broadcast`` that sends one
  pre-encoded frame to each of them in turn. Run with the project's uvicorn flags,
  it is what handing one message to N sockets costs in this server with no
  application work: the fan-out's floor.

Bench-only; the app never serves either.
"""

from typing import Any

#: The frame the broadcast floor sends: a ``next`` message of the bench's subscription.
FRAME = (
    '{"id":"1","type":"next","payload":{"data":{"smsStatus":{"notificationId":"%s",'
    '"status":"SENT","deliveryStatus":"DELIVERED","at":"2026-12-06T00:00:00+00:00"}}}}'
)

_sockets: set[Any] = set()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        _sockets.add(send)
        try:
            while (await receive())["type"] != "websocket.disconnect":
                pass
        finally:
            _sockets.discard(send)
    elif scope["type"] == "http":
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "POST" and scope["path"] == "/broadcast":
            frame = FRAME % body.decode()
            for socket_send in list(_sockets):
                await socket_send({"type": "websocket.send", "text": frame})
            answer = str(len(_sockets)).encode()
        else:
            answer = b"ok"
        headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(answer)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})


def _urlpatterns() -> list:

    from django.db import connection
    from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
    from django.urls import path
    from django.views.decorators.csrf import csrf_exempt
    from django.views.decorators.http import require_POST
    from twilio.request_validator import RequestValidator

    from config.urls import urlpatterns as project_urlpatterns
    from notification.conf import app_settings
    from notification.models import SmsNotification

    validator = RequestValidator(app_settings.TWILIO_AUTH_TOKEN)

    @csrf_exempt
    @require_POST
    def status(request: HttpRequest) -> HttpResponse:
        url = app_settings.PUBLIC_BASE_URL + request.get_full_path()
        signature = request.headers.get("X-Twilio-Signature", "")
        if not validator.validate(url, request.POST, signature):
            return HttpResponseForbidden("Invalid Twilio signature")
        try:
            SmsNotification.objects.filter(twilio_sid=request.POST["MessageSid"]).update(
                delivery_status=request.POST["MessageStatus"]
            )
        finally:
            # Under ASGI each request's sync view runs in a thread of its own, so a
            # kept connection (the project's CONN_MAX_AGE on PostgreSQL) was never
            # reused and PostgreSQL ran out of connections: a connection per request,
            # as Django advises for ASGI (CONN_MAX_AGE 0).
            connection.close()
        return HttpResponse("updated", content_type="text/plain")

    return [path("floor/status/", status), *project_urlpatterns]


def __getattr__(name: str) -> Any:
    # The URLconf is built on first use, so uvicorn can import ``application``
    # from this module without Django being configured.
    if name == "urlpatterns":
        return _urlpatterns()
    raise AttributeError(name)
