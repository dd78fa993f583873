"""Twilio API errors as the emulator answers them.

The body shape (``code``, ``message``, ``more_info``, ``status``) is Twilio's legacy
error format: the SDK turns it into ``TwilioRestException`` with ``.code`` and
``.status``, so code that classifies errors is exercised exactly as in production.
"""

from dataclasses import dataclass
from typing import Any

API_VERSION = "2010-04-01"

# Error codes used after creation (status callbacks), not in HTTP answers.
QUEUE_OVERFLOW = 30001
UNREACHABLE_HANDSET = 30003


def more_info_url(code: int) -> str:
    return f"https://www.twilio.com/docs/errors/{code}"


@dataclass(frozen=True)
class TwilioApiError(Exception):
    """An error answer: HTTP status plus Twilio's numeric code and message."""

    status: int
    code: int
    message: str

    def payload(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": more_info_url(self.code),
            "status": self.status,
        }


def authentication_failed() -> TwilioApiError:
    return TwilioApiError(401, 20003, "Authentication Error - invalid username")


def not_found(path: str) -> TwilioApiError:
    return TwilioApiError(404, 20404, f"The requested resource {path} was not found")


def method_not_allowed(method: str) -> TwilioApiError:
    return TwilioApiError(405, 20004, f"Method {method} not allowed")


def too_many_requests() -> TwilioApiError:
    return TwilioApiError(429, 20429, "Too Many Requests")


def internal_error() -> TwilioApiError:
    return TwilioApiError(500, 20500, "An internal server error has occurred")


def invalid_to(to: str) -> TwilioApiError:
    return TwilioApiError(400, 21211, f"The 'To' number {to} is not a valid phone number.")


def invalid_from(from_: str) -> TwilioApiError:
    return TwilioApiError(
        400,
        21212,
        f"The 'From' number {from_} is not a valid phone number, shortcode, "
        "or alphanumeric sender ID.",
    )


def same_to_and_from() -> TwilioApiError:
    return TwilioApiError(400, 21266, "'To' and 'From' number cannot be the same")


def region_not_enabled(to: str) -> TwilioApiError:
    return TwilioApiError(
        400,
        21408,
        "Permission to send an SMS has not been enabled for the region indicated by "
        f"the 'To' number: {to}.",
    )


def body_required() -> TwilioApiError:
    return TwilioApiError(400, 21602, "Message body is required.")


def from_required() -> TwilioApiError:
    return TwilioApiError(400, 21603, "A 'From' phone number is required.")


def to_required() -> TwilioApiError:
    return TwilioApiError(400, 21604, "A 'To' phone number is required.")


def invalid_status_callback(url: str) -> TwilioApiError:
    return TwilioApiError(400, 21609, f"The StatusCallback URL {url} is not a valid URL.")


def unsubscribed_recipient() -> TwilioApiError:
    return TwilioApiError(400, 21610, "Attempt to send to unsubscribed recipient")


def sender_queue_full() -> TwilioApiError:
    return TwilioApiError(
        400, 21611, "This 'From' number has exceeded the maximum number of queued messages"
    )


def unreachable_route(to: str, from_: str) -> TwilioApiError:
    return TwilioApiError(
        400,
        21612,
        f"The 'To' phone number: {to}, is not currently reachable using the 'From' "
        f"phone number: {from_} via SMS.",
    )


def not_mobile(to: str) -> TwilioApiError:
    return TwilioApiError(400, 21614, f"'To' number {to} is not a valid mobile number")


def body_too_long() -> TwilioApiError:
    return TwilioApiError(
        400, 21617, "The concatenated message body exceeds the 1600 character limit."
    )


def invalid_validity_period() -> TwilioApiError:
    return TwilioApiError(400, 21624, "Invalid validity period value")


def invalid_messaging_service(sid: str) -> TwilioApiError:
    return TwilioApiError(400, 21701, f"The Messaging Service Sid {sid} is invalid.")


def rejected(code: int) -> TwilioApiError:
    """A create refused with ``code`` (the ``http_400`` fault), e.g. 30004 message blocked."""
    return TwilioApiError(400, code, CALLBACK_ERROR_MESSAGES.get(code, f"Error {code}"))


CALLBACK_ERROR_MESSAGES = {
    QUEUE_OVERFLOW: "Queue overflow",
    UNREACHABLE_HANDSET: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}
