"""Twilio's error catalogue: which codes are permanent, which retryable, and what each means.

One table for the send job (an error answer to a create request) and the status
webhook (a failure reported later), from Twilio's error dictionary
(https://www.twilio.com/docs/api/errors). Twilio warns against relying on exact
codes alone, so unknown codes get a generic meaning that still names the code,
and are retried with the attempt cap (``backends.twilio.failures`` says why).
"""

# Refused for good: sending again would be refused again.
PERMANENT_CODES = frozenset(
    {21211, 21408, 21610, 21612, 21614, 30004, 30005, 30006, 30007, 30010, 30034}
)
# Known transient codes (any code that is not permanent is retried by the send
# job; a failure reported later by callback is retried only for these).
RETRYABLE_CODES = frozenset({20429, 21611, 30001, 30003, 30008, 30036})
# The recipient replied STOP (https://www.twilio.com/docs/api/errors/21610).
OPT_OUT_CODE = 21610

ERROR_MEANINGS: dict[int, str] = {
    21211: "Invalid 'To' phone number",
    21408: "Sending to this region is not enabled",
    21610: "The recipient replied STOP (unsubscribed)",
    21611: "The sender's queue at Twilio is full",
    21612: "Twilio cannot route to this number",
    21614: "'To' number is not a mobile number",
    30001: "Queue overflow: the sender's queue at Twilio was full",
    30002: "Account suspended",
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered by the carrier",
    30008: "Unknown error",
    30010: "Message price exceeds MaxPrice",
    30034: "Message from an unregistered 10DLC number",
    30036: "Validity period expired before delivery",
}


def error_meaning(code: int | None, twilio_message: str = "") -> str:
    """A readable reason: Twilio's own message when it sent one, else our table's."""
    if code is None:
        return twilio_message
    if twilio_message:
        return twilio_message
    return ERROR_MEANINGS.get(code, "Unrecognized Twilio error code")


def describe_error(code: int | None, message: str, *, status: str = "") -> str:
    """How a failure reads in the notification's status message."""
    if code is not None:
        return f"Twilio error {code}: {error_meaning(code, message)}"
    return message or (f"Twilio reported {status}" if status else "")
