"""Checking ``X-Twilio-Signature`` against several URLs with the form's string built once.

Twilio signs a webhook with HMAC-SHA1, keyed by the auth token, over the URL it
called followed by every POST parameter, sorted by name, name then value
(https://www.twilio.com/docs/usage/webhooks/webhooks-security). The SDK's
``RequestValidator.validate`` checks one URL and builds that string twice, for the
URL with and without its port, since Twilio signs either form. Our status
callbacks have two URLs Twilio may have signed (``overrides``: with and without
the connection-override fragment), so checking each with the SDK built the
parameters' string four times per callback, and with the SDK's character-by-character
comparison that was a quarter of the webhook's CPU (README, "Benchmarks").

``signature_matches`` accepts exactly what the SDK's ``validate`` accepts for any of
the URLs: the same string (each name in sorted order, each of its distinct values in
sorted order, the SDK's ``get_values``), the same port variants (the SDK's
``add_port``/``remove_port``), the same digest; a test compares the two on generated
forms and URLs (``tests/backends/test_twilio_signature.py``), so a release of the
SDK that changes the rule fails there. The comparison is ``hmac.compare_digest``:
constant time, as the SDK's own ``compare`` intends.
"""

import base64
import hashlib
import hmac
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlparse

from twilio.request_validator import RequestValidator, add_port, remove_port


def _parameters(validator: RequestValidator, params: Any) -> str:
    """The form's part of the signed string, as ``RequestValidator.compute_signature``
    appends it to the URL."""
    if not params:
        return ""
    parts = []
    for name in sorted(set(params)):
        for value in sorted(set(validator.get_values(params, name))):
            parts.append(name + value)
    return "".join(parts)


def _port_variants(url: str) -> set[str]:
    parsed = urlparse(url)
    return {remove_port(parsed), add_port(parsed)}


def signature_matches(token: str, urls: Iterable[str], params: Any, signature: str) -> bool:
    """True when ``signature`` is Twilio's HMAC-SHA1 of one of ``urls`` (with or without
    its port) and ``params`` (a Django ``QueryDict`` or a mapping), keyed by ``token``."""
    key = token.encode("utf-8")
    given = signature.encode("utf-8", "replace")
    parameters = _parameters(RequestValidator(token), params)
    for url in urls:
        for variant in _port_variants(url):
            digest = hmac.new(key, (variant + parameters).encode("utf-8"), hashlib.sha1)
            if hmac.compare_digest(base64.b64encode(digest.digest()), given):
                return True
    return False
