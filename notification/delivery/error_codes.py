"""What Twilio's delivery error codes mean, for people reading the notification.

Twilio warns against relying on exact codes alone, so unknown codes get a
generic meaning that still names the code.
"""

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
