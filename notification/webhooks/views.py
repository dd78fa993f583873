"""Twilio webhook endpoints: check the signature, normalize, hand over.

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

import logging

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, HttpResponseForbidden
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from notification import instruments
from notification.backends.twilio.account import is_for_our_account
from notification.backends.twilio.payloads import (
    MalformedWebhook,
    inbound_event_from_form,
    status_event_from_form,
)
from notification.backends.twilio.signature import has_valid_signature, public_url
from notification.db_threads import run_in_db_thread
from notification.delivery.payload import status_payloads
from notification.delivery.reports import STATUS_CALLBACK_SMS_PARAM, SmsStatusEvent
from notification.events import publish_payloads
from notification.ids import parse_database_id
from notification.models import Notification
from notification.signals import send_status_changed, sms_status_changed
from notification.tracking.status import ApplyResult, Outcome, record_status_event
from notification.webhooks.inbound import handle_inbound

logger = logging.getLogger(__name__)

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
    thread (``notification.db_threads``), after which the change is committed and only then
    published. Not Django's per-request thread: that thread dies with the
    request and takes its database connection along, so every callback would
    pay for a new connection.
    """
    if not has_valid_signature(request):
        instruments.status_callback("refused")
        return _forbidden(request)
    if refused := _refused_account(request):
        instruments.status_callback("wrong_account")
        return refused
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
    await publish_payloads(payloads)
    if payloads and sms_status_changed.has_listeners(Notification):
        await run_in_db_thread(send_status_changed, payloads, event)
    return HttpResponse(result.outcome.value, content_type="text/plain")


@csrf_exempt
@require_POST
def sms_inbound(request: HttpRequest) -> HttpResponse:
    """``POST /twilio/sms/inbound/``: someone texted one of our numbers; answer TwiML."""
    if not has_valid_signature(request):
        return _forbidden(request)
    if refused := _refused_account(request):
        return refused
    try:
        event = inbound_event_from_form(request.POST)
    except MalformedWebhook as exc:
        logger.warning("Malformed inbound webhook: %s", exc)
        return HttpResponseBadRequest(str(exc), content_type="text/plain")
    return HttpResponse(handle_inbound(event), content_type=TWIML_CONTENT_TYPE)
