"""Twilio webhook signature checking.

The signed URL is the one Twilio called. Behind a proxy or a tunnel the request's
own host and scheme are not that URL, so it is rebuilt from ``PUBLIC_BASE_URL``
plus the path and query string; the request's Host header is never trusted.
"""

import logging

from django.http import HttpRequest
from twilio.request_validator import RequestValidator

from notification.conf import app_settings

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Twilio-Signature"


def public_url(request: HttpRequest) -> str:
    """The absolute URL Twilio signed: ``PUBLIC_BASE_URL`` + path (+ query string)."""
    return app_settings.PUBLIC_BASE_URL.rstrip("/") + request.get_full_path()


def has_valid_signature(request: HttpRequest) -> bool:
    """True when ``X-Twilio-Signature`` matches the public URL and every POST parameter."""
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        return False
    token = app_settings.TWILIO_AUTH_TOKEN
    if not token:
        # An empty key would let anyone sign; refuse everything instead.
        logger.error("TWILIO_AUTH_TOKEN is not set: rejecting every Twilio webhook")
        return False
    return RequestValidator(token).validate(public_url(request), request.POST, signature)
