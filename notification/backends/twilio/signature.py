"""Twilio webhook signature checking.

The signed URL is the one Twilio called. Behind a proxy or a tunnel the request's
own host and scheme are not that URL, so it is rebuilt from ``PUBLIC_BASE_URL``
plus the path and query string; the request's Host header is never trusted.
A status callback URL may also carry connection overrides as its fragment,
which the request never shows (``overrides``).
"""

import logging

from django.http import HttpRequest
from twilio.request_validator import RequestValidator

from notification.backends.twilio.overrides import signed_url_candidates
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
    validator = RequestValidator(token)
    # Our status callback URLs carry Twilio's connection overrides as a fragment,
    # which never reaches us: see ``overrides`` for why both forms are checked.
    return any(
        validator.validate(url, request.POST, signature)
        for url in signed_url_candidates(public_url(request))
    )
