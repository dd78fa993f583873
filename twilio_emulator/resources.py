"""JSON bodies of the Message resource, field for field as Twilio returns them.

The field set follows the SDK's ``MessageInstance`` (twilio/rest/api/v2010/
account/message/__init__.py): dates are RFC 2822 strings, ``num_segments`` and
``num_media`` are strings, ``error_code`` is an integer or null.
"""

from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from twilio_emulator.errors import API_VERSION
from twilio_emulator.state import Message

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000


def messages_uri(account_sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"


def message_uri(account_sid: str, sid: str) -> str:
    return f"/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}.json"


def rfc2822(value) -> str | None:
    return format_datetime(value) if value is not None else None


def message_resource(message: Message) -> dict[str, Any]:
    base = f"/{API_VERSION}/Accounts/{message.account_sid}/Messages/{message.sid}"
    # With a Messaging Service Twilio has not picked a sender or counted segments yet.
    not_yet_routed = message.status == "accepted"
    return {
        "account_sid": message.account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": rfc2822(message.date_created),
        "date_sent": rfc2822(message.date_sent),
        "date_updated": rfc2822(message.date_updated),
        "direction": "outbound-api",
        "error_code": message.error_code,
        "error_message": message.error_message,
        "from": message.from_,
        "messaging_service_sid": message.messaging_service_sid,
        "num_media": str(len(message.media_urls)),
        "num_segments": "0" if not_yet_routed else str(message.segments),
        "price": message.price,
        "price_unit": "USD",
        "sid": message.sid,
        "status": message.status,
        "subresource_uris": {
            "media": f"{base}/Media.json",
            "feedback": f"{base}/Feedback.json",
        },
        "to": message.to,
        "uri": f"{base}.json",
    }


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw is not None else default
    except ValueError:
        return default


def message_page(
    account_sid: str, messages: list[Message], query: dict[str, list[str]]
) -> dict[str, Any]:
    """One page of the list, with Twilio's paging keys (``Page``/``PageSize``/``PageToken``)."""
    page_size = min(
        max(1, _int((query.get("PageSize") or [None])[0], DEFAULT_PAGE_SIZE)), MAX_PAGE_SIZE
    )
    page = max(0, _int((query.get("Page") or [None])[0], 0))
    start = page * page_size
    records = messages[start : start + page_size]
    filters = {key: query[key][0] for key in ("To", "From") if query.get(key) and query[key][0]}
    base = messages_uri(account_sid)

    def page_uri(number: int) -> str:
        params = {**filters, "PageSize": page_size, "Page": number}
        if number:
            params["PageToken"] = f"PA{number}"
        return f"{base}?{urlencode(params)}"

    has_next = start + page_size < len(messages)
    return {
        "end": start + len(records) - 1 if records else start,
        "first_page_uri": page_uri(0),
        "messages": [message_resource(m) for m in records],
        "next_page_uri": page_uri(page + 1) if has_next else None,
        "page": page,
        "page_size": page_size,
        "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        "start": start,
        "uri": page_uri(page),
    }
