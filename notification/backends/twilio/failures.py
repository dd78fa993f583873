"""What a failed create request means: permanent, retryable, or ambiguous.

The distinction is about money and trust, not about tidiness:

* **permanent**: Twilio refused the message and will refuse it again; fail it.
* **retryable**: the message certainly did not reach Twilio's queue (an HTTP
  error answer, or no connection at all), so sending it again cannot duplicate.
* **ambiguous**: the request may have reached Twilio (read timeout, connection
  dropped after the request was written, an unreadable success answer). Sending
  it again could deliver it twice, so it becomes ``unknown`` and waits for staff.

Twilio warns against relying on exact codes alone, so unknown codes go to a
default branch: **retryable with the attempt cap**. An HTTP error answer proves
the message was not queued, so retrying cannot duplicate it, and an account- or
sender-level problem (bad credentials, a misconfigured ``From``) would
otherwise fail the whole backlog at once instead of giving operators the
backoff window to fix it. The cap still ends hopeless cases with the last error.
"""

import requests
from twilio.base.exceptions import TwilioRestException
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from notification.backends.base import FailureKind, SendFailure
from notification.delivery.error_codes import PERMANENT_CODES


def classify_twilio_error(exc: TwilioRestException) -> SendFailure:
    """Classify an error *answer* from Twilio (the request was answered, not queued)."""
    code = exc.code if isinstance(exc.code, int) else None
    message = str(exc.msg or f"HTTP {exc.status}")
    if code in PERMANENT_CODES:
        return SendFailure(FailureKind.PERMANENT, code, message)
    # Everything else is retried: known transient codes, HTTP 429 and 5xx
    # and, by the default branch (see the module docstring), unknown codes too.
    return SendFailure(FailureKind.RETRYABLE, code, message)


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True when the TCP connection was never established (nothing was sent).

    ``requests`` wraps urllib3's ``MaxRetryError`` whose ``reason`` is a
    ``NewConnectionError`` (refused, DNS) or a ``ConnectTimeoutError``. Errors
    raised after connecting (``ProtocolError``: the peer closed the connection
    mid-exchange) arrive unwrapped and are ambiguous.
    """
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        return isinstance(reason.reason, NewConnectionError | ConnectTimeoutError)
    return False


def classify_exception(exc: BaseException) -> SendFailure:
    """Classify anything a create call raised."""
    if isinstance(exc, TwilioRestException):
        return classify_twilio_error(exc)
    if isinstance(exc, requests.ConnectionError) and _never_connected(exc):
        return SendFailure(FailureKind.RETRYABLE, None, f"Could not connect to Twilio: {exc}")
    if isinstance(exc, requests.Timeout):
        return SendFailure(
            FailureKind.AMBIGUOUS, None, f"Timed out waiting for Twilio's answer: {exc}"
        )
    if isinstance(exc, requests.ConnectionError):
        return SendFailure(
            FailureKind.AMBIGUOUS, None, f"Connection to Twilio lost after sending: {exc}"
        )
    # Anything else (an unreadable answer, a bug after the request left): the
    # message may be at Twilio, so at-most-once wins.
    return SendFailure(
        FailureKind.AMBIGUOUS, None, f"Unexpected error while sending: {type(exc).__name__}: {exc}"
    )
