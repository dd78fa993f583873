"""Twilio webhooks: delivery status callbacks and inbound messages.

In the style of django-anymail: each view checks the signature and turns
Twilio's form into a normalised event (both in ``notification.backends.twilio``),
then hands that event to code that knows nothing about HTTP
(``notification.status.apply``, ``inbound``).

Keywords (was ``notification.webhooks.keywords``):

The words an inbound SMS may be, and how a message is reduced to one (the one place).

**Opt-out** is the union of Twilio's default opt-out keywords (STOP, STOPALL,
UNSUBSCRIBE, CANCEL, END, QUIT, REVOKE, OPTOUT:
https://www.twilio.com/docs/messaging/tutorials/advanced-opt-out) and the
words the FCC's TCPA rule names as a revocation of consent when sent in reply
(stop, quit, end, revoke, opt out, cancel, unsubscribe: 47 CFR 64.1200(a)(10),
in force since 11 April 2025). On a short code, or with Twilio's opt-out
handling off, this list is the only opt-out there is, so it must hold every
one of them. **Opt-in** (START, YES, UNSTOP) and **help** (HELP, INFO) are
Twilio's defaults: an opt-in wider than Twilio's would lift our opt-out while
Twilio still blocks the number.

A message is a keyword when, reduced by ``keyword_of``, it is the whole word:

* Unicode NFKC, so compatibility forms read as the letters they show
  (full-width ``ＳＴＯＰ``, ligatures, a long s);
* case-folded;
* every space, punctuation mark, and control or format character removed, inside
  the message too: zero-width spaces and joiners (format characters) cannot hide
  a keyword, and the multi-word forms match their one-word spelling (``opt out``,
  ``Opt-Out``, ``OptOut`` and ``OPT OUT.`` are all OPTOUT; ``stop all`` is STOPALL).

Other words around a keyword still make it a plain message ("stop please", "STOP 2"),
as Twilio's own matching does (https://help.twilio.com/articles/223134027): the
keyword must be the whole message.

Inbound (was ``notification.webhooks.inbound``):

Inbound SMS keywords: STOP, START and HELP (the words are in ``keywords``).

Twilio itself blocks sends after STOP (error 21610), but STOP does not cancel
what we already queued, so the opt-out is recorded on our side and the send job
skips the number.

Opt-outs are recorded for phone numbers only: we send to E.164 numbers and
nothing else, so a STOP from a short code or a channel address
(``messenger:…``, ``whatsapp:…`` that is not a number) has nothing to stop.

Fast path (was ``notification.webhooks.fast_path``):

A lean ASGI path for Twilio's status callbacks: the same view, without the handler's extras.

Under ASGI, Django's handler does per-request work that means nothing to
Twilio's callbacks but costs threads: each classic middleware (sessions, CSRF,
auth, messages...) runs through ``sync_to_async``, the ``request_started`` and
``request_finished`` signals and ``response.close()`` run in a per-request
thread that is created, then joined by yet another thread, and a second task
listens for the client's disconnect. Under load that machinery cost more CPU
than the callback itself (README, "Profiling notes"). None of it applies here: no cookies, no
CSRF token, no user (the signature is the authentication), and the view's
database work manages its own connection (``notification.connections``).

So ``config.asgi`` sends this one path here: the body is read, Django's own
``ASGIRequest`` is built and the URLconf's view for the path is awaited, with
Django's exception-to-response conversion (a bug is still a logged 500); a
body over ``DATA_UPLOAD_MAX_MEMORY_SIZE`` is refused with 413 before parsing.
Everything else goes through the full stack, and so does this path under the
test client or WSGI.

Views (was ``notification.webhooks.views``):

Twilio webhook endpoints: check the signature, normalize, hand over.

Both are CSRF-exempt (Twilio cannot send a CSRF token; the signature is the
proof of origin) and POST-only. A missing or wrong signature is answered 403
and changes nothing, whatever ``DEBUG`` says; so is a signed form for another
Twilio account (``AccountSid``). 403 rather than an ignored 200: Twilio's
retry policy retries connection failures (and 5xx when configured), never a
4xx refusal
(https://www.twilio.com/docs/usage/webhooks/webhooks-connection-overrides),
and the refusal shows in Twilio's debugger (error 11200), where whoever
misconfigured the number can see it; a 200 would hide it.
"""

import enum
import io
import logging
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.exception import convert_exception_to_response
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.urls import resolve, reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.twiml.messaging_response import MessagingResponse

from notification import instruments
from notification.backends.twilio import has_valid_signature, is_for_our_account, public_url
from notification.backends.twilio_payloads import (
    MalformedWebhook,
    inbound_event_from_form,
    status_event_from_form,
)
from notification.conf import app_settings
from notification.connections import run_in_db_thread
from notification.delivery import (
    STATUS_CALLBACK_ROUTE,
    STATUS_CALLBACK_SMS_PARAM,
    InboundSmsEvent,
    SmsStatusEvent,
    status_payloads,
)
from notification.models import Notification, OptOutSourceChoices, SmsOptOut
from notification.signals import send_received, send_status_changed, sms_status_changed
from notification.status.apply import ApplyResult, Outcome, record_status_event
from notification.status.publish_batches import publish_coalesced
from notification.values import normalize_phone_number, parse_database_id

# -------- webhooks ----------------------------------------------------------------------


# -------- keywords ----------------------------------------------------------------------

STOP_KEYWORDS = frozenset(
    {"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"}
)
START_KEYWORDS = frozenset({"start", "yes", "unstop"})
HELP_KEYWORDS = frozenset({"help", "info"})

# Unicode general categories dropped from a message: punctuation (P), separators
# (Z: spaces), and other (C: controls and format characters such as U+200B).
_DROPPED_CATEGORIES = frozenset("PZC")


def keyword_of(body: str) -> str:
    """``body`` reduced to the word it may be (compare with the sets above)."""
    text = unicodedata.normalize("NFKC", body).casefold()
    return "".join(
        c for c in text if not c.isspace() and unicodedata.category(c)[0] not in _DROPPED_CATEGORIES
    )


# -------- inbound -----------------------------------------------------------------------

logger = logging.getLogger(__name__)


class Keyword(enum.StrEnum):
    STOP = "stop"
    START = "start"
    HELP = "help"
    NONE = "none"


def classify(body: str) -> Keyword:
    word = keyword_of(body)
    if word in STOP_KEYWORDS:
        return Keyword.STOP
    if word in START_KEYWORDS:
        return Keyword.START
    if word in HELP_KEYWORDS:
        return Keyword.HELP
    return Keyword.NONE


def handle_inbound(event: InboundSmsEvent) -> str:
    """Act on an inbound message and return the TwiML to answer Twilio with."""
    keyword = classify(event.body)
    reply = MessagingResponse()
    phone_number = _e164(event.from_number)
    if keyword in (Keyword.STOP, Keyword.START) and phone_number is None:
        logger.info(
            "%s from %r, not a phone number: nothing to record", keyword.name, event.from_number
        )
    elif keyword is Keyword.STOP:
        _, created = SmsOptOut.objects.get_or_create(
            phone_number=phone_number, defaults={"source": OptOutSourceChoices.INBOUND_STOP}
        )
        logger.info("Opt-out from %s (%s)", phone_number, "new" if created else "already recorded")
    elif keyword is Keyword.START:
        deleted, _ = SmsOptOut.objects.filter(phone_number=phone_number).delete()
        logger.info("Opt-in from %s (%d opt-out removed)", phone_number, deleted)
    elif keyword is Keyword.HELP:
        reply.message(app_settings.SMS_HELP_TEXT)
        logger.info("HELP from %r answered", event.from_number)
    else:
        logger.info(
            "Inbound message %s from %r (%d characters), no keyword",
            event.message_sid,
            event.from_number,
            len(event.body),
        )
    transaction.on_commit(lambda: send_received(event, keyword.value), robust=True)
    return str(reply)


def _e164(raw: str) -> str | None:
    """Twilio sends E.164 already; normalise anyway so opt-outs match stored numbers.

    ``None`` for what is not a number we could ever send to (short codes,
    channel addresses such as ``whatsapp:+1…``, another channel than SMS): no
    opt-out row can match those, and they need not fit the phone number column.
    """
    if ":" in raw:
        return None
    try:
        return normalize_phone_number(raw)
    except ValidationError:
        return None


# -------- fast_path ---------------------------------------------------------------------

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


# -------- views -------------------------------------------------------------------------

#: ``sms_status_callbacks_total{result}`` for each outcome of applying a callback.
_CALLBACK_RESULTS = {
    Outcome.UPDATED: "applied",
    Outcome.STALE: "ignored",
    Outcome.UNKNOWN_STATUS: "ignored",
    Outcome.UNKNOWN_SID: "unknown_message",
}

TWIML_CONTENT_TYPE = "text/xml; charset=utf-8"


def _forbidden(request: HttpRequest) -> HttpResponseForbidden:
    logger.warning(
        "Rejected Twilio webhook with %s signature for %s from %s",
        "a wrong" if request.headers.get("X-Twilio-Signature") else "no",
        public_url(request),
        request.META.get("REMOTE_ADDR", "?"),
    )
    return HttpResponseForbidden("Invalid Twilio signature", content_type="text/plain")


def _refused_account(request: HttpRequest) -> HttpResponseForbidden | None:
    """403 for a signed form of another Twilio account; ``None`` when it is ours."""
    if is_for_our_account(request.POST):
        return None
    logger.warning(
        "Rejected signed Twilio webhook for another account %r at %s",
        (request.POST.get("AccountSid") or "")[:64],
        public_url(request),
    )
    return HttpResponseForbidden("Not this Twilio account", content_type="text/plain")


def _refusal(request: HttpRequest) -> tuple[str, HttpResponseForbidden] | None:
    """Why a webhook is refused before its form is read, with the 403; ``None``: ours.

    The one gate of both webhooks (signature, then account), so a forged or
    misrouted request can reach neither handler; the reason names the
    ``sms_status_callbacks`` result it counts as.
    """
    if not has_valid_signature(request):
        return "refused", _forbidden(request)
    if refused := _refused_account(request):
        return "wrong_account", refused
    return None


def _record(event: SmsStatusEvent) -> tuple[ApplyResult, list[dict]]:
    """The database part, in one trip to the sync thread: write, then read what to publish."""
    result = record_status_event(event)
    if result.outcome is not Outcome.UPDATED or result.notification_id is None:
        return result, []
    if result.payload is not None:  # returned by the write itself
        return result, [result.payload]
    return result, status_payloads([result.notification_id])


@csrf_exempt
@require_POST
async def sms_status_callback(request: HttpRequest) -> HttpResponse:
    """``POST /twilio/sms/status/``: a message's delivery status changed.

    Async so that the publish runs on the server's event loop (no thread hop per
    Redis round trip). The database work is one call in a long-lived database
    thread (``notification.connections``), after which the change is committed and only then
    published. Not Django's per-request thread: that thread dies with the
    request and takes its database connection along, so every callback would
    pay for a new connection.
    """
    if refusal := _refusal(request):
        reason, forbidden = refusal
        instruments.status_callback(reason)
        return forbidden
    # The signature covered the query string: this id is the one we sent Twilio.
    sms_id = parse_database_id(request.GET.get(STATUS_CALLBACK_SMS_PARAM))
    try:
        event = status_event_from_form(request.POST, sms_id)
    except MalformedWebhook as exc:
        instruments.status_callback("malformed")
        logger.warning("Malformed status callback: %s", exc)
        return HttpResponseBadRequest(str(exc), content_type="text/plain")
    result, payloads = await run_in_db_thread(_record, event)
    instruments.status_callback(_CALLBACK_RESULTS[result.outcome])
    await publish_coalesced(payloads)
    if payloads and sms_status_changed.has_listeners(Notification):
        await run_in_db_thread(send_status_changed, payloads, event)
    return HttpResponse(result.outcome.value, content_type="text/plain")


@csrf_exempt
@require_POST
def sms_inbound(request: HttpRequest) -> HttpResponse:
    """``POST /twilio/sms/inbound/``: someone texted one of our numbers; answer TwiML."""
    if refusal := _refusal(request):
        return refusal[1]
    try:
        event = inbound_event_from_form(request.POST)
    except MalformedWebhook as exc:
        logger.warning("Malformed inbound webhook: %s", exc)
        return HttpResponseBadRequest(str(exc), content_type="text/plain")
    return HttpResponse(handle_inbound(event), content_type=TWIML_CONTENT_TYPE)
